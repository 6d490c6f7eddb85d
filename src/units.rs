//! How a duration is written for people, the same on every surface: the TUI, the headless
//! table, play's step log and the error lines (JSON carries integer milliseconds instead).
//! It lives below both `ui` and `headless` so that neither has to reach into the other.

use std::time::Duration;

/// `0ms`, `250ms`, `1.0s`, `12.3s`, `1m05s`: milliseconds below a second, then seconds with one
/// decimal, then minutes and seconds. Truncated, never rounded up, so a task that took 59.99 s
/// is never shown as a minute and a value always reads as at most what was measured.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{}.{}s", ms / 1000, ms / 100 % 10),
        _ => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
    }
}

/// [`duration`] of a count of milliseconds (what the JSON and reports keep).
pub fn millis(ms: u64) -> String {
    duration(Duration::from_millis(ms))
}

/// Whole milliseconds, for JSON (saturating: no real run lasts 584 million years).
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_way_of_writing_a_duration() {
        for (ms, want) in [
            (0, "0ms"),
            (4, "4ms"),
            (250, "250ms"),
            (999, "999ms"),
            (1000, "1.0s"),
            (1004, "1.0s"),
            (1500, "1.5s"),
            (3005, "3.0s"),
            (12_345, "12.3s"),
            (59_999, "59.9s"),
            (60_000, "1m00s"),
            (65_000, "1m05s"),
            (90_500, "1m30s"),
            (600_000, "10m00s"),
            (3_600_000, "60m00s"),
        ] {
            assert_eq!(millis(ms), want, "{ms}ms");
        }
        assert_eq!(duration(Duration::from_micros(1500)), "1ms");
        assert_eq!(ms(Duration::from_micros(2999)), 2);
    }
}
