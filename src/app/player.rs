//! Plays a scenario's timeline against the App: which steps are due, captions, pausing for the
//! presenter, stepping ahead, and the log of what happened when. Pure: time comes in as `now`.

use std::time::{Duration, Instant};

use super::{App, Command};
use crate::scenario::{Action, Scenario, Step};

/// One line of the log: when a step ran (scenario time) and what it did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Played {
    pub at_ms: u64,
    pub did: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

pub struct Player {
    steps: Vec<Step>,
    next: usize,
    /// The clock: scenario time = now - origin - paused, where origin moves when a step waits
    /// for the queue to settle, or when the presenter steps ahead.
    origin: Instant,
    paused_since: Option<Instant>,
    /// A pause step or the presenter stopped the clock.
    pub caption: Option<String>,
    pub log: Vec<Played>,
    waiting_since: Option<Instant>,
    /// The presenter stepped ahead: the next step does not wait for the queue.
    skip_wait: bool,
    /// The presenter stepped ahead while paused: run that one step, stay paused.
    step_once: bool,
}

impl Player {
    pub fn new(scenario: &Scenario, now: Instant) -> Self {
        Self {
            steps: scenario.steps.clone(),
            next: 0,
            origin: now,
            paused_since: None,
            caption: None,
            log: Vec::new(),
            waiting_since: None,
            skip_wait: false,
            step_once: false,
        }
    }

    /// Scenario time now.
    pub fn elapsed(&self, now: Instant) -> Duration {
        self.frozen_since().unwrap_or(now).saturating_duration_since(self.origin)
    }

