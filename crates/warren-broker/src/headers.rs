//! The headers exchange's matching, as RabbitMQ 3.10's `rabbit_exchange_type_headers` does it:
//! a binding's arguments are the pattern, a message's `headers` property the data.
//!
//! - `x-match` is `all` (the default), `any`, `all-with-x` or `any-with-x`; anything else is
//!   refused at bind time with RabbitMQ's text.
//! - With `all`/`any`, pattern keys starting with `x-` are ignored; with the `-with-x` kinds
//!   they count too (only `x-match` itself is left out).
//! - A pattern key with a void value asks only that the header be present.
//! - Values compare as Erlang's `==` does: an integer equals an integer (or float) of the same
//!   value whatever its AMQP width, so a client's `1` matches whichever integer type another
//!   client's library picked; a string never equals a number, nor `true` a 1.

use amq_protocol::types::{AMQPValue, FieldTable, ShortString};

use super::AmqpError;

/// A headers binding's pattern: the keys that count, each with the value it must have (`None`:
/// only present), in key order.
#[derive(Debug, Clone)]
pub struct HeadersMatch {
    any: bool,
    pattern: Vec<(ShortString, Option<AMQPValue>)>,
}

impl HeadersMatch {
    /// The pattern of a binding with these arguments, or RabbitMQ's 406 for a bad `x-match`.
    pub fn parse(args: &FieldTable) -> Result<Self, AmqpError> {
        let (any, with_x) = match args.inner().get("x-match") {
            None => (false, false),
            Some(AMQPValue::LongString(s)) => match_kind(s.as_bytes())?,
            // amq-protocol sends a ShortString as 's', which RabbitMQ would read as a short
            // integer; taken here as the string it is, for Rust clients' sake.
            Some(AMQPValue::ShortString(s)) => match_kind(s.as_str().as_bytes())?,
            Some(other) => {
                return Err(AmqpError::channel(
                    406,
                    format!(
                        "PRECONDITION_FAILED - Invalid x-match field type {} (value {}); expected longstr",
                        crate::queue::type_name(other),
                        erlang_value(other)
                    ),
                ));
            }
        };
        let pattern = args
            .inner()
            .iter()
            .filter(|(k, _)| {
                let k = k.as_str();
                if with_x { k != "x-match" } else { !k.starts_with("x-") }
            })
            .map(|(k, v)| (k.clone(), (!matches!(v, AMQPValue::Void)).then(|| v.clone())))
            .collect();
        Ok(Self { any, pattern })
    }

    /// Whether a message with these headers matches.
    pub fn matches(&self, headers: Option<&FieldTable>) -> bool {
        let hit = |(k, want): &(ShortString, Option<AMQPValue>)| {
            headers
                .and_then(|h| h.inner().get(k))
                .is_some_and(|have| want.as_ref().is_none_or(|w| same(w, have)))
        };
        if self.any { self.pattern.iter().any(hit) } else { self.pattern.iter().all(hit) }
    }
}

/// (any, with_x) for an `x-match` value.
fn match_kind(value: &[u8]) -> Result<(bool, bool), AmqpError> {
    match value {
        b"all" => Ok((false, false)),
        b"any" => Ok((true, false)),
        b"all-with-x" => Ok((false, true)),
        b"any-with-x" => Ok((true, true)),
        other => Err(AmqpError::channel(
            406,
            format!(
                "PRECONDITION_FAILED - Invalid x-match field value <<\"{}\">>; expected all, any, all-with-x, or any-with-x",
                String::from_utf8_lossy(other)
            ),
        )),
    }
}

/// A number as Erlang holds it: integers exactly, floats as floats.
enum Number {
    Int(i128),
    Float(f64),
}

fn number(v: &AMQPValue) -> Option<Number> {
    Some(match *v {
        AMQPValue::ShortShortInt(n) => Number::Int(n.into()),
        AMQPValue::ShortShortUInt(n) => Number::Int(n.into()),
        AMQPValue::ShortInt(n) => Number::Int(n.into()),
        AMQPValue::ShortUInt(n) => Number::Int(n.into()),
        AMQPValue::LongInt(n) => Number::Int(n.into()),
        AMQPValue::LongUInt(n) => Number::Int(n.into()),
        AMQPValue::LongLongInt(n) => Number::Int(n.into()),
        AMQPValue::Timestamp(n) => Number::Int(n.into()),
        AMQPValue::Float(f) => Number::Float(f.into()),
        AMQPValue::Double(f) => Number::Float(f),
        _ => return None,
    })
}

