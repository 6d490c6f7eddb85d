//! The terminal: set-up and restore, and the one event loop that ties keys, workload events
//! and frames together.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ratatui::crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event as TermEvent, EventStream, MouseButton, MouseEventKind,
};
use ratatui::crossterm::execute;
use tokio::sync::mpsc;

use crate::app::player::Player;
use crate::app::{Action, App, Command, Msg};
use crate::cli::Config;
use crate::endpoint::Endpoint;
use crate::headless::{app_options, workload_config};
use crate::record::{self, KeyOverlay, Recorder};
use crate::scenario::Scenario;
use crate::signal::{Signal, Signals};
use crate::workload::{EVENT_CAPACITY, Engine};
use crate::{keymap, play, ui};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};

/// At most this many frames a second; nothing is drawn when nothing changed.
const FRAME: Duration = Duration::from_millis(33);

/// Where the screen goes: stdout, through a recorder that copies every frame into an
/// asciicast file with --record. Opened once, so a restarted lesson goes on in the same file.
#[derive(Clone)]
pub struct Output(Arc<Mutex<Recorder<std::io::Stdout>>>);

impl Output {
    pub fn open(record: Option<&std::path::Path>, title: &str) -> Result<Output, String> {
        let recorder = match record {
            Some(path) => {
                let (w, h) = ratatui::crossterm::terminal::size().unwrap_or((80, 24));
                let title = if title.is_empty() { "warren".to_string() } else { format!("warren: {title}") };
                Recorder::create(path, std::io::stdout(), w, h, &title)
                    .map_err(|e| format!("cannot record to {}: {e}", path.display()))?
            }
            None => Recorder::passthrough(std::io::stdout()),
        };
        Ok(Output(Arc::new(Mutex::new(recorder))))
    }

    fn recording(&self) -> Option<record::Recording> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).recording()
    }
}

impl std::io::Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// How a TUI session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Quit,
    /// The presenter asked to play the scenario again from the start.
    Restart,
    /// A signal ended it (the terminal was restored first); exit with its code.
    Signal(Signal),
}

