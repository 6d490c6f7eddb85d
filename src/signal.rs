//! The signals that end warren: SIGINT, SIGTERM, SIGHUP and SIGQUIT are caught, so that every
//! way of ending it (kill, a closed terminal window, Ctrl-\ outside raw mode) restores the
//! terminal and prints what a headless run saw, instead of dying mid-screen.

use std::fmt;

/// A signal that asks warren to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Hup,
    Int,
    Quit,
    Term,
}

impl Signal {
    /// The conventional exit code of a process ended by this signal (128 + its number), which
    /// shells and supervisors read as "ended by SIGx"; the README's exit-code table lists them.
    pub fn exit_code(self) -> u8 {
        128 + match self {
            Signal::Hup => 1,
            Signal::Int => 2,
            Signal::Quit => 3,
            Signal::Term => 15,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Hup => "SIGHUP",
            Signal::Int => "SIGINT",
            Signal::Quit => "SIGQUIT",
            Signal::Term => "SIGTERM",
        })
    }
}

/// The four signals, listened to from creation on. Create it before any slow step (connecting):
/// once tokio has taken a signal over, the default action (dying) no longer applies, so a
/// signal nobody listens to would be ignored.
pub struct Signals {
    #[cfg(unix)]
    streams: Vec<(Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Must be called within a tokio runtime. A signal that cannot be taken over keeps its
    /// default action, which still ends the process.
    pub fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let kinds = [
                (Signal::Hup, SignalKind::hangup()),
                (Signal::Int, SignalKind::interrupt()),
                (Signal::Quit, SignalKind::quit()),
                (Signal::Term, SignalKind::terminate()),
            ];
            let streams = kinds.into_iter().filter_map(|(s, kind)| Some((s, signal(kind).ok()?))).collect();
            Signals { streams }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next of the four signals to arrive; never, where there are none.
    pub async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            if self.streams.is_empty() {
                return std::future::pending().await;
            }
            let waits = self.streams.iter_mut().map(|(s, stream)| {
                let s = *s;
                Box::pin(async move {
                    // None means the signal driver is gone: never resolve rather than spin.
                    match stream.recv().await {
                        Some(()) => s,
                        None => std::future::pending().await,
                    }
                })
            });
            futures::future::select_all(waits).await.0
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Int
        }
    }

    /// After a first signal, warren restores the terminal and then closes its connections,
    /// which can take a while against a stalled broker: a second signal ends the process at
    /// once, with the first one's code.
    pub fn exit_on_next(mut self, first: Signal) {
        tokio::spawn(async move {
            self.recv().await;
            std::process::exit(i32::from(first.exit_code()));
        });
    }
}

impl Default for Signals {
    fn default() -> Self {
        Signals::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal_number() {
        let codes: Vec<(String, u8)> = [Signal::Hup, Signal::Int, Signal::Quit, Signal::Term]
            .iter()
            .map(|s| (s.to_string(), s.exit_code()))
            .collect();
        let want = [("SIGHUP", 129), ("SIGINT", 130), ("SIGQUIT", 131), ("SIGTERM", 143)];
        assert_eq!(codes, want.map(|(n, c)| (n.to_string(), c)));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_signal_sent_to_the_process_is_received_and_named() {
        let mut signals = Signals::new();
        // SIGHUP to ourselves: caught by the listener above, so the test process lives on.
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), signals.recv()).await;
        assert_eq!(got.expect("the signal arrives"), Signal::Hup);
    }
}
