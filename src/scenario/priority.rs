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

#[cfg(test)]
mod tests {
    use super::super::{Action, parse};

    const BASE: &str = "title = \"t\"\nconsumers = [\"1s\", \"2s\"]\n";

    #[test]
    fn priorities_and_single_active_are_read_and_checked_with_their_line() {
        let s = parse(&format!("{BASE}priorities = [10]\nsingle_active = true\n")).unwrap();
        assert_eq!((s.priorities, s.single_active), (vec![10, 0], true));
        let s = parse(BASE).unwrap();
        assert_eq!((s.priorities, s.single_active), (vec![0, 0], false));
        assert_eq!(
            parse(&format!("{BASE}priorities = [1, 2, 3]\n")).unwrap_err(),
            (
                Some(3),
                "priorities lists 3 values but there are only 2 consumers: give at most one per consumer"
                    .into()
            )
        );
        assert_eq!(
            parse(&format!("{BASE}priorities = [5000]\n")).unwrap_err(),
            (Some(3), "priority 5000 is out of range: give -1000 to 1000".into())
        );
    }

    #[test]
    fn an_added_consumer_may_have_a_priority_and_nothing_else_may() {
        let s = parse(&format!("{BASE}\n[[step]]\nadd = \"1s\"\npriority = 7\n")).unwrap();
        assert_eq!(s.steps[0].action, Some(Action::Add(std::time::Duration::from_secs(1), 7)));
        assert_eq!(
            parse(&format!("{BASE}\n[[step]]\ncaption = \"x\"\npriority = 7\n")).unwrap_err(),
            (Some(4), "step 1: priority without add (it is the added consumer's x-priority)".into())
        );
    }
}