/// The live TUI; with a scenario, its timeline plays and its captions show.
pub async fn run(cfg: Config, scenario: Option<Scenario>, output: &Output) -> Result<Exit, String> {
    // crossterm's EventStream panics without a terminal: check first and say what to do.
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err("no terminal here (stdin/stdout is not a TTY): run warren in a terminal, \
                    or use --headless --publish N for scripts and CI"
            .into());
    }
    // Taken over before connecting: a signal while connecting ends the run at once (nothing
    // to restore yet), and one later is seen by the loop below.
    let mut signals = Signals::new();
    // Connect before touching the terminal, so a failure prints as one plain line.
    let (tx, mut events) = mpsc::channel(EVENT_CAPACITY);
    let connect = async {
        let endpoint = Endpoint::resolve(&cfg.target).await?;
        match Engine::start(workload_config(&cfg, &endpoint), tx).await {
            Ok(started) => Ok((endpoint, started)),
            Err(e) => {
                endpoint.stop().await;
                Err(e)
            }
        }
    };
    let (mut endpoint, (engine, info, notes)) = tokio::select! {
        connected = connect => connected?,
        s = signals.recv() => return Ok(Exit::Signal(s)),
    };
    let now = Instant::now();
    let mut app = App::new(app_options(&cfg, false), now);
    app.update(Msg::Event(crate::app::Event::Connected(info)), now);
    if notes.purged > 0 {
        let text =
            format!("purged {} leftover messages of an earlier run from '{}'", notes.purged, cfg.queue);
        app.update(Msg::Event(crate::app::Event::Error(text)), now);
    }

    if let Some(why) = scenario.as_ref().and_then(|s| play::restart_refused(s, &app)) {
        drop(events);
        engine.shutdown().await;
        endpoint.stop().await;
        return Err(why);
    }
    let mut player = scenario.as_ref().map(|s| Player::new(s, Instant::now()));
    let title = scenario.as_ref().map(|s| s.title.clone()).unwrap_or_default();

    let mut recording = output.recording();
    // crossterm drops every colour when NO_COLOR is set; the theme already decided (NO_COLOR
    // means mono unless --theme says otherwise), so an explicit --theme must get its colours.
    ratatui::crossterm::style::force_color_output(true);
    // Raw mode, the alternate screen and the restoring panic hook come from ratatui::init; the
    // terminal that draws is ours, over the recorder.
    drop(ratatui::init());
    let mut terminal = match Terminal::new(CrosstermBackend::new(output.clone())) {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            drop(events);
            engine.shutdown().await;
            endpoint.stop().await;
            return Err(format!("cannot use the terminal: {e}"));
        }
    };
    let mut shown_keys = KeyOverlay::new();
    let mut exit = Exit::Quit;
    install_mouse_restoring_hook();
    let _ = execute!(std::io::stdout(), EnableMouseCapture);

    let mut keys = EventStream::new();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut buf = Vec::with_capacity(1024);
    let mut term_error = None;
    let mut ended = None;

    while !app.quitting {
        tokio::select! {
            key = keys.next() => match key {
                Some(Ok(ev)) => {
                    if let TermEvent::Resize(w, h) = ev
                        && let Some(rec) = &recording
                    {
                        rec.resize(w, h);
                    }
                    if cfg.show_keys
                        && let TermEvent::Key(key) = &ev
                        && key.kind == KeyEventKind::Press
                    {
                        shown_keys.push(record::key_label(key), Instant::now());
                        app.dirty = true;
                    }
                    let size = terminal.size().unwrap_or_default();
                    let unknown_key = unknown_key(&ev);
                    if let Some(action) = action_for(&app, ev, size.into()) {
                        let now = Instant::now();
                        match (action, &mut player) {
                            (Action::PlayStep, Some(p)) if !app.show_help => p.step_ahead(now),
                            (Action::PlayRestart, Some(_)) if !app.show_help => {
                                exit = Exit::Restart;
                                app.quitting = true;
                            }
                            _ => {}
                        }
                        if let Some(cmd) = app.update(Msg::Action(action), now) {
                            route(cmd, &engine, &mut endpoint, &mut app, cfg.durable).await;
                        }
                        // Enter pauses the App; the lesson clock stops with it, to the frame.
                        if let Some(p) = &mut player {
                            p.set_paused(app.paused(), now);
                        }
                    } else if let Some(label) = unknown_key {
                        // A key that means nothing says so, rather than nothing at all; with the
                        // help open, any key closes it, as promised there.
                        if app.show_help {
                            app.show_help = false;
                        } else {
                            app.note(format!("{label} does nothing here: ? lists the keys"), Instant::now());
                        }
                        app.dirty = true;
                    } else {
                        app.dirty = true; // resize and the like: redraw
                    }
                }
                Some(Err(e)) => {
                    term_error = Some(format!("terminal input failed: {e}"));
                    break;
                }
                None => break,
            },
            n = events.recv_many(&mut buf, 256) => {
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                for ev in buf.drain(..).flatten() {
                    app.update(Msg::Event(ev), now);
                }
            }
            _ = frame.tick() => {
                let now = Instant::now();
                app.update(Msg::Tick, now);
                if let Some(p) = &mut player {
                    for cmd in p.tick(&mut app, now, false) {
                        route(cmd, &engine, &mut endpoint, &mut app, cfg.durable).await;
                    }
                    let lesson = Some(play::lesson(&title, p));
                    if app.lesson != lesson {
                        let step = lesson.as_ref().map(|l| l.step);
                        if let (Some(rec), Some((done, all))) = (&recording, step)
                            && app.lesson.as_ref().map(|l| l.step) != step
                        {
                            rec.marker(&format!("step {done}/{all}"));
                        }
                        app.lesson = lesson;
                        app.dirty = true;
                    }
                }
                if shown_keys.prune(now) {
                    app.dirty = true;
                }
                if let Some(e) = recording.as_ref().and_then(|r| r.error()) {
                    app.update(Msg::Event(crate::app::Event::Error(format!("recording stopped: {e}"))), now);
                    recording = None;
                }
                if app.dirty {
                    let drawn = terminal.draw(|f| {
                        ui::render(f, &app, now);
                        // On the footer's hints: over no border, and `? help  q quit` stays.
                        record::render(f, ui::keys_area(f.area(), &app), &shown_keys, now);
                        // Last, over the key overlay too, so the screen and the recording agree.
                        ui::apply_theme(f.buffer_mut(), cfg.theme);
                    });
                    if let Err(e) = drawn {
                        term_error = Some(format!("drawing failed: {e}"));
                        break;
                    }
                    app.dirty = false;
                }
            }
            s = signals.recv() => {
                ended = Some(s);
                break;
            }
        }
    }
    if let Some(s) = ended {
        // The terminal first: closing connections to a stalled broker can take seconds, and
        // the user (or the closing window) asked to stop now. A second signal ends at once.
        drop(terminal);
        leave_clean();
        ratatui::restore();
        signals.exit_on_next(s);
        drop(events);
        engine.shutdown().await;
        endpoint.stop().await;
        return Ok(Exit::Signal(s));
    }
    // Consumers close their channels while the screen still shows them, then restore.
    drop(events);
    engine.shutdown().await;
    endpoint.stop().await;
    // Closing the terminal writes the recording's last frame and closes the file.
    drop(terminal);
    leave_clean();
    ratatui::restore();
    term_error.map_or(Ok(exit), Err)
}

