//! The consumer-priorities and single-active-consumer lessons, replayed headless at 4x on the
//! embedded broker and, when `WARREN_TEST_AMQP_URL` is set, on RabbitMQ: the same assertions,
//! task by task, and the theory model's prediction for every batch, kills included.

mod common;

use std::process::Command;

use serde_json::Value;

/// Where to play: the embedded broker, then RabbitMQ when configured.
fn targets(test: &str) -> Vec<Option<String>> {
    let mut all = vec![None];
    all.extend(common::broker_url(test).map(Some));
    all
}

/// Play a shipped lesson on its own queue (a queue left with other arguments would be refused),
/// deleted afterwards.
fn play(name: &str, url: Option<&str>) -> Value {
    let shipped =
        std::fs::read_to_string(format!("{}/assets/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR")))
            .expect("the lesson is shipped");
    let queue = common::unique_queue(name);
    let (title, rest) = shipped.split_once('\n').expect("a title line first");
    let dir = std::env::temp_dir().join(format!("warren-{}", queue));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, format!("{title}\nqueue = \"{queue}\"\n{rest}")).unwrap();
    let mut args =
        vec!["play", file.to_str().unwrap(), "--headless", "--json", "--speed", "4", "--timeout", "2m"];
    match url {
        Some(url) => args.extend(["--url", url]),
        None => args.extend(["--broker", "embedded"]),
    }
    let out = Command::new(env!("CARGO_BIN_EXE_warren")).args(&args).env_remove("AMQP_URL").output().unwrap();
    if let Some(url) = url {
        tokio::runtime::Runtime::new().unwrap().block_on(common::delete_queue(url, &queue));
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let on = if url.is_some() { "RabbitMQ" } else { "embedded" };
    assert_eq!(out.status.code(), Some(0), "{name} on {on}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn tasks(v: &Value, consumer: usize) -> Vec<u64> {
    v["consumers"][consumer]["tasks"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect()
}

fn counts(batch: &Value, key: &str) -> Vec<u64> {
    batch[key].as_array().unwrap().iter().map(|share| share["processed"].as_u64().unwrap()).collect()
}

/// Every batch went as RabbitMQ's rules predict, and the model followed everything in it.
fn all_as_predicted(v: &Value, on: &str) {
    for b in v["batches"].as_array().unwrap() {
        assert_eq!(counts(b, "split"), counts(b, "predicted"), "on {on}: {b}");
        assert!(b.get("not_modelled").is_none_or(Value::is_null), "on {on}: {b}");
    }
}

#[test]
fn the_highest_priority_takes_all_under_auto_ack_and_first_pick_under_prefetch() {
    for url in targets("consumer priorities lesson") {
        let on = if url.is_some() { "RabbitMQ" } else { "embedded" };
        let v = play("consumer-priorities", url.as_deref());
        // Auto-ack: C3 (priority 10) is never full and takes all six, in order.
        assert_eq!(tasks(&v, 2), [1, 2, 3, 4, 5, 6, 7], "on {on}: C3 also takes #7 first under prefetch 1");
        // Prefetch 1: C3 full, the ring of equals C1, C2 gets #8 and #9.
        assert_eq!((tasks(&v, 0), tasks(&v, 1)), (vec![8], vec![9]), "on {on}");
        let b = v["batches"].as_array().unwrap();
        assert_eq!(
            (counts(&b[0], "split"), counts(&b[1], "split")),
            (vec![0, 0, 6], vec![1, 1, 1]),
            "on {on}"
        );
        all_as_predicted(&v, on);
        assert_eq!((v["lost"].as_u64(), v["redelivered"].as_u64()), (Some(0), Some(0)), "on {on}");
    }
}

#[test]
fn one_consumer_receives_and_the_next_takes_over_with_the_requeued_task_first() {
    for url in targets("single active consumer lesson") {
        let on = if url.is_some() { "RabbitMQ" } else { "embedded" };
        let v = play("single-active-consumer", url.as_deref());
        assert_eq!(tasks(&v, 0), [1, 2, 3, 4, 5], "on {on}: only C1 receives until it is killed");
        assert_eq!(tasks(&v, 1), [6, 7, 8, 9, 10, 11], "on {on}: C2 takes over, #6 (requeued) first");
        assert_eq!(tasks(&v, 2), Vec::<u64>::new(), "on {on}: C3 stands by throughout");
        assert_eq!((v["lost"].as_u64(), v["redelivered"].as_u64()), (Some(0), Some(1)), "on {on}");
        let b = v["batches"].as_array().unwrap();
        let splits: Vec<Vec<u64>> = b.iter().map(|b| counts(b, "split")).collect();
        assert_eq!(splits, [vec![4, 0, 0], vec![1, 3, 0], vec![3, 0]], "on {on}");
        all_as_predicted(&v, on);
    }
}
