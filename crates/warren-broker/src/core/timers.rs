//! What happens at a time rather than on a client's command (message TTL, queue expiry,
//! consumer timeouts). Features put a [`Timer`] on one heap; `run_due` pops what is due and lets
//! each feature decide whether it still applies (a timer is never cancelled, only found stale),
//! so that scheduling stays O(log n) and nothing has to find a timer again to remove it.
//! The broker's timer task (`timer_task` in lib.rs) sleeps until `next_due`, woken early by
//! `schedule` when something sooner is added.

use std::cmp::Reverse;

use tokio::time::Instant;

use super::*;

/// Something due at a time. Each variant is checked against the state when it fires.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// The head of this queue may expire now (expiry.rs).
    HeadExpiry(String),
    /// This queue goes if unused since its use number .1 (x-expires; expiry.rs).
    Unused(String, u64),
    /// For the timer task's own tests: fires and does nothing.
    #[cfg(test)]
    Nothing,
    /// A channel's earliest unacked delivery may have outlived its consumer timeout
    /// (consumer_timeout.rs); `at` is when it was scheduled for, to tell a superseded one.
    ConsumerTimeout { conn: ConnId, ch: u16, at: Instant },
}

/// The core's timer heap, soonest first.
pub(super) type Heap = std::collections::BinaryHeap<Reverse<(Instant, Timer)>>;

/// `Core::schedule` for code that holds the heap and the wake-up apart from the core (dispatch
/// borrows the core's fields one by one).
pub(super) fn schedule_on(timers: &mut Heap, wake: &tokio::sync::Notify, at: Instant, timer: Timer) {
    let sooner = timers.peek().is_none_or(|Reverse((first, _))| at < *first);
    timers.push(Reverse((at, timer)));
    if sooner {
        // notify_one keeps a permit when nobody waits, so a wake-up is never lost.
        wake.notify_one();
    }
}

/// Past this many timers (or twice as many as the last sweep left), stale ones are swept out:
/// timers are never cancelled, and a client could otherwise pile them up (a get or declare
/// each). Doubling keeps the sweeps' cost proportional to the timers scheduled.
pub(super) const SWEEP_LIMIT: usize = 4096;

impl Core {
    // Dispatch arms consumer timeouts through `schedule_on`; TTL and expiry use this.
    /// Arrange for `timer` to run at `at`, waking the timer task if that is sooner than what it
    /// sleeps toward.
    pub(crate) fn schedule(&mut self, at: Instant, timer: Timer) {
        if self.timers.len() >= self.sweep_at.max(SWEEP_LIMIT) {
            let all = std::mem::take(&mut self.timers).into_vec();
            self.timers = all.into_iter().filter(|Reverse((at, t))| self.timer_relevant(*at, t)).collect();
            self.sweep_at = 2 * self.timers.len();
        }
        schedule_on(&mut self.timers, &self.timer_wake, at, timer);
    }

    /// When the next timer is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Run every timer due at `now`.
    pub fn run_due(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Reverse((at, timer)) = self.timers.pop().expect("peeked");
            self.fire(at, timer, now);
        }
    }

    fn fire(&mut self, at: Instant, timer: Timer, now: Instant) {
        match timer {
            Timer::HeadExpiry(queue) => self.head_timer_fired(&queue, at, now),
            Timer::Unused(queue, uses) => self.unused_timer_fired(&queue, uses),
            #[cfg(test)]
            Timer::Nothing => {}
            Timer::ConsumerTimeout { conn, ch, at } => self.consumer_timeout_due(conn, ch, at, now),
        }
    }

    /// Whether a timer can still do something (a stale one would only find nothing to do).
    fn timer_relevant(&self, at: Instant, timer: &Timer) -> bool {
        self.expiry_timer_relevant(at, timer)
    }

    /// What the timer task waits on besides the clock.
    pub fn timer_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        std::sync::Arc::clone(&self.timer_wake)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timers_run_in_time_order_and_only_when_due() {
        let mut core = Core::new(Limits::default());
        let t0 = Instant::now();
        core.schedule(t0 + Duration::from_secs(2), Timer::Nothing);
        core.schedule(t0 + Duration::from_secs(1), Timer::Nothing);
        assert_eq!(core.next_due(), Some(t0 + Duration::from_secs(1)));
        core.run_due(t0 + Duration::from_millis(1500));
        assert_eq!(core.next_due(), Some(t0 + Duration::from_secs(2)));
        core.run_due(t0 + Duration::from_secs(2));
        assert_eq!(core.next_due(), None);
    }
}
