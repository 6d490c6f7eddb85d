//! The flags, checked: every default, every refusal and its one-line message.

use super::*;

fn cli(args: &[&str]) -> Result<Config, String> {
    let mut argv = vec!["warren"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).map_err(|e| e.to_string())?.into_config()
}

#[test]
fn defaults_match_the_readme() {
    let c = cli(&[]).unwrap();
    assert!(matches!(c.target, Target::Auto));
    let Target::Url(uri) = cli(&["--url", DEFAULT_URL]).unwrap().target else { panic!() };
    assert_eq!(uri.authority.port, 5672);
    assert!(matches!(cli(&["--broker", "embedded"]).unwrap().target, Target::Embedded(None)));
    let both = cli(&["--broker", "embedded", "--url", DEFAULT_URL]).unwrap();
    assert!(matches!(both.target, Target::Embedded(None)), "--broker embedded wins over a URL");
    assert_eq!(c.queue, "warren.tasks");
    assert!(c.durable);
    assert_eq!(c.delays, [1, 10, 15].map(Duration::from_secs));
    assert_eq!(c.dispatch, Dispatch { mode: Mode::RoundRobin, prefetch: 1 });
    assert!(c.headless.is_none());
}

#[test]
fn a_data_dir_is_the_embedded_brokers_and_never_ignored() {
    let Target::Embedded(Some(dir)) = cli(&["--data-dir", "/tmp/w"]).unwrap().target else { panic!() };
    assert_eq!(dir, std::path::Path::new("/tmp/w"), "--data-dir implies the embedded broker");
    let with_url = cli(&["--data-dir", "/tmp/w", "--url", DEFAULT_URL]).unwrap_err();
    assert_eq!(
        with_url,
        "--data-dir /tmp/w is for warren's embedded broker, but --url (or AMQP_URL) names another: \
         drop one, or add --broker embedded"
    );
    let both = cli(&["--data-dir", "/tmp/w", "--url", DEFAULT_URL, "--broker", "embedded"]).unwrap();
    assert!(matches!(both.target, Target::Embedded(Some(_))));
}

#[test]
fn the_last_delay_repeats() {
    let c = cli(&["--consumers", "5", "--delay", "20ms, 200ms"]).unwrap();
    let ms: Vec<u128> = c.delays.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [20, 200, 200, 200, 200]);
}

#[test]
fn bad_values_say_what_to_do() {
    let cases: &[(&[&str], &str)] = &[
        (&["--consumers", "0"], "give 1 to 64"),
        (&["--delay", "fast"], "use values like 500ms"),
        (&["--delay", "1s,2s,3s,4s"], "only 3 consumers"),
        (&["--url", "http://x"], "expected amqp://"),
        (&["--url", "amqp://guest:s3cret@"], "host"),
        (&["--queue", "amq.foo"], "reserved"),
        (&["--headless"], "needs --publish"),
        (&["--headless", "--publish", "0"], "--publish 0 publishes nothing: give 1 to 1000000 tasks"),
        (
            &["--headless", "--publish", "1000001"],
            "--publish 1000001 is more than the limit of 1000000 tasks",
        ),
        (&["--headless", "--publish", "4000000000"], "limit of 1000000"),
        (&["--headless", "--publish", "3", "--timeout", "soon"], "not a duration"),
        (&["--headless", "--publish", "3", "--timeout", "5000000y"], "at most 7d"),
        (&["--json"], "--headless"),
        (&["--mode", "random"], "possible values"),
        (&["--prefetch", "-1"], "invalid value '-1'"),
    ];
    for (args, want) in cases {
        let err = cli(args).expect_err(&format!("{args:?} should fail"));
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn usage_errors_are_one_line_in_clap_words_naming_help() {
    let one = |args: &[&str]| {
        let mut argv = vec!["warren"];
        argv.extend_from_slice(args);
        usage_error(&Cli::try_parse_from(&argv).expect_err("a usage error"), argv.get(1).copied())
    };
    let cases: &[(&[&str], &str)] = &[
        (
            &["--consumers", "-1"],
            "invalid value '-1' for '--consumers <CONSUMERS>': not a whole number; see `warren --help`",
        ),
        (
            &["--prefetch", "70000"],
            "invalid value '70000' for '--prefetch <PREFETCH>': 70000 is not in 0..=65535; see `warren --help`",
        ),
        (
            &["--mode", "xyz"],
            "invalid value 'xyz' for '--mode <MODE>' [possible values: rr, fair]; see `warren --help`",
        ),
        (&["--bogus"], "unexpected argument '--bogus' found; see `warren --help`"),
        (
            &["--mod", "fair"],
            "unexpected argument '--mod' found; tip: a similar argument exists: '--mode'; see `warren --help`",
        ),
        (&["play"], "the following required arguments were not provided: <FILE>; see `warren play --help`"),
        (&["play", "x.toml", "--bogus"], "unexpected argument '--bogus' found; see `warren play --help`"),
        (
            &["broker", "--user", "u"],
            "the following required arguments were not provided: --password <PASSWORD>; see `warren broker --help`",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(one(args), *want, "{args:?}");
    }
}

#[test]
fn passwords_never_appear_in_messages() {
    let err = cli(&["--url", "amqp://bob:hunter2@host:notaport/"]).unwrap_err();
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("bob:***@host"), "{err}");
}

#[test]
fn the_theme_flag_wins_over_no_color() {
    use std::ffi::OsStr;
    let parsed = |args: &[&str]| {
        let mut argv = vec!["warren"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().output.theme
    };
    let set = Some(OsStr::new("1"));
    let empty = Some(OsStr::new(""));
    let cases = [
        (&["--theme", "mono"][..], None, Theme::Mono),
        (&["--theme", "high-contrast"], set, Theme::HighContrast),
        (&["--theme", "default"], set, Theme::Default),
        (&[], set, Theme::Mono),
        (&[], empty, Theme::Default),
        (&[], None, Theme::Default),
    ];
    for (args, no_color, want) in cases {
        // Skip the env-dependent rows if WARREN_THEME is set where the tests run.
        if args.is_empty() && std::env::var_os("WARREN_THEME").is_some() {
            continue;
        }
        assert_eq!(theme(parsed(args), no_color), want, "{args:?} NO_COLOR={no_color:?}");
    }
    let err = cli(&["--theme", "neon"]).unwrap_err();
    assert!(err.contains("high-contrast") && err.contains("mono"), "{err}");
}

#[test]
fn headless_flags_are_checked() {
    let c = cli(&["--headless", "--publish", "9", "--json", "--timeout", "30s"]).unwrap();
    let h = c.headless.unwrap();
    assert_eq!((h.publish, h.json, h.timeout), (9, true, Duration::from_secs(30)));
}

#[test]
fn priorities_and_single_active_reach_the_config() {
    let c = cli(&["--priority", "10,0", "--single-active"]).unwrap();
    assert_eq!((c.priorities, c.single_active), (vec![10, 0, 0], true));
    let c = cli(&[]).unwrap();
    assert_eq!((c.priorities, c.single_active), (vec![0, 0, 0], false));
    assert_eq!(cli(&["--priority", "-5"]).unwrap().priorities, [-5, 0, 0], "a negative priority is a value");
    assert_eq!(
        cli(&["--priority", "1,2,3,4"]).unwrap_err(),
        "--priority lists 4 values but there are only 3 consumers: give at most one per consumer, \
         or raise --consumers"
    );
}
