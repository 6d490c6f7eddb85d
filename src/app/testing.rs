//! Apps for the unit tests, built one way whichever module tests them: consumers taking the given
//! milliseconds per task, prefetch 1, queue `q`, bursts of 10 and a stream of 5 a second, every
//! processing order kept. A test that needs other values changes the fields it names.

use std::time::{Duration, Instant};

use super::{App, AppOptions, Dispatch, Event, Mode, Msg};

pub(crate) fn options(delays_ms: &[u64], mode: Mode) -> AppOptions {
    AppOptions {
        queue: "q".into(),
        delays: delays_ms.iter().map(|&d| Duration::from_millis(d)).collect(),
        dispatch: Dispatch { mode, prefetch: 1 },
        burst: 10,
        rate: 5,
        keep_history: true,
        policy: crate::policy::Policy::default(),
        priorities: Vec::new(),
        single_active: false,
    }
}

/// A new app, its consumers still starting.
pub(crate) fn app(delays_ms: &[u64], mode: Mode) -> (App, Instant) {
    let now = Instant::now();
    (App::new(options(delays_ms, mode), now), now)
}

/// A new app whose consumers have all registered at the broker, in order.
pub(crate) fn registered(delays_ms: &[u64], mode: Mode) -> (App, Instant) {
    let (mut a, now) = app(delays_ms, mode);
    for consumer in 0..delays_ms.len() {
        a.update(Msg::Event(Event::ConsumerReady { consumer }), now);
    }
    (a, now)
}