    /// The clock stands still while paused or waiting; from the earlier of the two.
    fn frozen_since(&self) -> Option<Instant> {
        match (self.paused_since, self.waiting_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Let the clock run again from `now`: the frozen time does not count, once.
    fn thaw(&mut self, now: Instant) {
        if let Some(since) = self.frozen_since() {
            self.origin += now.saturating_duration_since(since);
        }
        // Whatever still freezes it (a pause or a wait that goes on) starts counting from now.
        if self.paused_since.is_some() {
            self.paused_since = Some(now);
        }
        if self.waiting_since.is_some() {
            self.waiting_since = Some(now);
        }
    }

    pub fn paused(&self) -> bool {
        self.paused_since.is_some()
    }

    pub fn waiting(&self) -> bool {
        self.waiting_since.is_some()
    }

    pub fn finished(&self) -> bool {
        self.next >= self.steps.len()
    }

    /// (steps done, steps in all)
    pub fn progress(&self) -> (usize, usize) {
        (self.next, self.steps.len())
    }

    /// Stop or restart the clock. The App's pause rules (`tick` follows `App::paused`); the
    /// event loop also calls this right after the key, so the clock stops to the frame.
    pub fn set_paused(&mut self, paused: bool, now: Instant) {
        if paused == self.paused() {
            return;
        }
        if paused {
            self.paused_since = Some(now);
        } else {
            self.thaw(now);
            self.paused_since = None;
        }
    }

    /// Run the next step now: jump the clock to it and end a wait for the queue (the presenter
    /// decides to go on). While paused, that one step runs and the lesson stays paused.
    pub fn step_ahead(&mut self, now: Instant) {
        if self.waiting_since.is_some() {
            self.thaw(now);
            self.waiting_since = None;
        }
        self.skip_wait = true;
        self.step_once = self.paused();
        if let Some(step) = self.steps.get(self.next) {
            let elapsed = self.elapsed(now);
            if step.at > elapsed {
                self.origin = self.origin.checked_sub(step.at - elapsed).unwrap_or(self.origin);
            }
        }
    }

    /// Run every step that is due; returns the commands for the workload. `headless` skips
    /// presenter pauses. The clock follows the App's pause, which freezes the whole demo.
    pub fn tick(&mut self, app: &mut App, now: Instant, headless: bool) -> Vec<Command> {
        self.set_paused(app.paused(), now);
        let mut out = Vec::new();
        while !self.paused() || self.step_once {
            let Some(step) = self.steps.get(self.next).cloned() else { break };
            if step.after_settled && !app.settled() && !self.skip_wait {
                // The timeline waits: its clock stands still until the queue has settled.
                self.waiting_since.get_or_insert(now);
                break;
            }
            self.skip_wait = false;
            if self.waiting_since.is_some() {
                self.thaw(now);
                self.waiting_since = None;
            }
            if self.elapsed(now) < step.at {
                break;
            }
            self.next += 1;
            if let Some(text) = &step.caption {
                self.caption = Some(text.clone());
            }
            let did = step.action.as_ref().map_or_else(|| "caption".to_string(), Action::describe);
            self.log.push(Played { at_ms: step.at.as_millis() as u64, did, caption: step.caption.clone() });
            match &step.action {
                Some(Action::Pause) if !headless => {
                    // The whole demo stops for the presenter, not only the timeline.
                    out.extend(app.set_paused(true, now));
                    self.set_paused(true, now);
                }
                Some(action) => out.extend(apply(app, action, now)),
                None => {}
            }
            if std::mem::take(&mut self.step_once) && self.paused() {
                break;
            }
        }
        out
    }
}

/// What a step does to the app, as the same actions a presenter's keys would take.
fn apply(app: &mut App, action: &Action, now: Instant) -> Option<Command> {
    match action {
        Action::Publish { count, weights } => Some(app.start_weighted_batch(*count, weights.clone(), now)),
        // Straight to the App, not through keys: a step must run even while the help is open.
        Action::Mode(mode) => (app.dispatch.mode != *mode).then(|| app.set_mode(*mode, now)),
        Action::Prefetch(p) => app.set_prefetch(*p, now),
        Action::Delay { consumer, to } => app.set_delay(*consumer, *to),
        Action::Add(delay, priority) => Some(app.add_consumer_with_priority(*delay, *priority)),
        Action::Remove(c) => app.remove_consumer(*c),
        Action::Kill(c) => app.kill_consumer(*c, now),
        Action::Pause => None,
        Action::RestartBroker => app.restart_broker(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Action as Key, AppOptions, Dispatch, Event, Mode, Msg};
    use crate::scenario::parse;

    const LESSON: &str = r#"
title = "t"
consumers = ["1s", "2s"]

[[step]]
at = "0s"
caption = "hello"

[[step]]
at = "1s"
publish = 2

[[step]]
at = "1s"
after = "settled"
mode = "fair"

[[step]]
at = "2s"
pause = true
caption = "look"

[[step]]
at = "3s"
kill = 2
"#;

    fn app(now: Instant) -> App {
        let opts =
            AppOptions { burst: 1, rate: 1, ..crate::app::testing::options(&[1000, 2000], Mode::RoundRobin) };
        App::new(opts, now)
    }

    #[test]
    fn steps_run_on_time_wait_for_the_queue_and_pause_for_the_presenter() {
        let t0 = Instant::now();
        let s = parse(LESSON).unwrap();
        let mut a = app(t0);
        let mut p = Player::new(&s, t0);
        assert!(p.tick(&mut a, t0, false).is_empty());
        assert_eq!(p.caption.as_deref(), Some("hello"));
        let cmds = p.tick(&mut a, t0 + Duration::from_secs(1), false);
        assert!(matches!(cmds[..], [Command::Publish { count: 2, .. }]), "{cmds:?}");
        // The mode switch waits until the two tasks settle.
        assert!(p.tick(&mut a, t0 + Duration::from_secs(5), false).is_empty());
        assert!(p.waiting());
        for id in 1..=2 {
            a.update(Msg::Event(Event::Published { id, batch: Some(1) }), t0);
            a.update(
                Msg::Event(Event::Delivered { consumer: 0, id, manual_ack: false, redelivered: false }),
                t0,
            );
            a.update(Msg::Event(Event::Started { consumer: 0, id, work: Duration::ZERO }), t0);
            a.update(Msg::Event(Event::Processed { consumer: 0, id, acked: false }), t0);
        }
        let cmds = p.tick(&mut a, t0 + Duration::from_secs(6), false);
        assert!(matches!(cmds[..], [Command::SetDispatch(Dispatch { mode: Mode::Fair, .. })]), "{cmds:?}");
        // 5s were spent waiting: the clock resumed at 1s of scenario time.
        assert_eq!(p.elapsed(t0 + Duration::from_secs(6)), Duration::from_secs(1));
        let cmds = p.tick(&mut a, t0 + Duration::from_secs(7), false);
        assert_eq!(cmds, [Command::Pause(true)], "the pause step freezes the whole demo");
        assert!(p.paused() && a.paused(), "the pause step stops the clock");
        assert_eq!(p.caption.as_deref(), Some("look"));
        assert!(p.tick(&mut a, t0 + Duration::from_secs(30), false).is_empty(), "still paused");
        let resume = a.update(Msg::Action(Key::PlayPause), t0 + Duration::from_secs(30));
        assert_eq!(resume, Some(Command::Pause(false)));
        // As the event loop does right after the key.
        p.set_paused(a.paused(), t0 + Duration::from_secs(30));
        let cmds = p.tick(&mut a, t0 + Duration::from_secs(31), false);
        assert_eq!(cmds, [Command::KillConsumer { consumer: 1 }]);
        assert!(p.finished());
        let did: Vec<&str> = p.log.iter().map(|l| l.did.as_str()).collect();
        assert_eq!(
            did,
            ["caption", "publish 2 tasks", "switch to fair dispatch", "pause for the presenter", "kill C2"]
        );
    }

    #[test]
    fn a_pause_during_a_wait_is_not_counted_twice() {
        let t0 = Instant::now();
        let s = parse(LESSON).unwrap();
        let mut a = app(t0);
        let mut p = Player::new(&s, t0);
        p.tick(&mut a, t0 + Duration::from_secs(1), true); // caption + publish 2
        p.tick(&mut a, t0 + Duration::from_secs(1), true); // the mode step waits
        assert!(p.waiting());
        p.set_paused(true, t0 + Duration::from_secs(3));
        p.set_paused(false, t0 + Duration::from_secs(11));
        assert_eq!(p.elapsed(t0 + Duration::from_secs(20)), Duration::from_secs(1), "still waiting: frozen");
        p.step_ahead(t0 + Duration::from_secs(20));
        assert!(!p.waiting());
        // The presenter overrode the wait: the mode step runs although nothing settled.
        let cmds = p.tick(&mut a, t0 + Duration::from_secs(20), true);
        assert!(matches!(cmds[..], [Command::SetDispatch(_)]), "{cmds:?}");
        assert_eq!(p.elapsed(t0 + Duration::from_secs(21)), Duration::from_secs(2));
    }

    #[test]
    fn n_while_paused_runs_exactly_one_step_and_stays_paused() {
        let t0 = Instant::now();
        let s = parse(LESSON).unwrap();
        let mut a = app(t0);
        let mut p = Player::new(&s, t0);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        p.tick(&mut a, t0, false); // the caption
        assert_eq!(a.update(Msg::Action(Key::PlayPause), at(500)), Some(Command::Pause(true)));
        p.set_paused(a.paused(), at(500));
        assert!(p.tick(&mut a, at(9_000), false).is_empty(), "paused: the 1s step waits");
        p.step_ahead(at(10_000));
        let cmds = p.tick(&mut a, at(10_000), false);
        assert!(matches!(cmds[..], [Command::Publish { count: 2, .. }]), "{cmds:?}");
        assert!(p.paused() && a.paused(), "still paused after the step");
        assert_eq!(p.elapsed(at(20_000)), Duration::from_secs(1), "the clock stands at that step");
        assert!(p.tick(&mut a, at(20_000), false).is_empty(), "nothing more runs while paused");
        // The next step waits for the queue to settle; `n` overrides that too, one step only.
        p.step_ahead(at(21_000));
        let cmds = p.tick(&mut a, at(21_000), false);
        assert!(matches!(cmds[..], [Command::SetDispatch(_)]), "{cmds:?}");
        assert!(p.paused());
        assert_eq!(p.progress(), (3, 5));
        // Resume: the clock goes on from 1s; the pause step (at 2s) comes a second later.
        assert_eq!(a.update(Msg::Action(Key::PlayPause), at(30_000)), Some(Command::Pause(false)));
        p.set_paused(a.paused(), at(30_000));
        assert!(p.tick(&mut a, at(30_500), false).is_empty());
        assert!(!p.paused());
        assert_eq!(p.elapsed(at(30_500)), Duration::from_millis(1_500));
        assert_eq!(p.tick(&mut a, at(31_000), false), [Command::Pause(true)]);
    }

    #[test]
    fn stepping_ahead_runs_the_next_step_now_and_headless_skips_pauses() {
        let t0 = Instant::now();
        let s = parse(LESSON).unwrap();
        let mut a = app(t0);
        let mut p = Player::new(&s, t0);
        p.tick(&mut a, t0, true);
        p.step_ahead(t0);
        let cmds = p.tick(&mut a, t0, true);
        assert!(matches!(cmds[..], [Command::Publish { .. }]));
        assert_eq!(p.elapsed(t0), Duration::from_secs(1));
    }
}
