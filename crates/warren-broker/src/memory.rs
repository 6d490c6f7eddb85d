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

/// A B-tree map's first node is allocated whole (room for 11 entries, links and lengths) as
/// soon as it holds one entry: a table of one void field costs some 700 bytes, not 8.
const TABLE_NODE: usize = 11 * (size_of::<ShortString>() + size_of::<AMQPValue>()) + 12 * 8 + ALLOC;

/// Heap bytes a parsed field table owns (its nodes, keys and values).
pub fn table_heap(t: &FieldTable) -> usize {
    if t.inner().is_empty() {
        return 0; // an empty map allocates nothing
    }
    TABLE_NODE
        + t.inner().iter().map(|(k, v)| TABLE_ENTRY + k.as_str().len() + ALLOC + value_heap(v)).sum::<usize>()
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
    use super::super::{ConnOut, ConnShared, Core, Limits, Message};
    use super::*;
    use amq_protocol::types::FieldArray;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    /// A no_ack consumer whose client reads nothing: what the core handed its writer stays
    /// charged until written (here: until the queued items are dropped), so publishes are
    /// refused at the limit instead of piling up in the writer's queue.
    #[test]
    fn messages_on_their_way_out_stay_charged_until_written() {
        let mut core = Core::new(Limits { max_held_bytes: 10_000, ..Limits::default() });
        let (tx, mut rx) = mpsc::unbounded_channel();
        core.register_connection(1, ConnOut { tx, shared: Arc::new(ConnShared::default()) });
        core.open_channel(1, 1).expect("room for a channel");
        core.queue_declare(1, "q", false, false, false, false, &FieldTable::default()).expect("declared");
        core.consume(1, 1, "q", "c", true, false, &FieldTable::default()).expect("consuming");
        let msg = || Message::new("".into(), "q".into(), BasicProperties::default(), vec![0; 1000]);
        let held = msg().held;
        let mut taken = 0;
        while core.publish(msg()).is_ok() {
            taken += 1;
            assert!(taken <= 10, "the limit admits at most 10");
        }
        assert_eq!(taken, 10_000 / held);
        let mut queued = Vec::new();
        while let Ok(out) = rx.try_recv() {
            queued.push(out);
        }
        assert_eq!(queued.len(), taken, "all delivered, none written");
        assert_eq!(core.held_bytes(), taken * held);
        drop(queued); // written (or the connection gone): released
        assert_eq!(core.held_bytes(), 0);
        assert!(core.publish(msg()).is_ok(), "room again");
    }

    #[test]
    fn an_array_of_voids_costs_its_parsed_size_not_its_wire_size() {
        // 40 000 voids: 40 000 bytes on the wire, over a MiB once parsed.
        let voids = FieldArray::from(vec![AMQPValue::Void; 40_000]);
        let mut t = FieldTable::default();
        t.insert("v".into(), AMQPValue::FieldArray(voids));
        assert!(table_heap(&t) >= 40_000 * size_of::<AMQPValue>(), "{}", table_heap(&t));
    }

    #[test]
    fn many_small_tables_cost_a_node_each() {
        // 'F', its length, a 1-byte key and 'V': 8 bytes on the wire, a whole B-tree node parsed.
        let mut one = FieldTable::default();
        one.insert("k".into(), AMQPValue::Void);
        let tables = FieldArray::from(vec![AMQPValue::FieldTable(one); 16_000]);
        let mut t = FieldTable::default();
        t.insert("a".into(), AMQPValue::FieldArray(tables));
        assert!(table_heap(&t) >= 16_000 * 11 * 56, "{}", table_heap(&t));
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

    /// Binding arguments are held for as long as the binding: charged when bound, given back
    /// when unbound or when the queue or the exchange goes, and refused past the limit.
    #[test]
    fn binding_arguments_are_charged_while_bound() {
        let mut core = Core::new(Limits { max_held_bytes: 200_000, ..Limits::default() });
        let (tx, _rx) = mpsc::unbounded_channel();
        core.register_connection(1, ConnOut { tx, shared: Arc::new(ConnShared::default()) });
        core.open_channel(1, 1).expect("room for a channel");
        core.queue_declare(1, "q", false, false, false, false, &FieldTable::default()).expect("declared");
        core.exchange_declare("h", "headers", false, false, false, false).expect("declared");
        let args = |n: usize| {
            let mut t = FieldTable::default();
            t.insert("v".into(), AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Void; n])));
            t
        };
        let small = args(100);
        core.queue_bind(1, "q", "h", "", &small, true).expect("bound");
        let charged = core.held_bytes();
        assert!(charged >= table_heap(&small), "{charged}");
        core.queue_bind(1, "q", "h", "", &small, true).expect("bound again: the same binding");
        assert_eq!(core.held_bytes(), charged, "charged once");
        core.queue_bind(1, "q", "h", "", &small, false).expect("unbound");
        assert_eq!(core.held_bytes(), 0);
        let e = core.queue_bind(1, "q", "h", "", &args(10_000), true).expect_err("over the limit");
        assert_eq!(e.code, 406, "{}", e.text);
        assert_eq!(core.held_bytes(), 0);
        core.queue_bind(1, "q", "h", "", &small, true).expect("bound");
        core.queue_delete(1, "q", false, false).expect("deleted");
        assert_eq!(core.held_bytes(), 0, "its bindings went with the queue");
        core.queue_declare(1, "q", false, false, false, false, &FieldTable::default()).expect("declared");
        core.queue_bind(1, "q", "h", "", &small, true).expect("bound");
        core.exchange_delete("h", false).expect("deleted");
        assert_eq!(core.held_bytes(), 0, "its bindings went with the exchange");
    }
}
