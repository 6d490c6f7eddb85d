//! What the broker says about itself in connection.start, and reading the client's login.

use amq_protocol::types::{AMQPValue, FieldTable, LongString};

use super::PRODUCT;

/// What the broker tells clients about itself: only the capabilities it honours.
pub(super) fn server_properties() -> FieldTable {
    let mut caps = FieldTable::default();
    for cap in [
        "publisher_confirms",
        "basic.nack",
        "consumer_cancel_notify",
        "per_consumer_qos",
        "authentication_failure_close",
    ] {
        caps.insert(cap.into(), AMQPValue::Boolean(true));
    }
    let mut props = FieldTable::default();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s));
    props.insert("product".into(), text(PRODUCT));
    props.insert("version".into(), text(env!("CARGO_PKG_VERSION")));
    props.insert("platform".into(), text("Rust, tokio"));
    props.insert("information".into(), text("embedded warren broker, in memory"));
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    props
}

/// PLAIN: `[authzid] NUL user NUL password`.
pub(super) fn parse_plain(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|&b| b == 0);
    let _authzid = parts.next()?;
    let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let password = String::from_utf8(parts.next()?.to_vec()).ok()?;
    parts.next().is_none().then_some((user, password))
}

/// AMQPLAIN: a field table without its length prefix, with LOGIN and PASSWORD.
pub(super) fn parse_amqplain(response: &[u8]) -> Option<(String, String)> {
    let mut framed = (response.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(response);
    let (_, table) = amq_protocol::types::parsing::parse_field_table(framed.as_slice()).ok()?;
    let text = |k: &str| match table.inner().get(k)? {
        AMQPValue::LongString(s) => String::from_utf8(s.as_bytes().to_vec()).ok(),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    };
    Some((text("LOGIN")?, text("PASSWORD")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_responses_parse_and_garbage_does_not() {
        assert_eq!(parse_plain(b"\0guest\0secret"), Some(("guest".into(), "secret".into())));
        assert_eq!(parse_plain(b"guest"), None);
        assert_eq!(parse_plain(b"\0a\0b\0c"), None);
        assert_eq!(parse_amqplain(b"\xff\xff"), None);
    }
}
