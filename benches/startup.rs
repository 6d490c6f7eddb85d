//! Start-up to the first drawn frame with the embedded broker (`cargo bench --bench startup`):
//! the TUI's own path (start the broker, connect, declare, build the App, render a frame into
//! an off-screen 160x45 terminal), timed from a cold start of each piece, 20 times.

use std::time::{Duration, Instant};

use clap::Parser;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;
use warren::app::{App, Event, Msg};
use warren::cli::Cli;
use warren::endpoint::Endpoint;
use warren::headless::{app_options, workload_config};
use warren::workload::{EVENT_CAPACITY, Engine};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut times: Vec<Duration> = (0..20).map(|_| rt.block_on(first_frame())).collect();
    times.sort();
    println!(
        "start-up to first frame, embedded broker: median {:.1} ms, worst {:.1} ms (20 runs)",
        times[10].as_secs_f64() * 1e3,
        times[19].as_secs_f64() * 1e3
    );
}

async fn first_frame() -> Duration {
    let t0 = Instant::now();
    let cfg = Cli::try_parse_from(["warren", "--broker", "embedded"]).unwrap().into_config().unwrap();
    let endpoint = Endpoint::resolve(&cfg.target).await.expect("embedded broker");
    let (tx, events) = mpsc::channel(EVENT_CAPACITY);
    let (engine, info, _) = Engine::start(workload_config(&cfg, &endpoint), tx).await.expect("engine");
    let now = Instant::now();
    let mut app = App::new(app_options(&cfg, false), now);
    app.update(Msg::Event(Event::Connected(info)), now);
    let mut terminal = Terminal::new(TestBackend::new(160, 45)).unwrap();
    terminal.draw(|f| warren::ui::render(f, &app, now)).unwrap();
    let took = t0.elapsed();
    drop(events);
    engine.shutdown().await;
    endpoint.stop().await;
    took
}
