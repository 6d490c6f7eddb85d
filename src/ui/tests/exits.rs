//! Tasks that leave the queue otherwise than by being done, on screen at 80x24, 100x30 and
//! 160x45: a poison task's count of returns as it cycles (`↻3#3`), the dead-letter line with
//! each id's reason, the refused ids on the producer line, and the sum that still holds.

use super::*;
use crate::policy::{DeathReason, Overflow, Policy, QueueType};

fn app_with(policy: Policy, t0: Instant) -> App {
    let opts = AppOptions {
        queue: "warren.lesson".into(),
        dispatch: Dispatch { mode: Mode::Fair, prefetch: 1 },
        policy,
        ..crate::app::testing::options(&[1000, 1600], Mode::Fair)
    };
    let mut app = App::new(opts, t0);
    connect(&mut app, t0);
    app
}

fn publish(app: &mut App, t0: Instant, n: u64) {
    let Some(crate::app::Command::Publish { batch, .. }) = app.update(Msg::Action(Action::PublishBurst), t0)
    else {
        panic!("a burst is a publish");
    };
    for id in 1..=n {
        ev(app, t0, Event::Published { id, batch: Some(batch) });
    }
}

fn deliver(app: &mut App, now: Instant, consumer: ConsumerId, id: TaskId, again: bool) {
    ev(app, now, Event::Delivered { consumer, id, manual_ack: true, redelivered: again });
    start(app, now, consumer, id);
}

#[test]
fn a_poison_task_shows_its_returns_and_then_its_death() {
    let t0 = Instant::now();
    let poison = Policy {
        queue_type: QueueType::Quorum,
        delivery_limit: Some(3),
        poison: vec![3],
        ..Policy::default()
    };
    let mut app = app_with(poison, t0);
    publish(&mut app, t0, 6);
    deliver(&mut app, t0, 1, 2, false);
    // #3 fails three times on C1 and is taken again each time.
    for n in 0..3 {
        deliver(&mut app, at(t0, f64::from(n)), 0, 3, n > 0);
        ev(&mut app, at(t0, f64::from(n) + 0.9), Event::Requeued { consumer: 0, ids: vec![3] });
    }
    deliver(&mut app, at(t0, 3.0), 0, 3, true);
    for (w, h) in [(80, 24), (100, 30), (160, 45)] {
        let screen = text(draw(&app, at(t0, 3.2), w, h).backend().buffer());
        assert!(screen.contains("▶↻3#3"), "{w}x{h}: the returns in hand\n{screen}");
        assert!(screen.contains("Dead      0 in warren.lesson.dead (none yet)"), "{w}x{h}\n{screen}");
        assert!(screen.contains("dead 0 = published 6 ✓"), "{w}x{h}\n{screen}");
    }
    ev(&mut app, at(t0, 3.9), Event::Requeued { consumer: 0, ids: vec![3] });
    let screen = text(draw(&app, at(t0, 3.95), 80, 24).backend().buffer());
    assert!(screen.contains("ready 5: #1 ↻4#3 #4 #5 #6"), "{screen}");
    ev(&mut app, at(t0, 3.95), Event::DeadLettered { id: 3, reason: DeathReason::DeliveryLimit });
    for (w, h) in [(80, 24), (100, 30), (160, 45)] {
        let screen = text(draw(&app, at(t0, 4.0), w, h).backend().buffer());
        assert!(screen.contains("Dead      1: #3 delivery_limit"), "{w}x{h}\n{screen}");
        assert!(
            screen.contains("where: ready 4 + waiting 0 + in hand 1 + done 0 + dead 1 = published 6 ✓"),
            "{w}x{h}\n{screen}"
        );
        assert!(screen.contains("+1 dead"), "{w}x{h}: the batch line counts it\n{screen}");
    }
}

#[test]
fn refused_publishes_are_on_the_producer_line_in_id_order() {
    let t0 = Instant::now();
    let capped = Policy { max_length: Some(3), overflow: Overflow::RejectPublish, ..Policy::default() };
    let mut app = app_with(capped, t0);
    publish(&mut app, t0, 10);
    for id in [7, 6, 10, 8, 9] {
        ev(&mut app, t0, Event::Refused { id });
    }
    for (w, h) in [(80, 24), (100, 30), (160, 45)] {
        let screen = text(draw(&app, t0, w, h).backend().buffer());
        assert!(screen.contains("confirmed 0 · refused 5: #6 #7 #8 #9 #10"), "{w}x{h}\n{screen}");
        assert!(screen.contains("ready 5 of max 3: #1"), "{w}x{h}\n{screen}");
        assert!(screen.contains("done 0 + refused 5 = published 10 ✓"), "{w}x{h}\n{screen}");
        assert!(!screen.contains("Dead "), "no dead-letter queue under reject-publish\n{screen}");
    }
}
