//! Dispatch settings and the value ladders the +/- keys walk along.

use std::fmt;
use std::time::Duration;

/// How consumers take work from the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Mode {
    /// no_ack=true: the broker rotates strictly, whatever each consumer's speed.
    #[serde(rename = "rr")]
    RoundRobin,
    /// Manual ack with basic.qos prefetch: the next task goes to a consumer with a free slot.
    #[serde(rename = "fair")]
    Fair,
}

impl Mode {
    pub fn toggled(self) -> Self {
        match self {
            Mode::RoundRobin => Mode::Fair,
            Mode::Fair => Mode::RoundRobin,
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Mode::RoundRobin => "rr",
            Mode::Fair => "fair",
        }
    }
}

/// Mode plus prefetch; prefetch only matters in fair mode (0 = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatch {
    pub mode: Mode,
    pub prefetch: u16,
}

impl Dispatch {
    pub fn manual_ack(self) -> bool {
        self.mode == Mode::Fair
    }
}

impl Dispatch {
    /// Short form for tables: `rr`, `fair/1`, `fair/∞`.
    pub fn short_label(self) -> String {
        match self.mode {
            Mode::RoundRobin => "rr".to_string(),
            Mode::Fair if self.prefetch == 0 => "fair/∞".to_string(),
            Mode::Fair => format!("fair/{}", self.prefetch),
        }
    }
}

impl fmt::Display for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            Mode::RoundRobin => write!(f, "round-robin (auto-ack)"),
            Mode::Fair if self.prefetch == 0 => write!(f, "fair (manual ack, prefetch unlimited)"),
            Mode::Fair => write!(f, "fair (manual ack, prefetch {})", self.prefetch),
        }
    }
}

pub const BURSTS: &[u32] = &[1, 2, 3, 5, 6, 9, 10, 12, 20, 30, 50, 100, 200, 500, 1000];
pub const RATES: &[u32] = &[1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
const PREFETCHES: &[u16] = &[1, 2, 3, 5, 10, 20, 50, 100, 250, 1000];
const DELAYS_MS: &[u64] = &[
    0, 10, 20, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10_000, 15_000, 20_000,
    30_000, 60_000,
];

/// The next rung above `v` (values between rungs snap to the next one up).
pub fn step_up<T: Copy + Ord>(ladder: &[T], v: T) -> T {
    ladder.iter().copied().find(|&x| x > v).unwrap_or(v.max(*ladder.last().expect("ladder")))
}

/// The next rung below `v`.
pub fn step_down<T: Copy + Ord>(ladder: &[T], v: T) -> T {
    ladder.iter().rev().copied().find(|&x| x < v).unwrap_or(v.min(ladder[0]))
}

/// More prefetch; past the top rung comes 0, which means unlimited, and that is the ceiling.
pub fn prefetch_up(p: u16) -> u16 {
    match p {
        0 => 0,
        p if p >= *PREFETCHES.last().expect("ladder") => 0,
        p => step_up(PREFETCHES, p),
    }
}

pub fn prefetch_down(p: u16) -> u16 {
    match p {
        0 => *PREFETCHES.last().expect("ladder"),
        p => step_down(PREFETCHES, p),
    }
}

pub fn delay_up(d: Duration) -> Duration {
    Duration::from_millis(step_up(DELAYS_MS, d.as_millis() as u64))
}

pub fn delay_down(d: Duration) -> Duration {
    Duration::from_millis(step_down(DELAYS_MS, d.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladders_step_and_saturate() {
        assert_eq!(step_up(BURSTS, 10), 12);
        assert_eq!(step_up(BURSTS, 11), 12, "off-ladder values snap up");
        assert_eq!(step_up(BURSTS, 1000), 1000);
        assert_eq!(step_down(BURSTS, 1), 1);
        assert_eq!(step_down(BURSTS, 11), 10);
    }

    #[test]
    fn prefetch_ends_at_unlimited_and_comes_back() {
        assert_eq!(prefetch_up(1), 2);
        assert_eq!(prefetch_up(1000), 0);
        assert_eq!(prefetch_up(0), 0);
        assert_eq!(prefetch_down(0), 1000);
        assert_eq!(prefetch_down(1), 1);
        assert_eq!(prefetch_up(4000), 0, "a --prefetch above the ladder still steps to unlimited");
    }

    #[test]
    fn delays_walk_the_ladder() {
        assert_eq!(delay_up(Duration::from_secs(1)), Duration::from_millis(1500));
        assert_eq!(delay_down(Duration::from_secs(1)), Duration::from_millis(750));
        assert_eq!(delay_down(Duration::ZERO), Duration::ZERO);
        assert_eq!(delay_up(Duration::from_secs(90)), Duration::from_secs(90));
    }
}
