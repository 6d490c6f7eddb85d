//! The log's records and their framing: `[len: u32 LE][crc32 of payload: u32 LE][payload]`,
//! the payload a type byte and its fields. A record is either whole with a matching checksum or
//! it is not there: a torn tail (a crash mid-write) is told apart from a corrupt middle by
//! whether anything follows it (recover.rs).

use amq_protocol::protocol::BasicProperties;
use amq_protocol::protocol::basic::{gen_properties, parse_properties};
use amq_protocol::types::FieldTable;
use amq_protocol::types::generation::gen_field_table;
use amq_protocol::types::parsing::parse_field_table;

/// The first bytes of a data file: what it is and the format's version.
pub const MAGIC: &[u8; 16] = b"warren-broker\0\0\x01";

/// One change to what survives a restart. Queues are named by a number of their own (`qid`)
/// and messages by theirs (`mid`, in publish order), so that the frequent records are small.
// Built one at a time and encoded at once, never stored in bulk: the size of the message
// variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Exchange {
        name: String,
        kind: String,
        auto_delete: bool,
        internal: bool,
    },
    ExchangeDeleted {
        name: String,
    },
    Queue {
        qid: u32,
        name: String,
        auto_delete: bool,
        args: FieldTable,
    },
    QueueDeleted {
        qid: u32,
    },
    /// `args`: the binding's arguments as the exchange keeps them (an encoded table or empty).
    Bind {
        exchange: String,
        qid: u32,
        key: String,
        args: Vec<u8>,
    },
    Unbind {
        exchange: String,
        qid: u32,
        key: String,
        args: Vec<u8>,
    },
    Message {
        mid: u64,
        exchange: String,
        routing_key: String,
        properties: BasicProperties,
        body: Vec<u8>,
    },
    Enqueued {
        qid: u32,
        mid: u64,
    },
    /// Handed to a consumer once: it comes back redelivered after a restart.
    Delivered {
        qid: u32,
        mid: u64,
    },
    /// Left the queue for good (acked, expired, dropped, purged, dead-lettered).
    Removed {
        qid: u32,
        mid: u64,
    },
}

