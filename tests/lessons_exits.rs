//! The lessons about tasks that leave the queue otherwise than by being done (a poison task
//! and a delivery limit, a capped queue dropping or refusing, a time to live), replayed headless
//! at 4x on the embedded broker and, when `WARREN_TEST_AMQP_URL` is set, on RabbitMQ, with the
//! same assertions: which ids are dead-lettered and why, which are refused, how many
//! deliveries, and that the theory model predicted exactly that. Each run uses its own queues
//! and deletes them afterwards.

mod common;

use std::process::Command;

use serde_json::{Value, json};

/// Where a lesson runs: the embedded broker (`None`) or RabbitMQ at this URL.
fn play(name: &str, url: Option<&str>) -> Value {
    let file = format!("{}/assets/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let queue = common::unique_queue(name);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.args(["play", &file, "--headless", "--json", "--speed", "4", "--timeout", "2m", "--queue", &queue]);
    match url {
        Some(u) => cmd.args(["--url", u]),
        None => cmd.args(["--broker", "embedded"]),
    };
    let out = cmd.env_remove("AMQP_URL").output().expect("warren runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(u) = url {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            common::delete_queue(u, &queue).await;
            common::delete_queue(u, &format!("{queue}.dead")).await;
        });
    }
    assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// Run `check` on the lesson's report from every broker.
fn on_every_broker(name: &str, check: impl Fn(&str, &Value)) {
    check("embedded", &play(name, None));
    if let Some(url) = common::broker_url(name) {
        check("RabbitMQ", &play(name, Some(&url)));
    }
}

fn counts(batch: &Value, key: &str) -> Vec<u64> {
    batch[key].as_array().unwrap().iter().map(|share| share["processed"].as_u64().unwrap()).collect()
}

fn tasks(v: &Value, consumer: usize) -> Vec<u64> {
    v["consumers"][consumer]["tasks"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect()
}

/// Every task is in one place: done, dead or refused (none lost, none left over).
fn all_accounted(on: &str, v: &Value) {
    let sum = ["processed", "lost", "dead", "refused"].iter().map(|k| v[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(Some(sum), v["published"].as_u64(), "{on}: {v}");
    assert_eq!(v["lost"], 0, "{on}: {v}");
    assert_eq!(v["timed_out"], false, "{on}: {v}");
}

#[test]
fn a_poison_task_is_redelivered_until_the_delivery_limit_dead_letters_it() {
    on_every_broker("poison-task", |on, v| {
        all_accounted(on, v);
        assert_eq!(v["dead_letters"], json!([{"id": 3, "reason": "delivery_limit"}]), "{on}: {v}");
        // Limit 2: three deliveries of #3 (two of them redeliveries), then dead-lettered.
        assert_eq!(v["redelivered"], 2, "{on}: {v}");
        assert_eq!((tasks(v, 0), tasks(v, 1)), (vec![1, 6], vec![2, 4, 5]), "{on}: {v}");
        let b = &v["batches"][0];
        assert_eq!(counts(b, "split"), counts(b, "predicted"), "{on}: {b}");
        assert_eq!(b["dead_letters"], b["predicted_dead"], "{on}: {b}");
        assert_eq!(b["predicted_deliveries"], 8, "6 tasks, #3 three times");
    });
}

#[test]
fn a_capped_queue_drops_its_oldest_and_a_stale_task_expires() {
    on_every_broker("capped-queue-drop-head", |on, v| {
        all_accounted(on, v);
        let maxlen: Vec<Value> = (3..=7).map(|id| json!({"id": id, "reason": "maxlen"})).collect();
        let mut dead = maxlen;
        dead.push(json!({"id": 10, "reason": "expired"}));
        assert_eq!(v["dead_letters"], Value::Array(dead), "{on}: {v}");
        assert_eq!(v["dead_reasons"], json!({"expired": 1, "maxlen": 5}), "{on}: {v}");
        assert_eq!((tasks(v, 0), tasks(v, 1)), (vec![1, 8], vec![2, 9]), "{on}: {v}");
        assert_eq!(v["refused"], 0);
        let b = &v["batches"][0];
        assert_eq!(counts(b, "split"), counts(b, "predicted"), "{on}: {b}");
        assert_eq!(b["dead_letters"], b["predicted_dead"], "{on}: {b}");
    });
}

#[test]
fn a_capped_queue_that_rejects_publishes_shows_the_producer_its_nacks() {
    on_every_broker("capped-queue-reject-publish", |on, v| {
        all_accounted(on, v);
        assert_eq!(v["refused_ids"], json!([6, 7, 8, 9, 10]), "{on}: {v}");
        assert_eq!((v["confirmed"].as_u64(), v["dead"].as_u64()), (Some(5), Some(0)), "{on}: {v}");
        assert_eq!((tasks(v, 0), tasks(v, 1)), (vec![1, 3, 5], vec![2, 4]), "{on}: {v}");
        let b = &v["batches"][0];
        assert_eq!(counts(b, "split"), counts(b, "predicted"), "{on}: {b}");
        assert_eq!(b["refused_ids"], b["predicted_refused"], "{on}: {b}");
    });
}
