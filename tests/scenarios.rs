//! Every shipped scenario, replayed headless on the embedded broker at 4x speed, with its
//! outcome asserted, and the theory model checked against what was observed. (4x keeps every
//! dispatch decision at least tens of milliseconds from a tie on a loaded machine.)

use std::process::Command;

use serde_json::Value;

fn play(name: &str) -> Value {
    let file = format!("{}/assets/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let out = play_file(&file);
    assert_eq!(out.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn play_file(file: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_warren"))
        .args([
            "play",
            file,
            "--headless",
            "--json",
            "--broker",
            "embedded",
            "--speed",
            "4",
            "--timeout",
            "2m",
        ])
        .env_remove("AMQP_URL")
        .output()
        .expect("warren runs")
}

/// A batch's `split` (what happened) or `predicted` (the theory): processed per consumer.
fn counts(batch: &Value, key: &str) -> Vec<u64> {
    batch[key].as_array().unwrap().iter().map(|share| share["processed"].as_u64().unwrap()).collect()
}

fn tasks(v: &Value, consumer: usize) -> Vec<u64> {
    v["consumers"][consumer]["tasks"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect()
}

/// What RabbitMQ's rules predict is what happened.
fn as_predicted(name: &str, batch: &Value) {
    assert_eq!(counts(batch, "split"), counts(batch, "predicted"), "{name}: {batch}");
}

#[test]
fn classic_round_robin_splits_two_two_one_in_rotation() {
    let v = play("classic-round-robin");
    assert_eq!((tasks(&v, 0), tasks(&v, 1), tasks(&v, 2)), (vec![1, 4], vec![2, 5], vec![3]));
    as_predicted("classic-round-robin", &v["batches"][0]);
    assert_eq!(v["steps"].as_array().unwrap().len(), 3);
}

#[test]
fn classic_fair_dispatch_gives_the_fast_consumer_most_of_the_work() {
    let v = play("classic-fair-dispatch");
    let b = &v["batches"][0];
    assert_eq!(counts(b, "split"), [8, 1, 1]);
    as_predicted("classic-fair-dispatch", b);
}

#[test]
fn odd_heavy_tasks_all_go_to_one_consumer_under_round_robin_only() {
    let v = play("odd-heavy-even-light");
    assert_eq!(tasks(&v, 0)[..4], [1, 3, 5, 7], "round-robin: C1 gets every heavy task");
    as_predicted("odd-heavy rr", &v["batches"][0]);
    as_predicted("odd-heavy fair", &v["batches"][1]);
    let (rr, fair) = (&v["batches"][0]["makespan_ms"], &v["batches"][1]["makespan_ms"]);
    assert!(fair.as_u64() < rr.as_u64(), "fair {fair} should beat round-robin {rr}");
}

#[test]
fn a_kill_loses_work_under_auto_ack_and_redelivers_it_under_manual_ack() {
    let v = play("kill-with-work-in-hand");
    assert_eq!(v["lost"], 3, "{v}");
    assert_eq!(v["lost_reasons"]["consumer killed under auto-ack"], 3);
    assert_eq!(v["redelivered"], 1);
    assert_eq!((v["published"].as_u64(), v["processed"].as_u64()), (Some(10), Some(7)));
    assert_eq!(tasks(&v, 1)[..3], [2, 4, 6], "C2's share of the rotation");
    assert!(tasks(&v, 1).contains(&8), "task 8 was redelivered to C2");
    // The losses belong to the auto-ack batch, and the report says so per batch.
    let b = v["batches"].as_array().unwrap();
    assert_eq!(
        (b[0]["published"].as_u64(), b[0]["processed"].as_u64(), b[0]["lost"].as_u64()),
        (Some(6), Some(3), Some(3)),
        "{v}"
    );
    assert_eq!(
        b[0]["split"],
        serde_json::json!([{"consumer": "C1", "processed": 0}, {"consumer": "C2", "processed": 3}])
    );
    assert_eq!((b[1]["processed"].as_u64(), b[1]["lost"].as_u64()), (Some(4), Some(0)), "{v}");
    // The theory follows both kills: the auto-ack losses and the redelivery of #8.
    as_predicted("kill-with-work-in-hand auto-ack", &b[0]);
    as_predicted("kill-with-work-in-hand manual ack", &b[1]);
    assert_eq!(v["timed_out"], false);
    // Across both batches: from the first publish to the last task settled.
    let whole = v["makespan_ms"].as_u64().expect("every batch finished");
    let last = b[1]["makespan_ms"].as_u64().unwrap();
    assert!(whole > last, "the whole run ({whole}ms) spans more than its last batch ({last}ms)");
}

#[test]
fn a_lesson_that_loses_tasks_fails_unless_it_expects_losses() {
    let shipped = std::fs::read_to_string(format!(
        "{}/assets/scenarios/kill-with-work-in-hand.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert!(shipped.contains("\nexpect_losses = true\n"), "the shipped lesson expects its losses");
    let dir = std::env::temp_dir().join(format!("warren-lossy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lossy.toml");
    std::fs::write(&file, shipped.replace("\nexpect_losses = true\n", "\n")).unwrap();
    let out = play_file(file.to_str().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("3 of 10 tasks were lost"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    // The report is still printed in full.
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["lost"], 3);
}

#[test]
fn a_prefetch_sweep_moves_from_fair_to_round_robin() {
    let v = play("prefetch-sweep");
    let b = v["batches"].as_array().unwrap();
    assert_eq!(counts(&b[0], "split"), [24, 6], "prefetch 1");
    assert_eq!(counts(&b[1], "split"), [18, 12], "prefetch 10: ten each at once, then by speed");
    assert_eq!(counts(&b[2], "split"), [15, 15], "unlimited: half each");
    for batch in b {
        as_predicted("prefetch-sweep", batch);
    }
}

#[test]
fn the_same_workload_finishes_sooner_under_fair_dispatch() {
    let v = play("both-modes-back-to-back");
    let b = v["batches"].as_array().unwrap();
    as_predicted("both-modes rr", &b[0]);
    as_predicted("both-modes fair", &b[1]);
    let (rr, fair) = (b[0]["makespan_ms"].as_u64().unwrap(), b[1]["makespan_ms"].as_u64().unwrap());
    assert!(fair * 2 < rr, "fair {fair}ms vs round-robin {rr}ms");
}

#[test]
fn a_broken_scenario_names_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("warren-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.toml");
    std::fs::write(&file, "title = \"x\"\nconsumers = [\"1s\"]\n\n[[step]]\nat = \"1s\"\nkill = 3\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["play", file.to_str().unwrap(), "--headless"])
        .output()
        .expect("warren runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("broken.toml:4: step 1 would kill consumer 3"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

/// `warren play FILE --headless`: exit 1 with one stderr line, at once.
fn refused(file: &str) -> String {
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["play", file, "--headless", "--broker", "embedded"])
        .env_remove("AMQP_URL")
        .output()
        .expect("warren runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty(), "refused before any run");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "no wait for --timeout");
    stderr
}

#[test]
fn a_lesson_that_strands_its_tasks_is_refused_not_waited_for() {
    let dir = std::env::temp_dir().join(format!("warren-strand-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("strand.toml");
    let text = "title = \"x\"\nconsumers = [\"1s\", \"2s\"]\nmode = \"fair\"\n\n[[step]]\npublish = 20\n\n\
                [[step]]\nat = \"1s\"\nremove = 1\n\n[[step]]\nat = \"2s\"\nkill = 2\n";
    std::fs::write(&file, text).unwrap();
    let stderr = refused(file.to_str().unwrap());
    assert!(
        stderr.contains("strand.toml:12: step 3 kills the last consumer while tasks may still be waiting"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_endless_file_is_refused_after_one_mebibyte() {
    let stderr = refused("/dev/zero");
    assert_eq!(
        stderr.trim_end(),
        "warren: /dev/zero: larger than 1024 KiB: not a lesson (is it the right file?)"
    );
}
