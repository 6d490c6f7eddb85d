//! Exchanges and how they route a routing key to queues.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use amq_protocol::types::FieldTable;
use amq_protocol::types::generation::gen_field_table;

use super::AmqpError;
use super::headers::HeadersMatch;
use super::memory::table_heap;

/// The exchange types the embedded broker routes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "direct" => Some(Kind::Direct),
            "fanout" => Some(Kind::Fanout),
            "topic" => Some(Kind::Topic),
            "headers" => Some(Kind::Headers),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Fanout => "fanout",
            Kind::Topic => "topic",
            Kind::Headers => "headers",
        }
    }
}

/// A binding is known by its queue, its key and its arguments, as in RabbitMQ: the same queue
/// and key with other arguments is another binding (and unbind must name the arguments).
#[derive(Debug, Clone)]
pub struct Binding {
    pub queue: String,
    pub key: String,
    /// The arguments as the wire encodes them (empty for none): what tells bindings apart.
    args: Box<[u8]>,
    /// A headers exchange's pattern, parsed once at bind time rather than per message.
    headers: Option<Box<HeadersMatch>>,
    /// What the arguments hold in memory (charged to the held-bytes limit while bound).
    held: usize,
}

impl Binding {
    /// A binding without arguments.
    pub fn new(queue: &str, key: &str) -> Self {
        Self { queue: queue.to_string(), key: key.to_string(), args: Box::default(), headers: None, held: 0 }
    }

    /// Its arguments as the wire encodes them (empty for none).
    pub fn args(&self) -> &[u8] {
        &self.args
    }

    /// A binding to an exchange of `kind` with these arguments; a headers exchange checks
    /// `x-match` as RabbitMQ does.
    pub fn with_args(queue: &str, key: &str, kind: Kind, args: &FieldTable) -> Result<Self, AmqpError> {
        let mut b = Self::new(queue, key);
        if kind == Kind::Headers {
            b.headers = Some(Box::new(HeadersMatch::parse(args)?));
            b.held = table_heap(args);
        }
        if !args.inner().is_empty() {
            let (encoded, _) = gen_field_table(args)(Vec::new().into())
                .map_err(|_| {
                    AmqpError::channel(406, "PRECONDITION_FAILED - binding arguments do not encode")
                })?
                .into_inner();
            b.held += encoded.len();
            b.args = encoded.into_boxed_slice();
        }
        Ok(b)
    }

    /// Memory its arguments hold, charged while it is bound.
    pub fn held(&self) -> usize {
        self.held
    }
}

impl PartialEq for Binding {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Binding {}

impl PartialOrd for Binding {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Binding {
    /// The parsed pattern follows from the encoded arguments: they alone are compared.
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.queue, &self.key, &self.args).cmp(&(&other.queue, &other.key, &other.args))
    }
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

    /// Remove the bindings `drop` picks. Returns whether the exchange must go now (an
    /// auto-delete exchange goes with its last binding, as in RabbitMQ, not before its first)
    /// and the memory the removed bindings' arguments held.
    pub fn unbind(&mut self, mut drop: impl FnMut(&Binding) -> bool) -> (bool, usize) {
        let before = self.bindings.len();
        let mut freed = 0;
        self.bindings.retain(|b| {
            let gone = drop(b);
            if gone {
                freed += b.held;
            }
            !gone
        });
        (self.auto_delete && before > 0 && self.bindings.is_empty(), freed)
    }

    /// Memory all its bindings' arguments hold.
    pub fn held(&self) -> usize {
        self.bindings.iter().map(Binding::held).sum()
    }

    /// The queues a message with `key` (and, for a headers exchange, `headers`) goes to, each
    /// once, in binding order.
    pub fn route(&self, key: &str, headers: Option<&FieldTable>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for b in &self.bindings {
            let hit = match self.kind {
                Kind::Direct => b.key == key,
                Kind::Fanout => true,
                Kind::Topic => topic_matches(&b.key, key),
                Kind::Headers => b.headers.as_ref().is_some_and(|h| h.matches(headers)),
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
        x.bindings.insert(Binding::new("q", "a.*"));
        x.bindings.insert(Binding::new("q", "#"));
        x.bindings.insert(Binding::new("r", "b"));
        assert_eq!(x.route("a.b", None), vec!["q".to_string()]);
        let mut f = Exchange::new(Kind::Fanout, false, false, false);
        f.bindings.insert(Binding::new("q", ""));
        f.bindings.insert(Binding::new("r", "x"));
        assert_eq!(f.route("anything", None), vec!["q".to_string(), "r".to_string()]);
    }

    #[test]
    fn a_binding_is_known_by_its_arguments_too() {
        let args = |n: i32| {
            let mut t = FieldTable::default();
            t.insert("p".into(), amq_protocol::types::AMQPValue::LongInt(n));
            t
        };
        let mut x = Exchange::new(Kind::Direct, false, false, false);
        for b in [Binding::new("q", "k"), Binding::with_args("q", "k", Kind::Direct, &args(1)).unwrap()] {
            x.bindings.insert(b);
        }
        x.bindings.insert(Binding::with_args("q", "k", Kind::Direct, &args(1)).unwrap());
        assert_eq!(x.bindings.len(), 2, "same arguments: the same binding");
        assert_eq!(x.route("k", None), vec!["q".to_string()], "still delivered once");
        let unbind = Binding::with_args("q", "k", Kind::Direct, &args(2)).unwrap();
        x.unbind(|b| *b == unbind);
        assert_eq!(x.bindings.len(), 2, "other arguments: nothing unbound");
    }
}
