//! What a presenter needs beyond the keys' plain effects: freezing the whole demo, restarting
//! or dropping crashed consumers, and a one-line notice that says why a key did not apply
//! (a key that silently does nothing looks broken in front of an audience).
//!
//! While paused every key still acts; only what takes time waits for the resume: the task in
//! hand keeps its remaining time, the stream publishes nothing, a lesson's clock stands still.
//! A publish (a key, or a lesson step run with `n`) still goes to the broker, so the audience
//! can see where the tasks land before anyone works on them.

use std::time::{Duration, Instant};

use super::{Action, App, Banner, Command, ConsumerId, ConsumerStatus, Mode};

/// How long a notice stays up.
pub(super) const NOTICE_FOR: Duration = Duration::from_secs(5);

impl App {
    pub fn paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// The instant the demo's clock stands at: `now`, or the moment it was paused.
    pub fn clock(&self, now: Instant) -> Instant {
        self.paused_since.unwrap_or(now)
    }

    /// A switch of dispatch settings was sent and the workload has not yet reported it applied.
    pub fn switching(&self) -> bool {
        self.switches_in_flight > 0
    }

    /// Freeze or unfreeze the demo; the command tells the workload (None if nothing changes).
    pub fn set_paused(&mut self, paused: bool, now: Instant) -> Option<Command> {
        if paused == self.paused() {
            return None;
        }
        if let (false, Some(since)) = (paused, self.paused_since) {
            // A running batch's makespan is work time: the pause does not count (the theory
            // beside it predicts no pauses). A batch published while paused started at resume.
            for b in self.batches.iter_mut().filter(|b| b.finished.is_none()) {
                b.started += now.saturating_duration_since(b.started.max(since));
            }
        }
        for w in self.consumers.iter_mut().filter_map(|c| c.working.as_mut()) {
            if paused {
                w.frozen = Some(now);
            } else if let Some(at) = w.frozen.take() {
                // The task goes on with the time it had left, as the consumer's sleep does.
                w.since += now.saturating_duration_since(at);
            }
        }
        self.paused_since = paused.then_some(now);
        Some(Command::Pause(paused))
    }

    /// Start a crashed consumer again: same id, name and delay, a fresh connection. Its
    /// counts stay, since the totals on screen add up over every consumer's life. Only once
    /// its end was reported: after that no report of its previous life can arrive.
    pub fn restart_consumer(&mut self, consumer: ConsumerId) -> Option<Command> {
        let c = self.consumers.get_mut(consumer).filter(|c| c.crashed())?;
        c.status = ConsumerStatus::Starting;
        c.status_note = None;
        c.ended = false;
        let delay = c.delay;
        self.selected = consumer;
        self.unmodelled(format!("C{} restarted", consumer + 1));
        Some(Command::RestartConsumer { consumer, delay })
    }

    /// An informative line (not an error): shown for a few seconds where the banner goes.
    pub fn note(&mut self, text: impl Into<String>, now: Instant) {
        self.notice = Some(Banner { text: text.into(), since: now });
    }

    /// Why `action` cannot apply now, if it cannot.
    pub(super) fn refusal(&self, action: Action) -> Option<String> {
        use Action::*;
        let no_lesson = "no lesson is playing (warren play FILE)";
        match action {
            PlayStep if self.lesson.is_none() => Some(format!("n runs a lesson's next step; {no_lesson}")),
            PlayRestart if self.lesson.is_none() => Some(format!("R starts a lesson over; {no_lesson}")),
            DelayUp | DelayDown | RemoveConsumer | KillConsumer | RestartConsumer => {
                let Some(c) = self.selected_consumer() else {
                    return Some("no consumer is selected: a adds one".into());
                };
                let n = c.name();
                let what = match action {
                    DelayUp | DelayDown => "its delay cannot change",
                    KillConsumer => "it cannot be killed",
                    _ => "it cannot be removed",
                };
                match (action, c.status) {
                    (RestartConsumer, ConsumerStatus::Crashed) if !c.restartable() => {
                        Some(format!("{n} is still crashing (its tasks are being accounted for): try again"))
                    }
                    (RestartConsumer, ConsumerStatus::Crashed) => None,
                    (RestartConsumer, _) => {
                        Some(format!("{n} has not crashed: s restarts a crashed consumer (k crashes one)"))
                    }
                    // x on a crashed consumer removes its pane.
                    (RemoveConsumer, ConsumerStatus::Crashed) => None,
                    (_, ConsumerStatus::Crashed) => {
                        Some(format!("{n} crashed, so {what}: s restarts it, x removes its pane"))
                    }
                    (RemoveConsumer, ConsumerStatus::Leaving) => {
                        Some(format!("{n} is already leaving: it finishes what it holds, then goes"))
                    }
                    (_, ConsumerStatus::Leaving) => {
                        Some(format!("{n} is leaving (it finishes what it holds), so {what}"))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Keys that did apply but whose effect is not what the screen shows at once.
    pub(super) fn explain(&mut self, action: Action, now: Instant) {
        use Action::*;
        let text = match action {
            PrefetchUp | PrefetchDown if self.dispatch.mode == Mode::RoundRobin => {
                let p = self.dispatch.prefetch;
                let p = if p == 0 { "unlimited".to_string() } else { p.to_string() };
                format!("prefetch {p} noted; it applies in fair mode, m switches")
            }
            ToggleStream if self.producer.streaming && self.paused() => {
                format!("stream on at {}/s: it starts when you resume (Enter)", self.producer.rate)
            }
            RemoveConsumer | KillConsumer if !self.consumers.iter().any(|c| c.alive()) => {
                "no consumer is left: new tasks wait in the queue (a adds one)".into()
            }
            ToggleMode => match self.single_active_after_switch() {
                Some(active) => format!(
                    "each consumer re-subscribes in turn: activity passes down the line, back to C{}",
                    active + 1
                ),
                None => return,
            },
            _ => return,
        };
        self.note(text, now);
    }
}

#[cfg(test)]
#[path = "presenter_tests.rs"]
mod tests;
