//! Which broker warren drives: the one --url names, a local RabbitMQ if one answers, or the
//! embedded broker, started in-process on a free loopback port.

use std::time::Duration;

use lapin::uri::AMQPUri;

use crate::broker::{self, BrokerConfig, RunningBroker};
use crate::cli::{DEFAULT_URL, Target};
use crate::workload::probe::probe;

/// How long warren waits for a local RabbitMQ before using its own broker.
const LOCAL_PROBE: Duration = Duration::from_millis(300);

pub struct Endpoint {
    pub uri: AMQPUri,
    /// Set when warren runs its own broker; stopped with [`Endpoint::stop`].
    pub embedded: Option<RunningBroker>,
    /// The embedded broker's data directory for this run (removed when the endpoint goes).
    data: Option<RunDir>,
}

impl Endpoint {
    pub async fn resolve(target: &Target) -> Result<Endpoint, String> {
        match target {
            Target::Url(uri) => Ok(Endpoint { uri: uri.clone(), embedded: None, data: None }),
            Target::Embedded(dir) => start_embedded(dir.as_deref()).await,
            Target::Auto => {
                if probe("127.0.0.1", 5672, LOCAL_PROBE).await.is_ok() {
                    let uri = DEFAULT_URL.parse().expect("the default URL parses");
                    Ok(Endpoint { uri, embedded: None, data: None })
                } else {
                    start_embedded(None).await
                }
            }
        }
    }

    pub async fn stop(self) {
        if let Some(b) = self.embedded {
            b.stop().await;
        }
        // The data directory goes with `self.data` only now, after the broker stopped.
    }

    /// Stop the embedded broker and start it again on the same port with the same data
    /// directory: what it keeps (durable queues, persistent messages) comes back. Every
    /// connection drops meanwhile (320 CONNECTION_FORCED); warren's actors reconnect.
    pub async fn restart(&mut self) -> Result<(), String> {
        let Some(old) = self.embedded.take() else {
            return Err("only warren's embedded broker can be restarted by warren".into());
        };
        let listen = old.addr;
        old.stop().await;
        let cfg = BrokerConfig {
            listen,
            data_dir: self.data.as_ref().map(|d| d.path.clone()),
            ..BrokerConfig::local()
        };
        // The old listener is closed by now; the port may still be settling for a moment.
        let mut last = String::new();
        for _ in 0..RESTART_TRIES {
            match broker::start(cfg.clone()).await {
                Ok(running) => {
                    self.embedded = Some(running);
                    return Ok(());
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(RESTART_RETRY).await;
        }
        Err(format!("the embedded broker did not start again on {listen}: {last}"))
    }
}

/// Binding the same port again right after the old listener closed: tries, and the wait between.
const RESTART_TRIES: u32 = 20;
const RESTART_RETRY: Duration = Duration::from_millis(100);

async fn start_embedded(given: Option<&std::path::Path>) -> Result<Endpoint, String> {
    let data = match given {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("--data-dir {}: cannot create it: {e}", dir.display()))?;
            RunDir { path: dir.to_path_buf(), remove: false }
        }
        None => RunDir::create()
            .map_err(|e| format!("cannot create the embedded broker's data directory: {e}"))?,
    };
    let cfg = BrokerConfig { data_dir: Some(data.path.clone()), ..BrokerConfig::local() };
    let running = broker::start(cfg)
        .await
        .map_err(|e| format!("cannot start the embedded broker on 127.0.0.1: {e}"))?;
    let uri =
        running.url("guest", "guest").parse().map_err(|e: String| format!("embedded broker URL: {e}"))?;
    Ok(Endpoint { uri, embedded: Some(running), data: Some(data) })
}

/// The embedded broker's data directory: the user's (kept), or one of this run's own under
/// the system's temp directory (removed on drop).
struct RunDir {
    path: std::path::PathBuf,
    remove: bool,
}

impl RunDir {
    fn create() -> std::io::Result<RunDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("warren-broker-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir(&path)?;
        Ok(RunDir { path, remove: true })
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
