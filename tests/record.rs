//! The screencast recorder: a real ratatui terminal over a `Recorder` produces a valid asciicast v2
//! file holding exactly what the terminal was sent, and a broken cast file never breaks the
//! terminal. The key overlay and its labels.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::{CrosstermBackend, TestBackend};
use ratatui::layout::Rect;
use ratatui::widgets::Paragraph;
use ratatui::{Terminal, TerminalOptions, Viewport};
use serde_json::Value;
use warren::record::{self, KeyOverlay, Recorder, key_label};

/// The terminal side: everything written, and how many flushes had something to flush.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<ScreenState>>);

#[derive(Default)]
struct ScreenState {
    bytes: Vec<u8>,
    unflushed: bool,
    flushes_with_data: usize,
}

impl Write for Screen {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.0.lock().unwrap();
        s.bytes.extend_from_slice(buf);
        s.unflushed |= !buf.is_empty();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut s = self.0.lock().unwrap();
        if std::mem::take(&mut s.unflushed) {
            s.flushes_with_data += 1;
        }
        Ok(())
    }
}

/// An in-memory cast file.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// A cast file that takes `room` bytes, then fails every write; counts the calls it gets.
#[derive(Clone)]
struct Full {
    room: Arc<Mutex<usize>>,
    calls: Arc<Mutex<usize>>,
}

impl Full {
    fn new(room: usize) -> Self {
        Full { room: Arc::new(Mutex::new(room)), calls: Arc::default() }
    }
}

impl Write for Full {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        *self.calls.lock().unwrap() += 1;
        let mut room = self.room.lock().unwrap();
        if *room == 0 {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        let n = buf.len().min(*room);
        *room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn cast_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("record-{name}-{}.cast", std::process::id()))
}

/// The header and the events, each event checked to be `[number, "o"|"r"|"m", string]`.
fn parse(cast: &str) -> (Value, Vec<(f64, String, String)>) {
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().expect("a header line")).unwrap();
    assert!(header.is_object(), "{header}");
    let events = lines
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let parts = event.as_array().unwrap_or_else(|| panic!("not an array: {line}"));
            assert_eq!(parts.len(), 3, "{line}");
            let time = parts[0].as_f64().unwrap_or_else(|| panic!("no time: {line}"));
            let code = parts[1].as_str().unwrap().to_string();
            assert!(["o", "r", "m"].contains(&code.as_str()), "{line}");
            (time, code, parts[2].as_str().unwrap_or_else(|| panic!("no data: {line}")).to_string())
        })
        .collect();
    (header, events)
}

fn outputs(events: &[(f64, String, String)]) -> Vec<&str> {
    events.iter().filter(|(_, code, _)| code == "o").map(|(_, _, data)| data.as_str()).collect()
}

#[test]
fn a_terminal_session_becomes_a_valid_cast_of_exactly_what_was_sent() {
    let path = cast_path("session");
    let screen = Screen::default();
    let recorder = Recorder::create(&path, screen.clone(), 40, 5, "warren demo").unwrap();
    let recording = recorder.recording().unwrap();
    let fixed = TerminalOptions { viewport: Viewport::Fixed(Rect::new(0, 0, 40, 5)) };
    let mut terminal = Terminal::with_options(CrosstermBackend::new(recorder), fixed).unwrap();

    terminal.draw(|f| f.render_widget(Paragraph::new("hello-warren ─✓"), f.area())).unwrap();
    recording.marker("step 2");
    recording.resize(50, 6);
    terminal.resize(Rect::new(0, 0, 50, 6)).unwrap();
    std::thread::sleep(Duration::from_millis(2));
    terminal.draw(|f| f.render_widget(Paragraph::new("second-frame"), f.area())).unwrap();
    drop(terminal);

    let (header, events) = parse(&std::fs::read_to_string(&path).unwrap());
    let _ = std::fs::remove_file(&path);
    assert_eq!(header["version"], 2);
    assert_eq!(header["width"], 40);
    assert_eq!(header["height"], 5);
    assert_eq!(header["title"], "warren demo");
    assert!(header["timestamp"].as_u64().unwrap() > 1_600_000_000, "{header}");
    assert!(header["env"].is_object(), "{header}");

    let times: Vec<f64> = events.iter().map(|e| e.0).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(times[0] >= 0.0 && times[times.len() - 1] >= 0.002, "{times:?}");
    assert!(events.iter().any(|e| e.1 == "m" && e.2 == "step 2"), "{events:?}");
    assert!(events.iter().any(|e| e.1 == "r" && e.2 == "50x6"), "{events:?}");

    let screen = screen.0.lock().unwrap();
    let output = outputs(&events);
    assert_eq!(output.len(), screen.flushes_with_data, "one event per flush: {output:?}");
    let all = output.concat();
    assert_eq!(all.as_bytes(), &screen.bytes[..], "the cast holds exactly what the terminal got");
    // Frames are diffs: against a blank screen, blanks are not sent.
    let first = all.find("hello-warren").expect("first frame");
    assert!(all[first..].contains("─✓"), "{all:?}");
    let second = all.find("second-frame").expect("second frame");
    assert!(first < second);
    // The marker and the resize come between the two frames.
    let second_frame = events.iter().position(|e| e.2.contains("second-frame")).unwrap();
    let marker = events.iter().position(|e| e.1 == "m").unwrap();
    assert!(marker < second_frame);
}

