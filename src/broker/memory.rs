//! What parsed client data costs in memory, so that the limits charge what the broker really
//! holds and not what the bytes cost on the wire: a field array of voids is 1 byte per element
//! on the wire but a whole `AMQPValue` (32 bytes) once parsed, so a 128 KiB frame could become
//! 4 MiB. The estimates are upper bounds (allocator headers and growth slack included); they
//! walk what parsing already built, once per message, never the wire bytes again.

use std::mem::size_of;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable, ShortString};

/// Bookkeeping of one heap allocation (malloc's header and rounding).
const ALLOC: usize = 16;

/// A B-tree map's nodes hold up to 11 entries and may be only half full, and each node carries
/// its keys, values, parent link and lengths: twice the entry size bounds it.
const TABLE_ENTRY: usize = 2 * (size_of::<ShortString>() + size_of::<AMQPValue>()) + ALLOC;

/// Heap bytes a parsed value owns beyond its own `size_of::<AMQPValue>()`.
fn value_heap(v: &AMQPValue) -> usize {
    match v {
        AMQPValue::ShortString(s) => s.as_str().len() + ALLOC,
        AMQPValue::LongString(s) => s.as_bytes().len() + ALLOC,
        AMQPValue::ByteArray(b) => b.as_slice().len() + ALLOC,
        AMQPValue::FieldArray(a) => {
            // The parser pushes one by one: the vector's capacity may be the next power of two.
            let slots = a.as_slice().len().next_power_of_two().max(4);
            slots * size_of::<AMQPValue>() + ALLOC + a.as_slice().iter().map(value_heap).sum::<usize>()
        }
        AMQPValue::FieldTable(t) => table_heap(t),
        _ => 0,
    }
}

/// Heap bytes a parsed field table owns (its nodes, keys and values).
pub fn table_heap(t: &FieldTable) -> usize {
    t.inner().iter().map(|(k, v)| TABLE_ENTRY + k.as_str().len() + ALLOC + value_heap(v)).sum()
}

/// Heap bytes a message's properties hold: their strings and their headers table, parsed.
pub fn properties_heap(p: &BasicProperties) -> usize {
    let strings = [
        p.content_type(),
        p.content_encoding(),
        p.correlation_id(),
        p.reply_to(),
        p.expiration(),
        p.message_id(),
        p.kind(),
        p.user_id(),
        p.app_id(),
        p.cluster_id(),
    ];
    let strings: usize = strings.iter().filter_map(|s| s.as_ref()).map(|s| s.as_str().len() + ALLOC).sum();
    strings + p.headers().as_ref().map_or(0, table_heap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::FieldArray;

    #[test]
    fn an_array_of_voids_costs_its_parsed_size_not_its_wire_size() {
        // 40 000 voids: 40 000 bytes on the wire, over a MiB once parsed.
        let voids = FieldArray::from(vec![AMQPValue::Void; 40_000]);
        let mut t = FieldTable::default();
        t.insert("v".into(), AMQPValue::FieldArray(voids));
        assert!(table_heap(&t) >= 40_000 * size_of::<AMQPValue>(), "{}", table_heap(&t));
    }

    #[test]
    fn nested_tables_and_strings_are_counted() {
        let mut inner = FieldTable::default();
        inner.insert("k".into(), AMQPValue::LongString(vec![b'x'; 1000].into()));
        let mut t = FieldTable::default();
        t.insert("t".into(), AMQPValue::FieldTable(inner));
        let p = BasicProperties::default().with_headers(t).with_message_id("m".repeat(200).into());
        assert!(properties_heap(&p) > 1200, "{}", properties_heap(&p));
    }
}
