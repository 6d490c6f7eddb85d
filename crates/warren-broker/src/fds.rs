//! File descriptors: the broker raises its own open-files limit at start, and keeps a few spare
//! descriptors in reserve so that when `accept` fails for want of one (EMFILE) it can still
//! free a spare, accept the waiting client and refuse it with 530, instead of leaving it to
//! time out; when even that is impossible it backs off rather than retry at once.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Spare descriptors held for refusals: as many refusals can run at once.
pub(super) const RESERVE: usize = 4;

/// The first pause after a failed accept, doubled up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

static LOG: AtomicBool = AtomicBool::new(false);

/// Let the accept loop say on stderr when it runs out of descriptors and when it recovers:
/// `warren broker` does; the TUI's embedded broker must not write over the screen.
pub fn log_to_stderr(on: bool) {
    LOG.store(on, Ordering::Relaxed);
}

pub(super) fn log(line: &str) {
    if LOG.load(Ordering::Relaxed) {
        eprintln!("warren broker: {line}");
    }
}

/// The process's open-files limit and how many connections fit under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft RLIMIT_NOFILE, after raising it to the hard limit.
    pub limit: u64,
    /// Connections that fit: descriptors left at start, at most the connection limit.
    pub room: usize,
}

/// Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit in force afterwards.
#[cfg(unix)]
pub fn raise_limit() -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            // An unlimited hard limit may still be refused (macOS caps it): keep the old one.
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    #[allow(clippy::useless_conversion)] // rlim_t is not u64 on every platform
    Some(u64::try_from(lim.rlim_cur).unwrap_or(u64::MAX))
}

#[cfg(not(unix))]
pub fn raise_limit() -> Option<u64> {
    None
}

/// Descriptors open in this process now, less the one reading the list (Linux: /proc/self/fd;
/// macOS and the BSDs: /dev/fd).
pub fn open_now() -> Option<usize> {
    let dir = std::fs::read_dir("/proc/self/fd").or_else(|_| std::fs::read_dir("/dev/fd")).ok()?;
    Some(dir.count().saturating_sub(1))
}

/// The limit and the room it leaves, given the connection limit; None where it is unknown.
pub fn open_files(max_connections: usize) -> Option<OpenFiles> {
    let limit = raise_limit()?;
    let open = open_now()?;
    let free = usize::try_from(limit).unwrap_or(usize::MAX).saturating_sub(open);
    Some(OpenFiles { limit, room: free.min(max_connections) })
}

/// The error says the process (EMFILE) or the system (ENFILE) has no descriptor to give.
pub(super) fn exhausted(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// An accept error about one client only (it left before we took it): retry at once.
pub(super) fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

/// Spare descriptors (on /dev/null) to give up when accept needs one.
pub(super) struct Reserve {
    spares: Vec<File>,
}

impl Reserve {
    pub fn new() -> Self {
        let mut r = Self { spares: Vec::with_capacity(RESERVE) };
        r.refill();
        r
    }

    /// Reopen spares given up earlier, as far as descriptors allow.
    pub fn refill(&mut self) {
        while self.spares.len() < RESERVE {
            match File::open(NULL_DEVICE) {
                Ok(f) => self.spares.push(f),
                Err(_) => break,
            }
        }
    }

    pub fn is_full(&self) -> bool {
        self.spares.len() == RESERVE
    }

    /// Close one spare so that the next accept can succeed; false when none is left.
    pub fn release(&mut self) -> bool {
        self.spares.pop().is_some()
    }
}

#[cfg(unix)]
const NULL_DEVICE: &str = "/dev/null";
#[cfg(not(unix))]
const NULL_DEVICE: &str = "NUL";

/// Pauses after failed accepts: 10 ms, doubling to 1 s, back to 10 ms after a success.
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Self {
        Self { next: BACKOFF_MIN }
    }

    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }

    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_one_second_and_resets() {
        let mut b = Backoff::new();
        let pauses: Vec<u64> = (0..9).map(|_| b.next_pause().as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_pause(), BACKOFF_MIN);
    }

    #[cfg(unix)]
    #[test]
    fn only_descriptor_shortages_count_as_exhausted() {
        assert!(exhausted(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(exhausted(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!exhausted(&io::Error::from_raw_os_error(libc::ECONNABORTED)));
        assert!(transient(&io::Error::from_raw_os_error(libc::ECONNABORTED)));
        assert!(!transient(&io::Error::from_raw_os_error(libc::EMFILE)));
    }
}