/// Append `r` framed to `buf`.
pub fn write(buf: &mut Vec<u8>, r: &Record) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 8]);
    encode(buf, r);
    let payload = &buf[start + 8..];
    let (len, crc) = (payload.len() as u32, crc32(payload));
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn encode(b: &mut Vec<u8>, r: &Record) {
    match r {
        Record::Exchange { name, kind, auto_delete, internal } => {
            b.push(1);
            put_str(b, name);
            put_str(b, kind);
            b.push(u8::from(*auto_delete) | u8::from(*internal) << 1);
        }
        Record::ExchangeDeleted { name } => {
            b.push(2);
            put_str(b, name);
        }
        Record::Queue { qid, name, auto_delete, args } => {
            b.push(3);
            b.extend_from_slice(&qid.to_le_bytes());
            put_str(b, name);
            b.push(u8::from(*auto_delete));
            put_bytes(b, &table_bytes(args));
        }
        Record::QueueDeleted { qid } => {
            b.push(4);
            b.extend_from_slice(&qid.to_le_bytes());
        }
        Record::Bind { exchange, qid, key, args } | Record::Unbind { exchange, qid, key, args } => {
            b.push(if matches!(r, Record::Bind { .. }) { 5 } else { 6 });
            put_str(b, exchange);
            b.extend_from_slice(&qid.to_le_bytes());
            put_str(b, key);
            put_bytes(b, args);
        }
        Record::Message { mid, exchange, routing_key, properties, body } => {
            b.push(7);
            b.extend_from_slice(&mid.to_le_bytes());
            put_str(b, exchange);
            put_str(b, routing_key);
            put_bytes(b, &properties_bytes(properties));
            put_bytes(b, body);
        }
        Record::Enqueued { qid, mid } | Record::Delivered { qid, mid } | Record::Removed { qid, mid } => {
            b.push(match r {
                Record::Enqueued { .. } => 8,
                Record::Delivered { .. } => 9,
                _ => 10,
            });
            b.extend_from_slice(&qid.to_le_bytes());
            b.extend_from_slice(&mid.to_le_bytes());
        }
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_bytes(b, s.as_bytes());
}

fn put_bytes(b: &mut Vec<u8>, s: &[u8]) {
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    b.extend_from_slice(s);
}

fn table_bytes(t: &FieldTable) -> Vec<u8> {
    gen_field_table(t)(Vec::new().into()).map(|c| c.into_inner().0).unwrap_or_default()
}

fn properties_bytes(p: &BasicProperties) -> Vec<u8> {
    gen_properties(p)(Vec::new().into()).map(|c| c.into_inner().0).unwrap_or_default()
}

/// A checksummed payload that does not decode: the file was written by something else.
pub fn decode(p: &[u8]) -> Option<Record> {
    let mut r = Reader(p);
    let record = match r.u8()? {
        1 => {
            let (name, kind, flags) = (r.string()?, r.string()?, r.u8()?);
            Record::Exchange { name, kind, auto_delete: flags & 1 != 0, internal: flags & 2 != 0 }
        }
        2 => Record::ExchangeDeleted { name: r.string()? },
        3 => {
            let (qid, name, auto_delete) = (r.u32()?, r.string()?, r.u8()? != 0);
            let bytes = r.bytes()?;
            let args =
                if bytes.is_empty() { FieldTable::default() } else { parse_field_table(bytes).ok()?.1 };
            Record::Queue { qid, name, auto_delete, args }
        }
        4 => Record::QueueDeleted { qid: r.u32()? },
        t @ (5 | 6) => {
            let (exchange, qid, key, args) = (r.string()?, r.u32()?, r.string()?, r.bytes()?.to_vec());
            if t == 5 {
                Record::Bind { exchange, qid, key, args }
            } else {
                Record::Unbind { exchange, qid, key, args }
            }
        }
        7 => {
            let (mid, exchange, routing_key) = (r.u64()?, r.string()?, r.string()?);
            let properties = parse_properties(r.bytes()?).ok()?.1;
            Record::Message { mid, exchange, routing_key, properties, body: r.bytes()?.to_vec() }
        }
        t @ 8..=10 => {
            let (qid, mid) = (r.u32()?, r.u64()?);
            match t {
                8 => Record::Enqueued { qid, mid },
                9 => Record::Delivered { qid, mid },
                _ => Record::Removed { qid, mid },
            }
        }
        _ => return None,
    };
    r.0.is_empty().then_some(record)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

/// CRC-32 (IEEE, as zlib's): enough to tell a torn or flipped record from a whole one.
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *e = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8))
}

/// What reading a framed record at the start of `data` found.
pub enum Framed<'a> {
    Whole {
        payload: &'a [u8],
        len: usize,
    },
    /// Cut short or failing its checksum.
    Bad,
}

pub fn frame(data: &[u8]) -> Framed<'_> {
    if data.len() < 8 {
        return Framed::Bad;
    }
    let len = u32::from_le_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(data[4..8].try_into().expect("4 bytes"));
    match data.get(8..8 + len) {
        Some(payload) if crc32(payload) == crc => Framed::Whole { payload, len: 8 + len },
        _ => Framed::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn records_round_trip_and_a_flipped_bit_is_caught() {
        let props = BasicProperties::default().with_delivery_mode(2).with_priority(3);
        let all = [
            Record::Exchange { name: "x".into(), kind: "topic".into(), auto_delete: true, internal: false },
            Record::Queue { qid: 7, name: "q".into(), auto_delete: false, args: FieldTable::default() },
            Record::Bind { exchange: "x".into(), qid: 7, key: "a.#".into(), args: vec![] },
            Record::Message {
                mid: 9,
                exchange: "".into(),
                routing_key: "q".into(),
                properties: props,
                body: vec![1, 2],
            },
            Record::Removed { qid: 7, mid: 9 },
        ];
        for r in all {
            let mut buf = Vec::new();
            write(&mut buf, &r);
            let Framed::Whole { payload, len } = frame(&buf) else { panic!("whole") };
            assert_eq!((decode(payload), len), (Some(r), buf.len()));
            let last = buf.len() - 1;
            buf[last] ^= 1;
            assert!(matches!(frame(&buf), Framed::Bad));
        }
    }
}
