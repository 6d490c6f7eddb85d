//! The reports' account of tasks that left otherwise than by being done: dead-lettered (with
//! the `x-death` reason) and refused at publish.

use std::fmt::Write;

use serde::Serialize;

use super::{BatchSummary, Summary};
use crate::app::{App, Batch};

/// `{"id":3,"reason":"delivery_limit"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub id: u64,
    pub reason: &'static str,
}

/// The dead letters the app recorded whose id passes `keep`, in the order seen.
pub(super) fn dead_letters(app: &App, keep: impl Fn(u64) -> bool) -> Vec<DeadLetter> {
    app.dead_letters
        .iter()
        .filter(|(id, _)| keep(*id))
        .map(|&(id, reason)| DeadLetter { id, reason: reason.as_str() })
        .collect()
}

/// Refused ids passing `keep`, in id order: publisher confirms may come back in any order.
pub(super) fn refused_ids(app: &App, keep: impl Fn(u64) -> bool) -> Vec<u64> {
    let mut v: Vec<u64> = app.refused.iter().copied().filter(|id| keep(*id)).collect();
    v.sort_unstable();
    v
}

impl BatchSummary {
    /// The batch's dead-lettered and refused ids, from the app's record of them.
    pub(super) fn with_exits(mut self, b: &Batch, app: &App) -> Self {
        let Some((first, last)) = b.ids else { return self };
        let ours = |id: u64| (first..=last).contains(&id);
        self.dead_letters = dead_letters(app, ours);
        self.refused_ids = refused_ids(app, ours);
        self
    }
}

impl Summary {
    /// `dead-lettered 2: #3 (delivery_limit) #9 (expired)` and `refused at publish 5: #6 …`,
    /// each only when there are some.
    pub(super) fn exits_lines(&self) -> String {
        let mut out = String::new();
        if self.dead > 0 {
            let ids: Vec<String> =
                self.dead_letters.iter().map(|d| format!("#{} ({})", d.id, d.reason)).collect();
            let _ = writeln!(out, "dead-lettered {}: {}", self.dead, ids.join(" "));
        }
        if self.refused > 0 {
            let ids: Vec<String> = self.refused_ids.iter().map(|id| format!("#{id}")).collect();
            let _ = writeln!(out, "refused at publish {}: {}", self.refused, ids.join(" "));
        }
        out
    }
}
