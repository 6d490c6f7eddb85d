//! The open tasks by id, without hashing.

use super::{Place, TaskId};

/// The tasks not yet done or lost, by id. Ids are handed out in order and mostly finish in
/// order, so a window of slots starting at the oldest open id does without hashing: this is
/// on the path of every event at broker speed.
#[derive(Debug, Default)]
pub(super) struct OpenTasks {
    base: TaskId,
    slots: std::collections::VecDeque<Option<Place>>,
    /// Open tasks in the window (the window also holds gaps).
    len: usize,
}

impl OpenTasks {
    pub(super) fn get(&self, id: &TaskId) -> Option<&Place> {
        let i = id.checked_sub(self.base)?;
        self.slots.get(usize::try_from(i).ok()?)?.as_ref()
    }

    pub(super) fn insert(&mut self, id: TaskId, place: Place) {
        if self.slots.is_empty() {
            self.base = id;
        }
        if id < self.base {
            // An id older than the window (not seen in practice): grow the window downwards.
            for _ in id..self.base {
                self.slots.push_front(None);
            }
            self.base = id;
        }
        let i = (id - self.base) as usize;
        if self.slots.len() <= i {
            self.slots.resize(i + 1, None);
        }
        if self.slots[i].replace(place).is_none() {
            self.len += 1;
        }
    }

    pub(super) fn remove(&mut self, id: &TaskId) -> Option<Place> {
        let i = usize::try_from(id.checked_sub(self.base)?).ok()?;
        let place = self.slots.get_mut(i)?.take()?;
        self.len -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(place)
    }

    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (TaskId, Place)> + '_ {
        let base = self.base;
        self.slots.iter().enumerate().filter_map(move |(i, p)| p.map(|p| (base + i as TaskId, p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_window_follows_out_of_order_completion() {
        let mut o = OpenTasks::default();
        for id in 5..=9 {
            o.insert(id, Place::AtBroker);
        }
        assert_eq!(o.remove(&7), Some(Place::AtBroker));
        assert_eq!(o.remove(&5), Some(Place::AtBroker));
        assert_eq!((o.base, o.len), (6, 3));
        assert_eq!(o.remove(&5), None, "already gone");
        o.insert(3, Place::Backlog(1));
        assert_eq!(o.get(&3), Some(&Place::Backlog(1)));
        assert_eq!(o.iter().map(|(id, _)| id).collect::<Vec<_>>(), [3, 6, 8, 9]);
        for id in [3, 6, 8, 9] {
            o.remove(&id);
        }
        assert!(o.slots.is_empty());
    }
}
