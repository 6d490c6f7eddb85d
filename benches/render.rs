//! Time to render one full frame of the flow view (`cargo bench --bench render`): 24 busy
//! consumers (each with a task in hand and a window of waiting ids) and a 200-task queue, at
//! 80x24, 160x45 and 200x60. The goal is under 1 ms a frame at each size.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use warren::app::{App, AppOptions, BrokerInfo, Dispatch, Event, Mode, Msg};

const CONSUMERS: usize = 24;
/// Tasks left ready at the broker.
const QUEUED: u64 = 200;

fn busy_app(now: Instant) -> App {
    let opts = AppOptions {
        queue: "warren.tasks".into(),
        delays: (0..CONSUMERS as u64).map(|i| Duration::from_millis(100 * (i + 1))).collect(),
        dispatch: Dispatch { mode: Mode::Fair, prefetch: 3 },
        burst: 10,
        rate: 5,
        keep_history: false,
        policy: warren::policy::Policy::default(),
        priorities: Vec::new(),
        single_active: false,
    };
    let mut app = App::new(opts, now);
    let info = BrokerInfo {
        product: "RabbitMQ".into(),
        version: "3.10.8".into(),
        host: "127.0.0.1".into(),
        port: 5672,
        vhost: "/".into(),
    };
    let ev = |app: &mut App, e| app.update(Msg::Event(e), now);
    ev(&mut app, Event::Connected(info));
    for consumer in 0..CONSUMERS {
        ev(&mut app, Event::ConsumerReady { consumer });
    }
    let mut id = 0;
    // A history of finished tasks (the done trails and the sparklines), then each consumer with
    // one task in hand and two waiting, then the queue.
    for round in 0..20u64 {
        for c in 0..CONSUMERS {
            id += 1;
            ev(&mut app, Event::Published { id, batch: None });
            ev(&mut app, Event::Delivered { consumer: c, id, manual_ack: true, redelivered: round % 7 == 0 });
            ev(&mut app, Event::Started { consumer: c, id, work: Duration::from_secs(1) });
            ev(&mut app, Event::Processed { consumer: c, id, acked: true });
        }
        app.update(Msg::Tick, now + Duration::from_secs(round + 1));
    }
    for c in 0..CONSUMERS {
        for k in 0..3 {
            id += 1;
            ev(&mut app, Event::Published { id, batch: None });
            ev(&mut app, Event::Delivered { consumer: c, id, manual_ack: true, redelivered: false });
            if k == 0 {
                ev(&mut app, Event::Started { consumer: c, id, work: Duration::from_secs(1) });
            }
        }
    }
    for _ in 0..QUEUED {
        id += 1;
        ev(&mut app, Event::Published { id, batch: None });
    }
    app
}

fn render_frame(c: &mut Criterion) {
    let now = Instant::now();
    let app = busy_app(now);
    for (w, h) in [(80, 24), (160, 45), (200, 60)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
        let name = format!("flow view, {CONSUMERS} consumers, {QUEUED} queued, {w}x{h}");
        c.bench_function(&name, |b| {
            b.iter(|| {
                terminal
                    .draw(|f| warren::ui::render(f, &app, now + Duration::from_millis(500)))
                    .expect("draw");
            })
        });
    }
}

criterion_group!(benches, render_frame);
criterion_main!(benches);
