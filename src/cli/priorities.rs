//! `--priority 10,0,0`: each consumer's `x-priority`, checked.

/// The widest priority accepted: RabbitMQ takes any integer, but a lane has to show it, and a
/// lesson needs no more than a few levels.
pub const MAX_PRIORITY: i32 = 1000;

/// `10,0,0` for 5 consumers gives 10,0,0,0,0: consumers not listed get RabbitMQ's default, 0
/// (unlike `--delay`, the last one does not repeat: `--priority 10` raises C1 alone).
pub fn parse_priorities(list: Option<&str>, consumers: usize) -> Result<Vec<i32>, String> {
    let mut given = Vec::new();
    for part in list.into_iter().flat_map(|l| l.split(',')).map(str::trim) {
        let p: i32 = part.parse().map_err(|_| {
            format!("--priority '{part}' is not a whole number: give one per consumer, like 10,0,0")
        })?;
        if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&p) {
            return Err(format!(
                "--priority '{part}' is out of range: give -{MAX_PRIORITY} to {MAX_PRIORITY}"
            ));
        }
        given.push(p);
    }
    if given.len() > consumers {
        return Err(format!(
            "--priority lists {} values but there are only {consumers} consumers: \
             give at most one per consumer, or raise --consumers",
            given.len()
        ));
    }
    given.resize(consumers, 0);
    Ok(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_priorities_are_zero_and_bad_ones_say_what_to_give() {
        assert_eq!(parse_priorities(None, 3), Ok(vec![0, 0, 0]));
        assert_eq!(parse_priorities(Some("10"), 3), Ok(vec![10, 0, 0]));
        assert_eq!(parse_priorities(Some("0, -5 ,3"), 3), Ok(vec![0, -5, 3]));
        assert_eq!(
            parse_priorities(Some("high"), 3).unwrap_err(),
            "--priority 'high' is not a whole number: give one per consumer, like 10,0,0"
        );
        assert_eq!(
            parse_priorities(Some("1,2,3,4"), 3).unwrap_err(),
            "--priority lists 4 values but there are only 3 consumers: give at most one per consumer, \
             or raise --consumers"
        );
        assert!(parse_priorities(Some("5000"), 3).unwrap_err().contains("out of range"));
        assert!(parse_priorities(Some(""), 3).unwrap_err().contains("'' is not a whole number"));
    }
}
