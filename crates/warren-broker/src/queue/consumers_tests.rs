use super::*;

fn key(tag: &str) -> ConsumerKey {
    ConsumerKey { conn: 1, channel: 1, tag: tag.into() }
}

/// Who gets the next `n` messages when everyone can take.
fn rotation(c: &mut Consumers, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let (k, p) = c.pop().expect("someone to offer to");
            let tag = k.tag.to_string();
            c.push_back(k, p);
            tag
        })
        .collect()
}

#[test]
fn the_highest_priority_ring_takes_everything_until_it_is_blocked() {
    let mut c = Consumers::new(false, false);
    c.add(key("low"), 0);
    c.add(key("hi1"), 5);
    c.add(key("hi2"), 5);
    assert_eq!(rotation(&mut c, 4), ["hi1", "hi2", "hi1", "hi2"]);
    let (k, p) = c.pop().unwrap();
    c.block(k, p);
    let (k, p) = c.pop().unwrap();
    c.block(k, p);
    assert_eq!(rotation(&mut c, 2), ["low", "low"]);
    assert!(c.unblock(&key("hi2")));
    assert_eq!(rotation(&mut c, 2), ["hi2", "hi2"]);
    c.remove(&key("hi1"));
    c.remove(&key("hi2"));
    assert_eq!(rotation(&mut c, 1), ["low"]);
    assert_eq!(c.len(), 1);
}

#[test]
fn a_single_active_consumer_hands_over_to_the_highest_priority_standby() {
    let mut c = Consumers::new(true, false);
    c.add(key("a"), 0);
    c.add(key("b"), 0);
    c.add(key("c"), 3);
    c.add(key("d"), 3);
    assert_eq!(rotation(&mut c, 2), ["a", "a"]);
    assert!(c.is_standby(&key("c")));
    c.remove(&key("a"));
    assert_eq!(rotation(&mut c, 1), ["c"]);
    c.remove(&key("c"));
    assert_eq!(rotation(&mut c, 1), ["d"]);
    c.remove(&key("d"));
    assert_eq!(rotation(&mut c, 1), ["b"]);
    assert_eq!(c.len(), 1);
}

#[test]
fn quorum_rules_quiesce_the_active_consumer_for_a_higher_priority_one() {
    let mut c = Consumers::new(true, true);
    c.add(key("a"), 0);
    c.add(key("b"), 1);
    assert_eq!(c.quiescing(), Some(&key("a")));
    assert!(c.pop().is_none());
    c.hand_over();
    assert_eq!(rotation(&mut c, 1), ["b"]);
    assert!(c.is_standby(&key("a")));
    c.add(key("c"), 1);
    assert!(c.quiescing().is_none(), "an equal priority does not take over");
}
