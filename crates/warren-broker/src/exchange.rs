//! Exchanges and how they route a routing key to queues.

use std::collections::BTreeSet;

/// The exchange types the embedded broker routes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Direct,
    Fanout,
    Topic,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "direct" => Some(Kind::Direct),
            "fanout" => Some(Kind::Fanout),
            "topic" => Some(Kind::Topic),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Fanout => "fanout",
            Kind::Topic => "topic",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Binding {
    pub queue: String,
    pub key: String,
}

#[derive(Debug, Clone)]
pub struct Exchange {
    pub kind: Kind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub bindings: BTreeSet<Binding>,
}

impl Exchange {
    pub fn new(kind: Kind, durable: bool, auto_delete: bool, internal: bool) -> Self {
        Self { kind, durable, auto_delete, internal, bindings: BTreeSet::new() }
    }

    /// Remove the bindings `drop` picks. Returns whether the exchange must go now: an
    /// auto-delete exchange goes with its last binding, as in RabbitMQ (not before its first).
    pub fn unbind(&mut self, mut drop: impl FnMut(&Binding) -> bool) -> bool {
        let before = self.bindings.len();
        self.bindings.retain(|b| !drop(b));
        self.auto_delete && before > 0 && self.bindings.is_empty()
    }

    /// The queues a message with `key` goes to, each once, in binding order.
    pub fn route(&self, key: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for b in &self.bindings {
            let hit = match self.kind {
                Kind::Direct => b.key == key,
                Kind::Fanout => true,
                Kind::Topic => topic_matches(&b.key, key),
            };
            if hit && out.last() != Some(&b.queue) && !out.contains(&b.queue) {
                out.push(b.queue.clone());
            }
        }
        out
    }
}

/// AMQP topic matching: words split by '.', `*` is exactly one word, `#` is zero or more.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = if key.is_empty() { Vec::new() } else { key.split('.').collect() };
    matches(&p, &k)
}

fn matches(p: &[&str], k: &[&str]) -> bool {
    match p.split_first() {
        None => k.is_empty(),
        Some((&"#", rest)) => (0..=k.len()).any(|skip| matches(rest, &k[skip..])),
        Some((&"*", rest)) => !k.is_empty() && matches(rest, &k[1..]),
        Some((word, rest)) => k.first() == Some(word) && matches(rest, &k[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_follow_the_amqp_rules() {
        let cases = [
            ("a.b.c", "a.b.c", true),
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a.c", false),
            ("a.#", "a", true),
            ("a.#", "a.b.c", true),
            ("#", "", true),
            ("#.c", "a.b.c", true),
            ("*", "a.b", false),
            ("a.#.c", "a.c", true),
            ("a.#.c", "a.x.y.c", true),
            ("a.#.c", "a.x.y.d", false),
        ];
        for (pattern, key, want) in cases {
            assert_eq!(topic_matches(pattern, key), want, "{pattern} ~ {key}");
        }
    }

    #[test]
    fn each_queue_gets_a_message_once() {
        let mut x = Exchange::new(Kind::Topic, false, false, false);
        x.bindings.insert(Binding { queue: "q".into(), key: "a.*".into() });
        x.bindings.insert(Binding { queue: "q".into(), key: "#".into() });
        x.bindings.insert(Binding { queue: "r".into(), key: "b".into() });
        assert_eq!(x.route("a.b"), vec!["q".to_string()]);
        let mut f = Exchange::new(Kind::Fanout, false, false, false);
        f.bindings.insert(Binding { queue: "q".into(), key: "".into() });
        f.bindings.insert(Binding { queue: "r".into(), key: "x".into() });
        assert_eq!(f.route("anything"), vec!["q".to_string(), "r".to_string()]);
    }
}
