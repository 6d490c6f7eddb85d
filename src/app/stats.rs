//! Per-second rates and short histories, sampled on the app's clock (not the wall clock of the
//! events), so that a burst of events arriving in one frame still shows as one second's work.

use std::collections::VecDeque;

/// How many one-second samples a sparkline keeps.
pub const HISTORY: usize = 60;

/// A monotonically growing count with its last per-second rate and a short history of rates.
#[derive(Debug, Default, Clone)]
pub struct Meter {
    total: u64,
    at_last_sample: u64,
    rate: u64,
    history: VecDeque<u64>,
}

impl Meter {
    pub fn add(&mut self, n: u64) {
        self.total += n;
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Events in the last whole second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Oldest first, at most [`HISTORY`] samples.
    pub fn history(&self) -> &VecDeque<u64> {
        &self.history
    }

    /// [`Meter::sample`], and whether what a screen shows of it (the rate, the sparkline of the
    /// last [`HISTORY`] seconds) changed: it does not once a minute has passed without events.
    pub fn sample_changes_view(&mut self) -> bool {
        let before = self.rate != 0 || self.history.iter().any(|&r| r != 0);
        self.sample();
        before || self.rate != 0
    }

    /// Close one second: the count since the previous sample becomes the rate.
    pub fn sample(&mut self) {
        self.rate = self.total - self.at_last_sample;
        self.at_last_sample = self.total;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(self.rate);
    }
}

/// A ring of the most recent items (task ids), newest last.
#[derive(Debug, Clone)]
pub struct Trail<T> {
    items: VecDeque<T>,
    cap: usize,
}

impl<T: Copy> Trail<T> {
    pub fn new(cap: usize) -> Self {
        Self { items: VecDeque::with_capacity(cap), cap }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_rate_is_the_count_since_the_previous_sample() {
        let mut m = Meter::default();
        m.add(5);
        m.sample();
        assert_eq!(m.rate(), 5);
        m.add(2);
        m.add(1);
        m.sample();
        assert_eq!((m.rate(), m.total()), (3, 8));
        m.sample();
        assert_eq!(m.rate(), 0);
        assert_eq!(m.history().iter().copied().collect::<Vec<_>>(), vec![5, 3, 0]);
    }

    #[test]
    fn an_idle_meter_stops_changing_the_view_after_its_history_runs_out() {
        let mut m = Meter::default();
        assert!(!m.sample_changes_view(), "never busy: nothing to redraw");
        m.add(1);
        assert!(m.sample_changes_view());
        // The busy second scrolls through the sparkline for a minute, then nothing moves.
        let changes = (0..2 * HISTORY).filter(|_| m.sample_changes_view()).count();
        assert_eq!(changes, HISTORY);
    }

    #[test]
    fn meter_history_is_bounded() {
        let mut m = Meter::default();
        for _ in 0..HISTORY + 10 {
            m.add(1);
            m.sample();
        }
        assert_eq!(m.history().len(), HISTORY);
    }

    #[test]
    fn trail_keeps_the_newest() {
        let mut t = Trail::new(3);
        for i in 1..=5 {
            t.push(i);
        }
        assert_eq!(t.iter().copied().collect::<Vec<_>>(), vec![3, 4, 5]);
    }
}
