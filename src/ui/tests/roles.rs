//! Consumer priorities and single active consumer on the lanes, at the projector sizes.

use std::time::Instant;

use super::*;
use crate::app::{AppOptions, Event, Mode};

fn app_with(priorities: &[i32], single_active: bool, t0: Instant) -> App {
    let opts = AppOptions {
        priorities: priorities.to_vec(),
        single_active,
        ..crate::app::testing::options(&[1000, 1000, 1000], Mode::Fair)
    };
    let mut app = App::new(opts, t0);
    connect(&mut app, t0);
    app
}

/// The first line of consumer `name`'s lane.
fn lane_line(screen: &str, name: &str) -> String {
    let head = format!("{name} ");
    let lane = screen.lines().find(|l| l.chars().skip(1).collect::<String>().starts_with(&head));
    lane.unwrap_or("").to_string()
}

#[test]
fn a_lane_says_its_priority_at_every_size() {
    let t0 = Instant::now();
    let app = app_with(&[10, 0, 0], false, t0);
    for (w, h) in [(80, 24), (100, 30), (160, 45)] {
        let screen = text(draw(&app, t0, w, h).backend().buffer());
        assert!(lane_line(&screen, "C1").contains("C1 1.0s prio 10"), "{w}x{h}:\n{screen}");
        assert!(!lane_line(&screen, "C2").contains("prio"), "the default says nothing:\n{screen}");
    }
}

#[test]
fn lanes_say_active_and_standby_and_the_hand_over_shows() {
    let t0 = Instant::now();
    let mut app = app_with(&[], true, t0);
    for (w, h) in [(80, 24), (100, 30), (160, 45)] {
        let screen = text(draw(&app, t0, w, h).backend().buffer());
        assert!(lane_line(&screen, "C1").contains("active idle"), "{w}x{h}:\n{screen}");
        assert!(lane_line(&screen, "C2").contains("standby (next)"), "{w}x{h}:\n{screen}");
        let c3 = lane_line(&screen, "C3");
        assert!(c3.contains("standby") && !c3.contains("next"), "{w}x{h}:\n{screen}");
    }
    app.kill_consumer(0, t0);
    ev(&mut app, t0, Event::ConsumerGone { consumer: 0, killed: true });
    let screen = text(draw(&app, t0, 80, 24).backend().buffer());
    assert!(screen.contains("C1 was killed: C2 takes over as the active consumer"), "{screen}");
    assert!(lane_line(&screen, "C2").contains("active idle"), "{screen}");
    assert!(lane_line(&screen, "C3").contains("standby (next)"), "{screen}");
}
