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
}

impl Endpoint {
    pub async fn resolve(target: &Target) -> Result<Endpoint, String> {
        match target {
            Target::Url(uri) => Ok(Endpoint { uri: uri.clone(), embedded: None }),
            Target::Embedded => start_embedded().await,
            Target::Auto => {
                if probe("127.0.0.1", 5672, LOCAL_PROBE).await.is_ok() {
                    let uri = DEFAULT_URL.parse().expect("the default URL parses");
                    Ok(Endpoint { uri, embedded: None })
                } else {
                    start_embedded().await
                }
            }
        }
    }

    pub async fn stop(self) {
        if let Some(b) = self.embedded {
            b.stop().await;
        }
    }
}

async fn start_embedded() -> Result<Endpoint, String> {
    let running = broker::start(BrokerConfig::local())
        .await
        .map_err(|e| format!("cannot start the embedded broker on 127.0.0.1: {e}"))?;
    let uri =
        running.url("guest", "guest").parse().map_err(|e: String| format!("embedded broker URL: {e}"))?;
    Ok(Endpoint { uri, embedded: Some(running) })
}
