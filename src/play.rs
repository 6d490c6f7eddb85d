//! `warren play FILE`: a scenario in the TUI (captions, pause, step) or headless (the same
//! summary as --headless, plus what each step did and each batch's observed and predicted
//! distribution).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::player::{Played, Player};
use crate::app::{App, Dispatch, Lesson};
use crate::cli::{Config, PlayArgs, target};
use crate::headless::{Driver, EXIT_ERROR, EXIT_OK, EXIT_TIMEOUT, Summary};
use crate::scenario::{self, Scenario};

/// The checked scenario (already scaled by --speed) and the config to run it with.
pub fn prepare(args: &PlayArgs) -> Result<(Scenario, Config), String> {
    if !(args.speed.is_finite() && (0.01..=1000.0).contains(&args.speed)) {
        return Err(format!(
            "--speed {} is out of range: give 0.01 to 1000 (10 plays a 60 s lesson in 6 s)",
            args.speed
        ));
    }
    let scenario = scenario::load(&args.file)?.scaled(args.speed);
    let headless = args.output.headless(0)?;
    let cfg = Config {
        target: target(args.target.url.as_deref(), args.target.broker)?,
        queue: scenario.queue.clone().unwrap_or_else(|| "warren.lesson".into()),
        durable: false,
        delays: scenario.delays.clone(),
        dispatch: Dispatch { mode: scenario.mode, prefetch: scenario.prefetch },
        burst: 10,
        rate: 5,
        headless,
        record: args.output.record.clone(),
        show_keys: args.output.keys,
        theme: args.output.theme(),
    };
    Ok((scenario, cfg))
}

/// The lesson line the screen shows, from the player's state.
pub fn lesson(title: &str, player: &Player) -> Lesson {
    Lesson {
        title: title.to_string(),
        caption: player.caption.clone(),
        paused: player.paused(),
        waiting: player.waiting(),
        step: player.progress(),
    }
}

/// One batch as observed and as the theory model predicts it.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub size: u32,
    pub mode: crate::app::Mode,
    pub prefetch: u16,
    pub makespan_ms: Option<u64>,
    /// Tasks of this batch per consumer, in consumer order ("C1", count).
    pub observed: Vec<(String, u32)>,
    pub predicted: Vec<(String, usize)>,
    pub predicted_makespan_ms: u64,
}

/// Tasks of a batch per consumer: those live at its start, then any that joined and took some.
pub fn observed(b: &crate::app::Batch) -> Vec<(String, u32)> {
    let mut ids: Vec<usize> = b.consumers.iter().map(|(id, _)| *id).collect();
    let joined: Vec<usize> =
        (0..b.done_by.len()).filter(|id| b.done_by[*id] > 0 && !ids.contains(id)).collect();
    ids.extend(joined);
    ids.iter().map(|id| (format!("C{}", id + 1), b.done_by.get(*id).copied().unwrap_or(0))).collect()
}

pub fn batch_reports(app: &App) -> Vec<BatchReport> {
    app.batches
        .iter()
        .map(|b| {
            let (predicted, makespan) = b.predicted();
            BatchReport {
                size: b.size,
                mode: b.dispatch.mode,
                prefetch: b.dispatch.prefetch,
                makespan_ms: b.makespan().map(|d| d.as_millis() as u64),
                observed: observed(b),
                predicted: predicted.into_iter().map(|(id, n)| (format!("C{}", id + 1), n)).collect(),
                predicted_makespan_ms: makespan.as_millis() as u64,
            }
        })
        .collect()
}

#[derive(Serialize)]
struct PlayReport {
    scenario: String,
    #[serde(flatten)]
    summary: Summary,
    steps: Vec<Played>,
    batches: Vec<BatchReport>,
}

/// `warren play FILE --headless`: returns the exit code.
pub async fn run_headless(scenario: Scenario, cfg: Config) -> u8 {
    let h = cfg.headless.clone().expect("headless play");
    let started = Instant::now();
    let Some(mut driver) = Driver::start_or_report(&cfg, true).await else { return EXIT_ERROR };
    let mut player = Player::new(&scenario, Instant::now());
    let finished = loop {
        for cmd in player.tick(&mut driver.app, Instant::now(), true) {
            driver.send(cmd);
        }
        if player.finished() && driver.app.settled() {
            break true;
        }
        if started.elapsed() > h.timeout {
            break false;
        }
        // Apply events as they come, and look at the timeline again soon.
        driver.wait_until(Duration::from_millis(10), |_| false).await;
    };
    let report = PlayReport {
        scenario: scenario.title.clone(),
        summary: Summary::of(&driver.app),
        steps: player.log.clone(),
        batches: batch_reports(&driver.app),
    };
    driver.shutdown().await;
    if h.json {
        println!("{}", serde_json::to_string(&report).expect("report serialises"));
    } else {
        print!("{}", table(&report));
    }
    if finished {
        EXIT_OK
    } else {
        eprintln!(
            "warren: timed out after {} with {} of {} steps done (raise --timeout or --speed)",
            humantime::format_duration(h.timeout),
            player.progress().0,
            player.progress().1
        );
        EXIT_TIMEOUT
    }
}

fn table(r: &PlayReport) -> String {
    use std::fmt::Write;
    let mut out = format!("scenario: {}\n", r.scenario);
    out.push_str(&r.summary.table());
    let _ = writeln!(out, "\nsteps");
    for s in &r.steps {
        let caption = s.caption.as_deref().map(|c| format!(" — {c}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:>8}  {}{}",
            humantime::format_duration(Duration::from_millis(s.at_ms)),
            s.did,
            caption
        );
    }
    let _ = writeln!(out, "\nbatches (observed vs predicted by RabbitMQ's rules)");
    for (i, b) in r.batches.iter().enumerate() {
        let show = |v: Vec<String>| v.join(" ");
        let observed = show(b.observed.iter().map(|(c, n)| format!("{c}:{n}")).collect());
        let predicted = show(b.predicted.iter().map(|(c, n)| format!("{c}:{n}")).collect());
        let took = b.makespan_ms.map_or("-".to_string(), |ms| format!("{ms}ms"));
        let _ = writeln!(
            out,
            "  #{} {} tasks {}/{}: took {took} (predicted {}ms); observed {observed}; predicted {predicted}",
            i + 1,
            b.size,
            b.mode.short(),
            b.prefetch,
            b.predicted_makespan_ms
        );
    }
    out
}
