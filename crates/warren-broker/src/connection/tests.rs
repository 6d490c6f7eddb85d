//! Reply back-pressure and heartbeats of one connection, on paused time.

use super::super::REPLIES_LOW;
use super::*;

#[test]
fn short_strings_are_cut_on_a_char_boundary() {
    assert_eq!(short(&"é".repeat(200)).as_str().len(), 254);
}

/// Unread replies over the limit, with a paused reader waiting on them.
fn paused_reader(timeout: Duration) -> (Arc<ConnShared>, tokio::task::JoinHandle<Result<(), ()>>) {
    let shared = Arc::new(ConnShared::default());
    shared.replies.store(5 << 20, Ordering::Relaxed);
    let waiting = Arc::clone(&shared);
    (shared, tokio::spawn(async move { replies_read(&waiting, Some(timeout)).await }))
}

async fn let_it_run() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_reader_paused_for_a_slow_client_waits_while_the_client_reads() {
    let (shared, reader) = paused_reader(Duration::from_secs(2));
    let_it_run().await;
    tokio::time::advance(Duration::from_millis(1500)).await;
    shared.replies.store(9 << 19, Ordering::Relaxed); // the client read half a MiB
    tokio::time::advance(Duration::from_millis(1500)).await;
    let_it_run().await;
    assert!(!reader.is_finished(), "a client that reads, slowly, is not dropped at the heartbeat timeout");
    // The writer drains the rest and says so.
    shared.replies.store(REPLIES_LOW, Ordering::Relaxed);
    shared.replies_drained.notify_waiters();
    assert_eq!(reader.await.expect("no panic"), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn a_reader_paused_for_a_client_that_reads_nothing_gives_up_at_the_timeout() {
    let (_shared, reader) = paused_reader(Duration::from_secs(2));
    let_it_run().await;
    tokio::time::advance(Duration::from_millis(1900)).await;
    let_it_run().await;
    assert!(!reader.is_finished(), "not before the timeout");
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(reader.await.expect("no panic"), Err(()));
}

#[tokio::test(start_paused = true)]
async fn a_paused_reader_goes_on_when_the_writer_stops() {
    let (shared, reader) = paused_reader(Duration::from_secs(60));
    let_it_run().await;
    shared.writer_done.store(true, Ordering::Release);
    shared.replies_drained.notify_waiters();
    assert_eq!(reader.await.expect("no panic"), Ok(()));
}
