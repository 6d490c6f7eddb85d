//! `warren play FILE`: a scenario in the TUI (captions, pause, step) or headless (the same
//! summary as --headless, plus what each step did and each batch's observed and predicted
//! distribution).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::player::{Played, Player};
use crate::app::{App, Dispatch, Lesson};
use crate::cli::{Config, PlayArgs, target};
use crate::headless::{
    DeadLetter, Driver, EXIT_ERROR, EXIT_OK, EXIT_TIMEOUT, Interrupted, Share, Summary, Theory,
    interrupted_early,
};
use crate::scenario::{self, Scenario};
use crate::signal::{Signal, Signals};
use crate::units;

/// The checked scenario (already scaled by --speed) and the config to run it with.
pub fn prepare(args: &PlayArgs) -> Result<(Scenario, Config), String> {
    if !(args.speed.is_finite() && (0.01..=1000.0).contains(&args.speed)) {
        return Err(format!(
            "--speed {} is out of range: give 0.01 to 1000 (10 plays a 60 s lesson in 6 s)",
            args.speed
        ));
    }
    if let Some(q) = &args.queue
        && (q.is_empty() || q.len() > 255 || q.starts_with("amq."))
    {
        return Err(format!(
            "--queue '{q}' is not usable: give 1 to 255 bytes, not starting with 'amq.' (reserved)"
        ));
    }
    let scenario = scenario::load(&args.file)?.scaled(args.speed);
    let headless = args.output.headless(0)?;
    let cfg = Config {
        target: target(&args.target)?,
        queue: (args.queue.clone().or_else(|| scenario.queue.clone()))
            .unwrap_or_else(|| "warren.lesson".into()),
        // Durable unless the lesson says `transient = true` (a quorum queue always is: the
        // scenario check refuses transient with quorum).
        durable: !scenario.transient,
        delays: scenario.delays.clone(),
        dispatch: Dispatch { mode: scenario.mode, prefetch: scenario.prefetch },
        priorities: scenario.priorities.clone(),
        single_active: scenario.single_active,
        burst: 10,
        rate: 5,
        headless,
        record: args.output.record.clone(),
        show_keys: args.output.keys,
        theme: args.output.theme(),
        policy: scenario.policy.clone(),
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

/// The summary with what RabbitMQ's rules predict for each batch beside what was observed.
pub fn summary_with_theory(app: &App, timed_out: bool) -> Summary {
    let mut summary = Summary::of(app, timed_out);
    for (report, b) in summary.batches.iter_mut().zip(&app.batches) {
        let (predicted, makespan) = b.predicted();
        let p = b.prediction();
        // The model numbers a batch's tasks from 1: its ids start at the batch's first.
        let base = b.ids.map_or(0, |(first, _)| first - 1);
        report.theory = Some(Theory {
            predicted_dead: p
                .dead
                .iter()
                .map(|&(i, reason)| DeadLetter { id: base + i, reason: reason.as_str() })
                .collect(),
            predicted_refused: p.refused.iter().map(|i| base + i).collect(),
            predicted_deliveries: p.deliveries as u64,
            predicted: predicted
                .into_iter()
                .map(|(id, n)| Share { consumer: format!("C{}", id + 1), processed: n as u64 })
                .collect(),
            predicted_makespan_ms: units::ms(makespan),
            not_modelled: b.unmodelled.clone(),
        });
    }
    summary
}

#[derive(Serialize)]
struct PlayReport {
    scenario: String,
    #[serde(flatten)]
    summary: Summary,
    steps: Vec<Played>,
}

/// `warren play FILE --headless`: returns the exit code.
pub async fn run_headless(scenario: Scenario, cfg: Config) -> u8 {
    let h = cfg.headless.clone().expect("headless play");
    let started = Instant::now();
    let mut signals = Signals::new();
    let start = tokio::select! {
        d = Driver::start_or_report(&cfg, true) => d,
        s = signals.recv() => return interrupted_early(s),
    };
    let Some(mut driver) = start else { return EXIT_ERROR };
    if let Some(why) = restart_refused(&scenario, &driver.app) {
        eprintln!("warren: {why}");
        driver.shutdown().await;
        return EXIT_ERROR;
    }
    let mut player = Player::new(&scenario, Instant::now());
    let mut ended = None;
    let finished = loop {
        for cmd in player.tick(&mut driver.app, Instant::now(), true) {
            driver.send(cmd).await;
        }
        if player.finished() && driver.app.settled() {
            break true;
        }
        if started.elapsed() > h.timeout {
            break false;
        }
        // Apply events as they come, and look at the timeline again soon.
        tokio::select! {
            _ = driver.wait_until(Duration::from_millis(10), |_| false) => {}
            s = signals.recv() => {
                ended = Some(s);
                break false;
            }
        }
    };
    let report = PlayReport {
        scenario: scenario.title.clone(),
        summary: summary_with_theory(&driver.app, !finished),
        steps: player.log.clone(),
    };
    if let Some(s) = ended {
        return report_interrupted_play(driver, report, h.json, s, signals, player.progress()).await;
    }
    driver.shutdown().await;
    if h.json {
        crate::out::line(serde_json::to_string(&report).expect("report serialises"));
    } else {
        crate::out::text(&table(&report));
    }
    let lost = report.summary.lost;
    if finished && lost > 0 && !scenario.expect_losses {
        eprintln!(
            "warren: {lost} of {} tasks were lost, not processed (the summary says why; a lesson \
             that loses tasks on purpose says expect_losses = true)",
            report.summary.published
        );
        EXIT_ERROR
    } else if finished {
        EXIT_OK
    } else {
        eprintln!(
            "warren: timed out after {} with {} of {} steps done (raise --timeout or --speed)",
            units::duration(h.timeout),
            player.progress().0,
            player.progress().1
        );
        EXIT_TIMEOUT
    }
}

/// A lesson that restarts the broker cannot be played on one warren does not run: refused
/// before it starts rather than played without its point.
pub(crate) fn restart_refused(scenario: &Scenario, app: &App) -> Option<String> {
    let step =
        scenario.steps.iter().position(|s| s.action == Some(crate::scenario::Action::RestartBroker))?;
    let broker = app.broker.as_ref().filter(|b| b.product != crate::broker::PRODUCT)?;
    Some(format!(
        "step {} restarts the broker, which warren can do only to its embedded broker, not to {} {} \
         at {}: play the lesson with --broker embedded",
        step + 1,
        broker.product,
        broker.version,
        broker.endpoint()
    ))
}

/// The report of a lesson a signal cut short, printed before the connections close (a second
/// signal ends at once); returns the signal's exit code.
async fn report_interrupted_play(
    driver: Driver,
    mut report: PlayReport,
    json_out: bool,
    s: Signal,
    signals: Signals,
    (done, all): (usize, usize),
) -> u8 {
    let interrupted = Interrupted::new(s, &report.summary);
    eprintln!(
        "warren: stopped by {s} with {done} of {all} steps done: {} tasks still in flight",
        interrupted.in_flight
    );
    report.summary.interrupted = Some(interrupted);
    if json_out {
        crate::out::line(serde_json::to_string(&report).expect("report serialises"));
    } else {
        crate::out::text(&table(&report));
    }
    signals.exit_on_next(s);
    driver.shutdown().await;
    s.exit_code()
}

fn table(r: &PlayReport) -> String {
    use std::fmt::Write;
    let mut out = format!("scenario: {}\n", r.scenario);
    out.push_str(&r.summary.table());
    let _ = writeln!(out, "\nsteps");
    for s in &r.steps {
        let caption = s.caption.as_deref().map(|c| format!(" — {c}")).unwrap_or_default();
        let _ = writeln!(out, "  {:>8}  {}{}", units::millis(s.at_ms), s.did, caption);
    }
    let _ = writeln!(out, "\ntheory (RabbitMQ's rules, from where things stood at each batch's publish)");
    for b in &r.summary.batches {
        let Some(t) = &b.theory else { continue };
        let predicted: Vec<String> =
            t.predicted.iter().map(|s| format!("{} {}", s.consumer, s.processed)).collect();
        // Only a finished batch can be said to differ; an unfinished one is still on its way.
        let differs = match &t.not_modelled {
            Some(why) => format!("  (not modelled: {why} during the batch)"),
            None if b.makespan_ms.is_none() || t.predicted == b.split => String::new(),
            None => "  (observed differs)".to_string(),
        };
        let _ = writeln!(
            out,
            "  #{:<3} would take {:<8} {}{differs}",
            b.id,
            units::millis(t.predicted_makespan_ms),
            predicted.join("  ")
        );
    }
    out
}
