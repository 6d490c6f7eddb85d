//! The scenario checks: every mistake named with its line, the bounds on files and timelines.

use super::*;
use limits::MAX_FILE;

const GOOD: &str = r#"
title = "t"
consumers = ["1s", "2s"]
mode = "fair"

[[step]]
at = "0s"
caption = "hello"

[[step]]
at = "1s"
publish = 4
weights = [3, 1]

[[step]]
at = "2s"
kill = 2
"#;

#[test]
fn a_good_scenario_parses_with_lines() {
    let s = parse(GOOD).unwrap();
    assert_eq!(s.mode, Mode::Fair);
    assert_eq!(s.delays, [Duration::from_secs(1), Duration::from_secs(2)]);
    assert_eq!(s.steps.len(), 3);
    assert_eq!(s.steps[1].action, Some(Action::Publish { count: 4, weights: vec![3.0, 1.0] }));
    assert_eq!(s.steps[2].action, Some(Action::Kill(1)));
    assert_eq!((s.steps[0].line, s.steps[2].line), (6, 15));
    assert!(!s.expect_losses, "losses are a failure unless the lesson says otherwise");
    assert!(parse(&GOOD.replacen("mode", "expect_losses = true\nmode", 1)).unwrap().expect_losses);
    let fast = s.scaled(10.0);
    assert_eq!(fast.delays[0], Duration::from_millis(100));
    assert_eq!(fast.steps[2].at, Duration::from_millis(200));
}

#[test]
fn broken_scenarios_name_the_line_and_the_problem() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\nat = \"soon\"\ncaption = \"x\"\n",
            3,
            "not a duration",
        ),
        ("title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\nat = \"1s\"\nkill = 2\n", 3, "numbered 1 to 1"),
        (
            "title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\nat = \"1s\"\npublish = 1\nkill = 1\n",
            3,
            "2 actions",
        ),
        (
            "title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\nat = \"2s\"\ncaption = \"a\"\n[[step]]\nat = \"1s\"\ncaption = \"b\"\n",
            6,
            "in order",
        ),
        ("title = \"t\"\nconsumers = [\"1s\"]\nmode = \"fast\"\n", 3, "neither"),
        ("title = \"t\"\nconsumers = [\"1s\"]\nexpect_losses = \"yes\"\n", 3, "expected a boolean"),
        ("title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\nat = \"1s\"\npublsh = 3\n", 5, "unknown field"),
        ("title = \"t\"\nconsumers = [\"1s\"\n", 2, ""),
        ("title = \"t\"\nconsumers = []\n", 2, "1 to 64"),
        ("title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\nat = \"0s\"\n", 3, "does nothing"),
        ("title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\nweights = [1]\n", 3, "without publish"),
        (
            "title = \"t\"\nconsumers = [\"1s\", \"2s\"]\n[[step]]\nkill = 1\n[[step]]\nkill = 1\n",
            5,
            "removed or killed before",
        ),
        (
            "title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\nremove = 1\n[[step]]\npublish = 3\n",
            5,
            "every consumer",
        ),
        (
            "title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\npublish = 3\n[[step]]\nremove = 1\n",
            5,
            "step 2 removes the last consumer while tasks may still be waiting",
        ),
        (
            "title = \"t\"\nconsumers = [\"1s\", \"2s\"]\nmode = \"fair\"\n[[step]]\npublish = 3\n\
                 [[step]]\nkill = 2\n[[step]]\nkill = 1\n[[step]]\nafter = \"settled\"\nadd = \"1s\"\n",
            8,
            "step 3 kills the last consumer",
        ),
    ];
    let mut many = "title = \"t\"\nconsumers = [\"1s\"]\n".to_string();
    for _ in 0..11 {
        many.push_str("[[step]]\npublish = 100000\n");
    }
    let (line, what) = parse(&many).unwrap_err();
    assert_eq!(
        (line, what.as_str()),
        (Some(23), "step 11: the lesson publishes more than 1000000 tasks in all")
    );
    for (text, line, want) in cases {
        let (got_line, what) = parse(text).expect_err(text);
        assert_eq!(got_line, Some(*line), "{text}: {what}");
        assert!(what.contains(want), "{text}: {what}");
    }
}

#[test]
fn the_last_consumer_may_go_once_the_work_is_settled_or_someone_takes_over() {
    let ok = [
        // The wait comes first: nothing is left to strand.
        "title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\npublish = 3\n[[step]]\nafter = \"settled\"\nremove = 1\n",
        // A consumer added later takes the queued tasks.
        "title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\npublish = 3\n[[step]]\nkill = 1\n[[step]]\nadd = \"1s\"\n[[step]]\nafter = \"settled\"\ncaption = \"x\"\n",
        // Nothing was published: nothing waits.
        "title = \"t\"\nconsumers = [\"1s\"]\n[[step]]\nremove = 1\n",
    ];
    for text in ok {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    }
}

#[test]
fn oversized_and_endless_files_are_refused_unread() {
    let dir = std::env::temp_dir().join(format!("warren-scn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.toml");
    // Sparse: the size alone must refuse it, whatever is (not) in it.
    std::fs::File::create(&big).unwrap().set_len(MAX_FILE + 1).unwrap();
    let err = load(&big).unwrap_err();
    assert!(err.ends_with("big.toml: larger than 1024 KiB: not a lesson (is it the right file?)"), "{err}");
    let started = std::time::Instant::now();
    let err = load(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(err, "/dev/zero: larger than 1024 KiB: not a lesson (is it the right file?)");
    assert!(started.elapsed() < Duration::from_secs(5), "read at most 1 MiB of /dev/zero");
    let err = load(&dir).unwrap_err();
    assert!(err.ends_with("is a directory, not a scenario file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn load_prefixes_the_file_name() {
    let err = load(Path::new("/nonexistent/lesson.toml")).unwrap_err();
    assert!(err.starts_with("/nonexistent/lesson.toml: cannot read it"), "{err}");
}

#[test]
fn a_broker_restart_step_and_the_transient_key() {
    let text = GOOD.replace("kill = 2", "restart_broker = true");
    let s = parse(&text).unwrap();
    assert_eq!(s.steps[2].action, Some(Action::RestartBroker));
    assert_eq!(Action::RestartBroker.describe(), "restart the broker");
    assert!(!s.transient, "a lesson's queue is durable unless it says otherwise");
    assert!(parse(&text.replacen("mode", "transient = true\nmode", 1)).unwrap().transient);
    let quorum = text.replacen("mode", "transient = true\nqueue_type = \"quorum\"\nmode", 1);
    let (_, e) = parse(&quorum).unwrap_err();
    assert_eq!(e, "transient = true with queue_type = \"quorum\": a quorum queue is always durable");
    let (line, e) = parse(&GOOD.replace("kill = 2", "kill = 2\nrestart_broker = true")).unwrap_err();
    assert_eq!(line, Some(15), "the step's line");
    assert!(e.contains("step 3 has 2 actions (kill C2, restart the broker)"), "{e}");
}
