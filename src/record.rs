//! Screencasts: record exactly what was sent to the terminal as an [asciicast v2] file, and show
//! the keys pressed in a small overlay so a viewer can follow along.
//!
//! [`Recorder`] is a `Write` that sits between ratatui's `CrosstermBackend` and the real terminal:
//! every byte goes to the terminal unchanged, and every `flush` (ratatui flushes once per frame)
//! becomes one `"o"` event in the cast file. [`Recording`] is a cloneable handle on the same cast
//! file for what is not terminal output: resizes (`"r"`), markers (`"m"`) and the first error.
//!
//! Recording never breaks the terminal: the first error writing the cast file is kept (see
//! [`Recording::error`]) and recording stops there; the terminal output carries on.
//!
//! No `"i"` (input) events are written: players ignore them, and they would hold raw input bytes,
//! not key names. The [`KeyOverlay`] is drawn into the frame instead, so it is part of the output.
//!
//! [asciicast v2]: https://docs.asciinema.org/manual/asciicast/v2/

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use serde::Serialize;

/// A writer that passes everything to `inner` (the real terminal) and appends it to a cast file,
/// one `"o"` event per [`flush`](Write::flush).
pub struct Recorder<W: Write> {
    inner: W,
    /// Written since the last flush, plus an incomplete UTF-8 sequence carried over.
    pending: Vec<u8>,
    /// `None` when not recording.
    cast: Option<Recording>,
    /// Set once an error stopped the recording: nothing more is kept.
    stopped: bool,
}

/// A handle on the cast file of a [`Recorder`], for events that are not terminal output, and for
/// its first error. Clones share the file.
#[derive(Clone)]
pub struct Recording(Arc<Mutex<Sink>>);

struct Sink {
    /// `None` once an error stopped the recording.
    out: Option<BufWriter<Box<dyn Write + Send>>>,
    start: Instant,
    error: Option<Arc<io::Error>>,
}

#[derive(Serialize)]
struct Header<'a> {
    version: u8,
    width: u16,
    height: u16,
    timestamp: u64,
    env: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "str::is_empty")]
    title: &'a str,
}

impl<W: Write> Recorder<W> {
    /// Create (or truncate) the cast file at `path`, write its header for a `width` x `height`
    /// terminal, and record everything written to `inner` from now on.
    pub fn create(path: &Path, inner: W, width: u16, height: u16, title: &str) -> io::Result<Self> {
        Self::new(File::create(path)?, inner, width, height, title)
    }

    /// Like [`Recorder::create`], with the cast written to `cast` instead of a file.
    pub fn new(
        cast: impl Write + Send + 'static,
        inner: W,
        width: u16,
        height: u16,
        title: &str,
    ) -> io::Result<Self> {
        let mut out = BufWriter::new(Box::new(cast) as Box<dyn Write + Send>);
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let env = ["TERM", "SHELL"]
            .into_iter()
            .filter_map(|name| std::env::var(name).ok().map(|value| (name, value)))
            .collect();
        let header = Header { version: 2, width, height, timestamp, env, title };
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
        out.flush()?;
        let sink = Sink { out: Some(out), start: Instant::now(), error: None };
        let cast = Some(Recording(Arc::new(Mutex::new(sink))));
        Ok(Self { inner, pending: Vec::new(), cast, stopped: false })
    }

    /// A writer that records nothing, so the terminal has one type with or without recording.
    pub fn passthrough(inner: W) -> Self {
        Self { inner, pending: Vec::new(), cast: None, stopped: true }
    }

    /// The handle for resizes, markers and errors; `None` for [`Recorder::passthrough`].
    pub fn recording(&self) -> Option<Recording> {
        self.cast.clone()
    }

    /// The real terminal.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for Recorder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if !self.stopped {
            self.pending.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // The screen first; the cast file's I/O must not delay the frame.
        let result = self.inner.flush();
        if let Some(cast) = self.cast.as_ref().filter(|_| !self.stopped) {
            let data = take_complete_utf8(&mut self.pending);
            if !data.is_empty() && !cast.event("o", &data) {
                self.stopped = true;
                self.pending = Vec::new();
            }
        }
        result
    }
}

impl Recording {
    /// Record that the terminal is now `width` x `height` (an `"r"` event).
    pub fn resize(&self, width: u16, height: u16) {
        self.event("r", &format!("{width}x{height}"));
    }

    /// Record a marker (an `"m"` event), e.g. a scenario step; players can jump to markers.
    pub fn marker(&self, label: &str) {
        self.event("m", label);
    }