fn bytes(v: &AMQPValue) -> Option<&[u8]> {
    match v {
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        AMQPValue::ByteArray(b) => Some(b.as_slice()),
        _ => None,
    }
}

/// Erlang's `==` on the two values as RabbitMQ decodes them (the type tag is not compared at
/// the top level; inside arrays and tables it is, as there it is part of the term).
fn same(a: &AMQPValue, b: &AMQPValue) -> bool {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return match (x, y) {
            (Number::Int(x), Number::Int(y)) => x == y,
            (Number::Float(x), Number::Float(y)) => x == y,
            (Number::Int(i), Number::Float(f)) | (Number::Float(f), Number::Int(i)) => i as f64 == f,
        };
    }
    if let (Some(x), Some(y)) = (bytes(a), bytes(b)) {
        return x == y;
    }
    a == b
}

/// A value as RabbitMQ's `~p` prints the simple ones; the others as their Rust form.
fn erlang_value(v: &AMQPValue) -> String {
    match (number(v), v) {
        (Some(Number::Int(n)), _) => n.to_string(),
        (Some(Number::Float(f)), _) => f.to_string(),
        (None, AMQPValue::Boolean(b)) => b.to_string(),
        (None, AMQPValue::Void) => "undefined".into(),
        (None, other) => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(fields: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in fields {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    fn s(v: &str) -> AMQPValue {
        AMQPValue::LongString(v.into())
    }

    /// The cases RabbitMQ 3.10 was asked (tests/broker_compat.rs asks both brokers again).
    #[test]
    fn patterns_match_as_in_rabbitmq() {
        let one = AMQPValue::LongInt(1);
        let all = table(&[("x-match", s("all")), ("a", one.clone()), ("b", s("x"))]);
        let any = table(&[("x-match", s("any")), ("a", one.clone()), ("b", s("x"))]);
        let plain = table(&[("a", one.clone())]);
        let all_x = table(&[("x-match", s("all-with-x")), ("x-k", s("v"))]);
        let all_ignoring_x = table(&[("x-match", s("all")), ("x-k", s("v"))]);
        let any_ignoring_x = table(&[("x-match", s("any")), ("x-k", s("v"))]);
        let present = table(&[("a", AMQPValue::Void)]);
        let cases: [(&FieldTable, Option<FieldTable>, bool); 14] = [
            (&all, Some(table(&[("a", one.clone()), ("b", s("x"))])), true),
            (&all, Some(table(&[("a", one.clone())])), false),
            (&any, Some(table(&[("b", s("x")), ("c", AMQPValue::LongInt(3))])), true),
            (&any, None, false),
            (&plain, Some(table(&[("a", AMQPValue::ShortShortUInt(1))])), true),
            (&plain, Some(table(&[("a", AMQPValue::Double(1.0))])), true),
            (&plain, Some(table(&[("a", s("1"))])), false),
            (&plain, Some(table(&[("a", AMQPValue::Boolean(true))])), false),
            (&all_x, Some(table(&[("x-k", s("v"))])), true),
            (&all_x, None, false),
            (&all_ignoring_x, None, true),
            (&any_ignoring_x, Some(table(&[("x-k", s("v"))])), false),
            (&present, Some(table(&[("a", s("anything"))])), true),
            (&present, Some(table(&[("b", one.clone())])), false),
        ];
        for (args, headers, want) in cases {
            let m = HeadersMatch::parse(args).expect("valid x-match");
            assert_eq!(m.matches(headers.as_ref()), want, "{args:?} ~ {headers:?}");
        }
    }

    #[test]
    fn a_bad_x_match_is_refused_with_rabbitmqs_words() {
        let e = HeadersMatch::parse(&table(&[("x-match", s("foo"))])).unwrap_err();
        assert_eq!(
            (e.code, e.text.as_str()),
            (
                406,
                "PRECONDITION_FAILED - Invalid x-match field value <<\"foo\">>; expected all, any, all-with-x, or any-with-x"
            )
        );
        let e = HeadersMatch::parse(&table(&[("x-match", AMQPValue::LongInt(5))])).unwrap_err();
        assert_eq!(
            e.text,
            "PRECONDITION_FAILED - Invalid x-match field type signedint (value 5); expected longstr"
        );
    }
}
