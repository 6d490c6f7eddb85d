//! A lesson's consumer priorities, checked like `--priority`.

use crate::cli::priorities::MAX_PRIORITY;

/// `priorities = [10, 0, 0]`: at most one per consumer; consumers not listed get 0.
pub fn per_consumer(given: &[i32], consumers: usize) -> Result<Vec<i32>, String> {
    if given.len() > consumers {
        return Err(format!(
            "priorities lists {} values but there are only {consumers} consumers: give at most one per consumer",
            given.len()
        ));
    }
    let mut all = given.to_vec();
    for &p in &all {
        in_range(p)?;
    }
    all.resize(consumers, 0);
    Ok(all)
}

/// The `priority` of a consumer a step adds (0 if none is given).
pub fn of_added(priority: Option<i32>) -> Result<i32, String> {
    let p = priority.unwrap_or(0);
    in_range(p)?;
    Ok(p)
}

fn in_range(p: i32) -> Result<(), String> {
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&p) {
        return Err(format!("priority {p} is out of range: give -{MAX_PRIORITY} to {MAX_PRIORITY}"));
    }
    Ok(())
}