    /// The first error writing the cast file; nothing has been recorded since.
    pub fn error(&self) -> Option<Arc<io::Error>> {
        self.lock().error.clone()
    }

    /// Append one event; false if the recording has stopped (now or earlier).
    fn event(&self, code: &str, data: &str) -> bool {
        let mut sink = self.lock();
        let elapsed = sink.start.elapsed();
        let Some(out) = sink.out.as_mut() else { return false };
        match write_event(out, elapsed, code, data) {
            Ok(()) => true,
            Err(e) => {
                if let Some(out) = sink.out.take() {
                    // Drop the unwritten rest without the flush that dropping a BufWriter does:
                    // a half line must not land in the file later.
                    let _ = out.into_parts();
                }
                sink.error = Some(Arc::new(e));
                false
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sink> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One event line, `[seconds, "code", "data"]`, flushed so that a crash leaves a valid file.
fn write_event(out: &mut impl Write, elapsed: Duration, code: &str, data: &str) -> io::Result<()> {
    write!(out, "[{}.{:06}, \"{code}\", ", elapsed.as_secs(), elapsed.subsec_micros())?;
    serde_json::to_writer(&mut *out, data)?;
    out.write_all(b"]\n")?;
    out.flush()
}

/// Remove and return the longest prefix of `pending` that holds only complete UTF-8 sequences;
/// an incomplete sequence at the end stays for the next call. Invalid bytes become U+FFFD.
fn take_complete_utf8(pending: &mut Vec<u8>) -> String {
    let mut text = String::new();
    let mut rest = &pending[..];
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                rest = &[];
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                text.push_str(&String::from_utf8_lossy(valid));
                match e.error_len() {
                    Some(invalid) => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[invalid..];
                    }
                    None => {
                        // Incomplete: wait for the rest of the sequence.
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    let taken = pending.len() - rest.len();
    pending.drain(..taken);
    text
}

/// The last few keys pressed, for a screencast's viewers.
#[derive(Debug, Default, Clone)]
pub struct KeyOverlay {
    /// Oldest first.
    keys: VecDeque<(String, Instant)>,
}

impl KeyOverlay {
    /// How long a key stays visible.
    pub const KEEP: Duration = Duration::from_millis(1500);
    /// At most this many keys are shown.
    pub const MAX: usize = 5;

    pub fn new() -> Self {
        Self::default()
    }

    /// Remember that the key `label` was pressed at `now`.
    pub fn push(&mut self, label: String, now: Instant) {
        self.keys.push_back((label, now));
        while self.keys.len() > Self::MAX {
            self.keys.pop_front();
        }
    }

    /// The keys to show at `now`, oldest first.
    pub fn visible(&self, now: Instant) -> Vec<&str> {
        self.keys.iter().filter(|(_, at)| fresh(*at, now)).map(|(label, _)| label.as_str()).collect()
    }

    /// Forget the keys no longer visible at `now`; true if there were any, so the screen
    /// must be redrawn for them to disappear.
    pub fn prune(&mut self, now: Instant) -> bool {
        let before = self.keys.len();
        self.keys.retain(|(_, at)| fresh(*at, now));
        self.keys.len() != before
    }
}

fn fresh(at: Instant, now: Instant) -> bool {
    now.saturating_duration_since(at) < KeyOverlay::KEEP
}

/// Draw the visible keys as keycaps at the right end of `area`, a one-row strip (the footer's
/// hints: see `ui::keys_area`), so they never cover a border or the panes; nothing when there
/// are none. The oldest keys are left out when they do not all fit.
pub fn render(frame: &mut Frame, area: Rect, overlay: &KeyOverlay, now: Instant) {
    let Some(line) = keycaps(&overlay.visible(now), usize::from(area.width)) else { return };
    if area.height == 0 {
        return;
    }
    let width = u16::try_from(line.width()).unwrap_or(u16::MAX).min(area.width);
    let mut rect = Rect::new(area.right() - width, area.y, width, 1);
    // Blank the rest of a hint cut in two (`p/P prefet`), back to the two spaces that separate
    // hints, so no half hint is left beside the keys. Nothing is cleared yet: `blank` sees the hints.
    let blank = |frame: &mut Frame, x: u16| {
        !(area.x..area.right()).contains(&x) || frame.buffer_mut()[(x, rect.y)].symbol() == " "
    };
    let on_separator = blank(frame, rect.x) && blank(frame, rect.x.saturating_add(1));
    while !on_separator
        && rect.x > area.x
        && !(blank(frame, rect.x - 1) && (blank(frame, rect.x.wrapping_sub(2)) || blank(frame, rect.x)))
    {
        rect.x -= 1;
        rect.width += 1;
    }
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(line.right_aligned()), rect);
}

/// ` keys  a   b ` in at most `max` cells, the newest keys kept; `None` if not even one fits.
fn keycaps(labels: &[&str], max: usize) -> Option<Line<'static>> {
    let keycap = Style::new().fg(Color::Black).bg(Color::Gray).add_modifier(Modifier::BOLD);
    let lead = Span::styled(" keys ", Style::new().fg(Color::Gray));
    // Each key as " label " plus a space before it.
    let widths: Vec<usize> = labels.iter().map(|l| Line::from(*l).width() + 3).collect();
    let first = (0..labels.len()).find(|&i| lead.width() + widths[i..].iter().sum::<usize>() <= max)?;
    let mut spans = vec![lead];
    for label in &labels[first..] {
        spans.push(Span::styled(format!(" {label} "), keycap));
        spans.push(Span::raw(" "));
    }
    Some(Line::from(spans))
}

/// A short, readable name for a key: "space", "b", "B", "?", "Tab", "Shift-Tab", "Ctrl-C",
/// "Alt-x", "←", "Enter", "F5".
pub fn key_label(key: &KeyEvent) -> String {
    let mut label = String::new();
    let mods = key.modifiers;
    if mods.contains(KeyModifiers::CONTROL) {
        label.push_str("Ctrl-");
    }
    if mods.contains(KeyModifiers::ALT) {
        label.push_str("Alt-");
    }
    // Shift is already in the character (and in BackTab).
    if mods.contains(KeyModifiers::SHIFT) && !matches!(key.code, KeyCode::Char(_) | KeyCode::BackTab) {
        label.push_str("Shift-");
    }
    match key.code {
        KeyCode::Char(' ') => label.push_str("space"),
        KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => label.extend(c.to_uppercase()),
        KeyCode::Char(c) => label.push(c),
        KeyCode::BackTab => label.push_str("Shift-Tab"),
        KeyCode::Left => label.push('←'),
        KeyCode::Right => label.push('→'),
        KeyCode::Up => label.push('↑'),
        KeyCode::Down => label.push('↓'),
        KeyCode::PageUp => label.push_str("PgUp"),
        KeyCode::PageDown => label.push_str("PgDn"),
        KeyCode::Backspace => label.push_str("Backspace"),
        KeyCode::Delete => label.push_str("Del"),
        KeyCode::Enter => label.push_str("Enter"),
        other => label.push_str(&other.to_string()),
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(bytes: &[u8]) -> (String, Vec<u8>) {
        let mut pending = bytes.to_vec();
        let text = take_complete_utf8(&mut pending);
        (text, pending)
    }

    #[test]
    fn complete_utf8_is_taken_whole() {
        assert_eq!(take("a─b".as_bytes()), ("a─b".to_string(), vec![]));
        assert_eq!(take(b""), (String::new(), vec![]));
    }

    #[test]
    fn an_incomplete_tail_is_kept() {
        let bar = "─".as_bytes(); // e2 94 80
        assert_eq!(take(&[b'a', bar[0]]), ("a".to_string(), vec![bar[0]]));
        assert_eq!(take(&bar[..2]), (String::new(), bar[..2].to_vec()));
        let mut pending = vec![bar[0]];
        assert_eq!(take_complete_utf8(&mut pending), "");
        pending.extend_from_slice(&bar[1..]);
        pending.push(b'b');
        assert_eq!(take_complete_utf8(&mut pending), "─b");
        assert!(pending.is_empty());
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(take(b"a\xffb"), ("a\u{fffd}b".to_string(), vec![]));
        // A sequence cut short by a valid byte is invalid, not incomplete.
        assert_eq!(take(b"\xe2\x94b\xe2"), ("\u{fffd}b".to_string(), vec![0xe2]));
    }

    #[test]
    fn event_lines_are_json_with_microseconds() {
        let mut out = Vec::new();
        write_event(&mut out, Duration::new(3, 4_005), "o", "\u{1b}[1m\"x\"\n").unwrap();
        write_event(&mut out, Duration::from_micros(1), "r", "80x24").unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"[3.000004, "o", "\u001b[1m\"x\"\n"]"#);
        assert_eq!(lines[1], r#"[0.000001, "r", "80x24"]"#);
        let parsed: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(parsed[2], "\u{1b}[1m\"x\"\n");
    }

    #[test]
    fn the_header_starts_with_the_version() {
        let rec = Recorder::new(io::sink(), Vec::new(), 80, 24, "").unwrap();
        assert!(rec.recording().unwrap().error().is_none());
        let header =
            Header { version: 2, width: 80, height: 24, timestamp: 7, env: BTreeMap::new(), title: "" };
        let json = serde_json::to_string(&header).unwrap();
        assert_eq!(json, r#"{"version":2,"width":80,"height":24,"timestamp":7,"env":{}}"#);
    }

    /// Takes the header, then fails.
    struct HeaderOnly(bool);

    impl Write for HeaderOnly {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if std::mem::replace(&mut self.0, true) {
                return Err(io::Error::other("gone"));
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_error_stops_the_recording_but_not_the_output() {
        let mut rec = Recorder::new(HeaderOnly(false), Vec::new(), 80, 24, "").unwrap();
        let recording = rec.recording().unwrap();
        rec.write_all(b"one").unwrap();
        rec.flush().unwrap();
        assert_eq!(recording.error().unwrap().to_string(), "gone");
        assert!(rec.stopped);
        rec.write_all(b" two").unwrap();
        rec.flush().unwrap();
        recording.marker("m");
        assert!(rec.pending.is_empty(), "nothing is kept once stopped");
        assert_eq!(rec.get_ref(), b"one two");
        assert!(rec.recording().is_some(), "the handle stays, with its error");
    }

    #[test]
    fn keycaps_keep_the_newest_keys_that_fit() {
        let text = |labels: &[&str], max| {
            keycaps(labels, max).map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect::<String>())
        };
        assert_eq!(text(&["b", "space"], 80).as_deref(), Some(" keys  b   space  "));
        // " keys " 6 + " space " 7 + 2 spaces = 15: only the newest fits in 15.
        assert_eq!(text(&["b", "space"], 15).as_deref(), Some(" keys  space  "));
        assert_eq!(text(&["Shift-Tab"], 10), None);
        assert_eq!(text(&[], 80), None);
    }

    /// The keys drawn at the right of a `width`-cell strip on row 1 of a 30x3 screen whose row 1
    /// holds footer-like hints; the three rows as text.
    fn over_hints(width: u16, keys: &KeyOverlay, now: Instant) -> Vec<String> {
        use ratatui::Terminal;
        use ratatui::backend::TestBackend;
        let mut terminal = Terminal::new(TestBackend::new(30, 3)).unwrap();
        terminal
            .draw(|f| {
                let row = Line::from("x".repeat(30));
                let hints = Line::from("a b  c d  e fghij  k lmnopqrst");
                f.render_widget(Paragraph::new(vec![row.clone(), hints, row]), f.area());
                render(f, Rect::new(0, 1, width, 1), keys, now);
            })
            .unwrap();
        let buffer = terminal.backend().buffer();
        (0..3).map(|y| (0..30).map(|x| buffer[(x, y)].symbol()).collect()).collect()
    }

    #[test]
    fn the_overlay_stays_in_its_row_and_leaves_no_half_hint() {
        let now = Instant::now();
        let mut keys = KeyOverlay::new();
        for k in ["a", "b", "c"] {
            keys.push(k.to_string(), now);
        }
        // The keys take 18 cells at the right of the strip; right of the strip stays as it was.
        let rows = over_hints(26, &keys, now);
        assert_eq!(rows[0], "x".repeat(30));
        assert_eq!(rows[2], "x".repeat(30));
        // Cut on the separator after `c d`: that hint stays whole.
        assert_eq!(rows[1], "a b  c d keys  a   b   c  qrst");
        assert_eq!(over_hints(27, &keys, now)[1], "a b  c d  keys  a   b   c  rst");
        // Cut inside `c d`: all of it goes.
        assert_eq!(over_hints(25, &keys, now)[1], "a b     keys  a   b   c  pqrst");
        // Gone once the keys are old.
        assert_eq!(over_hints(26, &keys, now + KeyOverlay::KEEP)[1], "a b  c d  e fghij  k lmnopqrst");
    }

    #[test]
    fn passthrough_records_nothing() {
        let mut rec = Recorder::passthrough(Vec::new());
        rec.write_all(b"hi").unwrap();
        rec.flush().unwrap();
        assert!(rec.recording().is_none());
        assert!(rec.pending.is_empty());
        assert_eq!(rec.get_ref(), b"hi");
    }
}