#[test]
fn utf8_split_across_flushes_stays_intact() {
    let cast = Shared::default();
    let mut recorder = Recorder::new(cast.clone(), Vec::new(), 10, 2, "").unwrap();
    let bar = "─".as_bytes();
    recorder.write_all(b"a").unwrap();
    recorder.write_all(&bar[..1]).unwrap();
    recorder.flush().unwrap();
    recorder.write_all(&bar[1..2]).unwrap();
    recorder.flush().unwrap(); // nothing complete: no event
    recorder.write_all(&bar[2..]).unwrap();
    recorder.write_all(b"b").unwrap();
    recorder.flush().unwrap();
    for byte in "═".bytes() {
        recorder.write_all(&[byte]).unwrap();
        recorder.flush().unwrap();
    }
    assert_eq!(recorder.get_ref(), "a─b═".as_bytes());

    let (_, events) = parse(&cast.text());
    assert_eq!(outputs(&events), ["a", "─b", "═"]);
}

#[test]
fn a_cast_file_in_a_missing_directory_is_an_error() {
    let path = cast_path("missing").join("no-such-dir").join("x.cast");
    let err = Recorder::create(&path, Vec::new(), 80, 24, "").err().expect("an error");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

const FRAMES: [&str; 4] = ["first frame", "second frame", "third frame", "fourth frame"];

/// Draw [`FRAMES`] on a 40x5 terminal over `recorder`; `between` runs after the third.
fn draw_frames(recorder: Recorder<Screen>, between: impl FnOnce()) {
    let fixed = TerminalOptions { viewport: Viewport::Fixed(Rect::new(0, 0, 40, 5)) };
    let mut terminal = Terminal::with_options(CrosstermBackend::new(recorder), fixed).unwrap();
    let mut draw = |text: &str| terminal.draw(|f| f.render_widget(Paragraph::new(text), f.area())).map(drop);
    FRAMES[..3].iter().for_each(|text| draw(text).unwrap());
    between();
    draw(FRAMES[3]).unwrap();
}

#[test]
fn a_failing_cast_file_never_breaks_the_terminal() {
    // Room for the header and a little more: the first frame fails half-way.
    let header = Shared::default();
    drop(Recorder::new(header.clone(), Vec::new(), 40, 5, "").unwrap());
    let full = Full::new(header.text().len() + 10);
    let screen = Screen::default();
    let recorder = Recorder::new(full.clone(), screen.clone(), 40, 5, "").unwrap();
    let recording = recorder.recording().unwrap();
    assert!(recording.error().is_none());
    let calls = Arc::new(Mutex::new(0));
    draw_frames(recorder, || {
        let error = recording.error().expect("the error is kept");
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert_eq!(error.to_string(), "disk full");
        *calls.lock().unwrap() = *full.calls.lock().unwrap();
        recording.marker("after");
        recording.resize(10, 10);
    });
    // Recording stopped at the first error: no more writes to the cast file.
    assert_eq!(*full.calls.lock().unwrap(), *calls.lock().unwrap());

    // The terminal got exactly what it gets without recording.
    let plain = Screen::default();
    draw_frames(Recorder::passthrough(plain.clone()), || {});
    let shown = &screen.0.lock().unwrap().bytes;
    assert_eq!(shown, &plain.0.lock().unwrap().bytes);
    assert!(String::from_utf8_lossy(shown).contains("fou"), "the last frame was drawn");
}

#[test]
fn a_cast_file_failing_at_once_is_an_error_at_creation() {
    let err = Recorder::new(Full::new(0), Vec::new(), 80, 24, "").err().expect("an error");
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
}

#[test]
fn keys_expire_and_at_most_five_are_shown() {
    let t0 = Instant::now();
    let mut overlay = KeyOverlay::new();
    assert!(overlay.visible(t0).is_empty());
    for (i, key) in ["a", "b", "c", "d", "e", "f", "g"].into_iter().enumerate() {
        overlay.push(key.to_string(), t0 + Duration::from_millis(100 * i as u64));
    }
    let t = t0 + Duration::from_millis(600);
    assert_eq!(overlay.visible(t), ["c", "d", "e", "f", "g"]);
    // "c" was pressed at 200 ms: gone at 1700 ms; "d" (300 ms) still there.
    let t = t0 + Duration::from_millis(1700);
    assert_eq!(overlay.visible(t), ["d", "e", "f", "g"]);
    assert!(overlay.prune(t), "something expired");
    assert!(!overlay.prune(t), "nothing more expired");
    assert_eq!(overlay.visible(t), ["d", "e", "f", "g"]);
    let t = t0 + Duration::from_millis(2200);
    assert!(overlay.visible(t).is_empty());
    assert!(overlay.prune(t));
    assert!(!overlay.prune(t));
}

/// The overlay drawn in the last row of a `width` x `height` screen, as warren does on the
/// footer line.
fn draw_overlay(overlay: &KeyOverlay, now: Instant, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| {
            let area = f.area();
            let strip = ratatui::layout::Rect { y: area.bottom() - 1, height: 1, ..area };
            record::render(f, strip, overlay, now);
        })
        .unwrap();
    let buffer = terminal.backend().buffer();
    (0..height).map(|y| (0..width).map(|x| buffer[(x, y)].symbol()).collect::<String>()).collect()
}

