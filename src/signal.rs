//! Waiting for SIGTERM, so that `kill` (not only Ctrl-C) ends warren cleanly.

/// Resolves when the process gets SIGTERM; never, where there is no such signal.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut s) = signal(SignalKind::terminate()) {
            s.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}
