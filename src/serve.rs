//! `warren broker`: the embedded broker on its own, for other programs, until Ctrl-C, SIGTERM,
//! SIGHUP or SIGQUIT (each a clean stop, exit 0).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::broker::{self, BrokerConfig, Limits};
use crate::cli::BrokerArgs;

const DEFAULT_PORT: u16 = 5672;
/// Ports tried after 5672 when it is taken and no --listen was given.
const PORT_TRIES: u16 = 20;

/// The checked settings, or a one-line error.
pub fn config(args: &BrokerArgs) -> Result<(BrokerConfig, bool), String> {
    let (addr, explicit) = match &args.listen {
        Some(text) => (parse_listen(text)?, true),
        None => (SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT), false),
    };
    let users = match (&args.user, &args.password) {
        (Some(u), Some(p)) if !u.is_empty() => vec![(u.clone(), p.clone())],
        (Some(_), _) => return Err("--user must not be empty".into()),
        _ if !addr.ip().is_loopback() => {
            return Err(format!(
                "listening on {} (beyond loopback) needs credentials: add --user NAME --password PW \
                 (guest may only connect from localhost)",
                addr.ip()
            ));
        }
        _ => vec![("guest".into(), "guest".into())],
    };
    let mut limits = Limits::default();
    if let Some(t) = args.consumer_timeout {
        limits.consumer_timeout = t.0;
    }
    Ok((BrokerConfig { listen: addr, users, limits, ..BrokerConfig::local() }, explicit))
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, DEFAULT_PORT)))
        .map_err(|_| format!("--listen '{text}' is not ADDR:PORT: try 127.0.0.1:5672 or 0.0.0.0:5673"))
}

pub async fn run(args: BrokerArgs) -> Result<(), String> {
    let (mut cfg, explicit) = config(&args)?;
    broker::fds::log_to_stderr(true);
    let running = loop {
        match broker::start(cfg.clone()).await {
            Ok(b) => break b,
            Err(e)
                if !explicit
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && cfg.listen.port() < DEFAULT_PORT + PORT_TRIES =>
            {
                cfg.listen.set_port(cfg.listen.port() + 1);
            }
            Err(e) => return Err(format!("cannot listen on {}: {e}", cfg.listen)),
        }
    };
    // Listen before saying we listen: a supervisor may signal as soon as it reads the line.
    let mut signals = crate::signal::Signals::new();
    let (user, password) = &cfg.users[0];
    let shown = if user == "guest" { password.as_str() } else { "***" };
    if !explicit && running.addr.port() != DEFAULT_PORT {
        crate::out::line(format!(
            "warren broker: port {DEFAULT_PORT} is taken (RabbitMQ?), using {} instead",
            running.addr.port()
        ));
    }
    if let Some(line) = room_line(running.open_files, cfg.limits.max_connections) {
        crate::out::line(line);
    }
    crate::out::line(format!(
        "warren broker listening on {} — connect with amqp://{user}:{shown}@{}/%2f ; Ctrl-C stops it",
        running.addr, running.addr
    ));
    let stop = running.stopper();
    let first = signals.recv().await;
    signals.exit_on_next(first);
    stop.cancel();
    running.wait().await;
    crate::out::line("warren broker stopped");
    Ok(())
}

/// How many connections the open-files limit leaves room for, in one line.
fn room_line(open_files: Option<broker::fds::OpenFiles>, max: usize) -> Option<String> {
    let broker::fds::OpenFiles { limit, room } = open_files?;
    Some(if room < max {
        format!(
            "warren broker: room for {room} connections under the open-files limit of {limit} \
             (it allows {max}: raise ulimit -n for more); beyond that they are refused with 530"
        )
    } else {
        format!("warren broker: room for {max} connections (open-files limit {limit})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(listen: Option<&str>, user: Option<&str>) -> BrokerArgs {
        BrokerArgs {
            listen: listen.map(str::to_string),
            user: user.map(str::to_string),
            password: user.map(|_| "pw".to_string()),
            consumer_timeout: None,
        }
    }

    #[test]
    fn beyond_loopback_needs_credentials() {
        let err = config(&args(Some("0.0.0.0:5673"), None)).unwrap_err();
        assert!(err.contains("needs credentials"), "{err}");
        let (cfg, explicit) = config(&args(Some("0.0.0.0:5673"), Some("alice"))).unwrap();
        assert_eq!((cfg.users[0].0.as_str(), explicit), ("alice", true));
        let (cfg, explicit) = config(&args(None, None)).unwrap();
        assert_eq!((cfg.listen.port(), cfg.users[0].0.as_str(), explicit), (5672, "guest", false));
        assert!(config(&args(Some("nonsense"), None)).unwrap_err().contains("not ADDR:PORT"));
        assert_eq!(config(&args(Some("127.0.0.1"), None)).unwrap().0.listen.port(), 5672);
    }

    #[test]
    fn the_consumer_timeout_is_rabbitmqs_30_minutes_unless_given() {
        let default = config(&args(None, None)).unwrap().0.limits.consumer_timeout;
        assert_eq!(default, Some(std::time::Duration::from_secs(1800)));
        let mut a = args(None, None);
        a.consumer_timeout = Some(crate::cli::parse_consumer_timeout("90s").unwrap());
        assert_eq!(config(&a).unwrap().0.limits.consumer_timeout, Some(std::time::Duration::from_secs(90)));
        a.consumer_timeout = Some(crate::cli::parse_consumer_timeout("off").unwrap());
        assert_eq!(config(&a).unwrap().0.limits.consumer_timeout, None);
        assert!(crate::cli::parse_consumer_timeout("0s").unwrap_err().contains("above 0"));
        assert!(crate::cli::parse_consumer_timeout("soon").is_err());
    }

    #[test]
    fn the_room_line_names_the_limit_and_what_to_raise() {
        let low = room_line(Some(broker::fds::OpenFiles { limit: 64, room: 50 }), 1024).unwrap();
        assert_eq!(
            low,
            "warren broker: room for 50 connections under the open-files limit of 64 \
             (it allows 1024: raise ulimit -n for more); beyond that they are refused with 530"
        );
        let high = room_line(Some(broker::fds::OpenFiles { limit: 20000, room: 1024 }), 1024).unwrap();
        assert_eq!(high, "warren broker: room for 1024 connections (open-files limit 20000)");
        assert_eq!(room_line(None, 1024), None);
    }
}