#[test]
fn the_overlay_is_one_row_at_the_right_of_its_strip() {
    let now = Instant::now();
    let mut overlay = KeyOverlay::new();
    let empty = draw_overlay(&overlay, now, 30, 3);
    assert!(empty.iter().all(|line| line.trim().is_empty()), "{empty:?}");

    overlay.push("space".into(), now);
    overlay.push("Ctrl-C".into(), now);
    let lines = draw_overlay(&overlay, now, 30, 3);
    assert!(lines[..2].iter().all(|line| line.trim().is_empty()), "only its row: {lines:?}");
    assert_eq!(lines[2], "        keys  space   Ctrl-C  ");

    // Too narrow for both: the newest key only.
    let lines = draw_overlay(&overlay, now, 16, 1);
    assert_eq!(lines[0], "  keys  Ctrl-C  ");
    // Expired: nothing.
    let later = draw_overlay(&overlay, now + KeyOverlay::KEEP, 30, 3);
    assert!(later.iter().all(|line| line.trim().is_empty()), "{later:?}");
}

#[test]
fn keys_have_short_labels() {
    let key = |code, modifiers| KeyEvent::new(code, modifiers);
    let none = KeyModifiers::NONE;
    let table = [
        (key(KeyCode::Char(' '), none), "space"),
        (key(KeyCode::Char('b'), none), "b"),
        (key(KeyCode::Char('P'), KeyModifiers::SHIFT), "P"),
        (key(KeyCode::Char('?'), KeyModifiers::SHIFT), "?"),
        (key(KeyCode::Char('c'), KeyModifiers::CONTROL), "Ctrl-C"),
        (key(KeyCode::Char('x'), KeyModifiers::ALT), "Alt-x"),
        (key(KeyCode::Tab, none), "Tab"),
        (key(KeyCode::BackTab, KeyModifiers::SHIFT), "Shift-Tab"),
        (key(KeyCode::BackTab, none), "Shift-Tab"),
        (key(KeyCode::Left, none), "←"),
        (key(KeyCode::Right, none), "→"),
        (key(KeyCode::Up, none), "↑"),
        (key(KeyCode::Down, KeyModifiers::SHIFT), "Shift-↓"),
        (key(KeyCode::Enter, none), "Enter"),
        (key(KeyCode::Esc, none), "Esc"),
        (key(KeyCode::PageDown, none), "PgDn"),
        (key(KeyCode::F(5), none), "F5"),
    ];
    for (event, label) in table {
        assert_eq!(key_label(&event), label, "{event:?}");
    }
}
