//! Time to render one full frame with 12 busy consumers at 200x50 (`cargo bench --bench render`).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use warren::app::{App, AppOptions, BrokerInfo, Dispatch, Event, Mode, Msg};

fn busy_app(now: Instant) -> App {
    let opts = AppOptions {
        queue: "warren.tasks".into(),
        delays: (0..12).map(|i| Duration::from_millis(100 * (i + 1))).collect(),
        dispatch: Dispatch { mode: Mode::Fair, prefetch: 1 },
        burst: 10,
        rate: 5,
        keep_history: false,
    };
    let mut app = App::new(opts, now);
    let info = BrokerInfo {
        product: "RabbitMQ".into(),
        version: "3.10.8".into(),
        host: "127.0.0.1".into(),
        port: 5672,
        vhost: "/".into(),
    };
    app.update(Msg::Event(Event::Connected(info)), now);
    let mut id = 0;
    for round in 0..40u64 {
        for c in 0..12 {
            id += 1;
            let ev = |e| Msg::Event(e);
            app.update(ev(Event::Published { id, batch: None }), now);
            app.update(
                ev(Event::Delivered { consumer: c, id, manual_ack: true, redelivered: round % 7 == 0 }),
                now,
            );
            app.update(ev(Event::Started { consumer: c, id, work: Duration::from_secs(1) }), now);
            if round < 39 {
                app.update(ev(Event::Processed { consumer: c, id, acked: true }), now);
            }
        }
        app.update(Msg::Tick, now + Duration::from_secs(round + 1));
    }
    app
}

fn render_frame(c: &mut Criterion) {
    let now = Instant::now();
    let app = busy_app(now);
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("test terminal");
    c.bench_function("render full frame, 12 consumers, 200x50", |b| {
        b.iter(|| {
            terminal.draw(|f| warren::ui::render(f, &app, now)).expect("draw");
        })
    });
}

criterion_group!(benches, render_frame);
criterion_main!(benches);