/// A command to the workload, or a broker restart, which the loop does itself: it owns the
/// embedded broker.
async fn route(cmd: Command, engine: &Engine, endpoint: &mut Endpoint, app: &mut App, durable: bool) {
    match cmd {
        Command::RestartBroker => crate::headless::restart_broker(endpoint, app, durable).await,
        cmd => engine.send(cmd),
    }
}

/// The label of a plain key press (a letter, a digit, F1...) that may turn out to mean nothing.
fn unknown_key(ev: &TermEvent) -> Option<String> {
    let TermEvent::Key(key) = ev else { return None };
    let chord = key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    let plain = matches!(key.code, KeyCode::Char(_) | KeyCode::F(_));
    (key.kind == KeyEventKind::Press && plain && !chord).then(|| record::key_label(key))
}

fn action_for(app: &App, ev: TermEvent, area: ratatui::layout::Rect) -> Option<Action> {
    match ev {
        TermEvent::Key(key) => keymap::action_for(key),
        TermEvent::Mouse(m) if m.kind == MouseEventKind::Down(MouseButton::Left) => {
            ui::consumer_at(area, app, m.column, m.row).map(Action::SelectVisible)
        }
        _ => None,
    }
}

/// ratatui's hook restores the screen on panic; mouse capture must be switched off and the
/// alternate screen blanked too.
fn install_mouse_restoring_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave_clean();
        previous(info);
    }));
}

/// Mouse capture off, and the alternate screen blank with the cursor home and shown, just before
/// ratatui leaves it. Why blank: a terminal that was resized while warren ran may resize its
/// alternate screen back to the saved normal screen's size on the way out, and tmux does so by
/// pushing the alternate screen's top lines into the normal screen (12 lines of the UI were left
/// above the prompt after growing 80x24 to 160x45). Blank lines with the cursor at the top are
/// dropped instead, whatever size the window had.
fn leave_clean() {
    use ratatui::crossterm::{cursor, style, terminal};
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        style::ResetColor,
        terminal::Clear(terminal::ClearType::All),
        cursor::MoveTo(0, 0),
        cursor::Show,
    );
}
