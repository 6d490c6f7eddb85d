//! The flow view, the main screen, at the sizes that matter.

use super::*;

#[test]
fn demo_state_adds_up() {
    // The snapshots below only mean something if the state is the one described.
    let (app, _) = demo();
    let t = app.ledger.totals();
    assert_eq!((t.published, t.done, t.lost, t.backlog, t.in_process), (13, 5, 2, 4, 2));
    assert_eq!(t.accounted(), t.published);
    assert_eq!(app.selected, 0);
}

#[test]
fn snapshot_160x45() {
    let (app, now) = demo();
    insta::assert_snapshot!("demo_160x45", draw(&app, now, 160, 45).backend());
}

#[test]
fn snapshot_100x30() {
    let (app, now) = demo();
    insta::assert_snapshot!("demo_100x30", draw(&app, now, 100, 30).backend());
}

#[test]
fn snapshot_help_overlay() {
    let (mut app, now) = demo();
    app.update(Msg::Action(Action::ToggleHelp), now);
    assert!(app.show_help);
    let terminal = draw(&app, now, 100, 30);
    let screen = text(terminal.backend().buffer());
    for (key, what) in crate::keymap::HELP {
        assert!(screen.contains(what), "help lacks {key}: {what}");
    }
    insta::assert_snapshot!("help_100x30", terminal.backend());
}

#[test]
fn snapshot_too_small() {
    let (app, now) = demo();
    let terminal = draw(&app, now, 60, 20);
    let screen = text(terminal.backend().buffer());
    assert!(screen.contains("Terminal too small: 60x20."), "{screen}");
    assert!(screen.contains("80x24"), "{screen}");
    assert!(!screen.contains("Producer"));
    insta::assert_snapshot!("too_small_60x20", terminal.backend());
}

/// `n` consumers taking 1s each, connected and idle.
fn idle(n: usize, t0: Instant) -> App {
    let mut app = new_app(&vec![1000; n], t0);
    connect(&mut app, t0);
    app
}

/// Every visible consumer's name, and every id in hand or waiting, is on this screen.
fn assert_everything_in_view(app: &App, now: Instant, width: u16, height: u16) {
    let screen = text(draw(app, now, width, height).backend().buffer());
    let words: Vec<&str> = screen.split(|c: char| c.is_whitespace() || ":▸✗".contains(c)).collect();
    for c in app.visible_consumers() {
        assert!(
            words.contains(&c.name().as_str()),
            "{width}x{height}: {} not on screen:\n{screen}",
            c.name()
        );
        let in_hand = c.working.map(|w| format!("▶#{}", w.id));
        let waiting = app.ledger.whereabouts().waiting(c.id).map(|(id, _)| format!("#{id}"));
        for id in in_hand.into_iter().chain(waiting) {
            assert!(
                words.contains(&id.as_str()),
                "{width}x{height}: {}'s {id} not on screen:\n{screen}",
                c.name()
            );
        }
    }
}

/// The floor: a burst of 10 at 1s/10s/15s under round-robin, 2.5s in.
fn burst_of_ten() -> (App, Instant) {
    let t0 = Instant::now();
    let mut app = new_app(&[1000, 10_000, 15_000], t0);
    connect(&mut app, t0);
    app.producer.burst = 10;
    burst(&mut app, t0, 1..=10, 0);
    for (c, id) in [(0, 1), (1, 2), (2, 3)] {
        start(&mut app, t0, c, id);
    }
    done(&mut app, at(t0, 1.0), 0, 1);
    start(&mut app, at(t0, 1.0), 0, 4);
    done(&mut app, at(t0, 2.0), 0, 4);
    start(&mut app, at(t0, 2.0), 0, 7);
    (app, at(t0, 2.5))
}

#[test]
fn at_80x24_every_task_of_a_burst_is_in_view() {
    let (app, now) = burst_of_ten();
    let screen = text(draw(&app, now, 80, 24).backend().buffer());
    for id in 2..=10 {
        assert!(screen.contains(&format!("#{id}")), "#{id} not on screen:\n{screen}");
    }
    for needle in ["▶#7", "backlog 1: #10", "backlog 2: #5 #8", "backlog 2: #6 #9", "done #1 #4", "ready 0"]
    {
        assert!(screen.contains(needle), "{needle} missing:\n{screen}");
    }
    for (w, h) in [(80, 24), (100, 30), (160, 45)] {
        assert_everything_in_view(&app, now, w, h);
    }
}

#[test]
fn the_queue_lists_its_ready_ids_in_order_and_counts_the_rest() {
    let t0 = Instant::now();
    let mut app = idle(3, t0);
    let crate::app::Command::Publish { batch, .. } = app.start_batch(60, t0) else { panic!("a publish") };
    for id in 1..=60 {
        ev(&mut app, t0, Event::Published { id, batch: Some(batch) });
    }
    // #1 went out and came back: it is first again, marked as handed out before.
    ev(&mut app, t0, Event::Delivered { consumer: 0, id: 1, manual_ack: true, redelivered: false });
    ev(&mut app, t0, Event::Requeued { consumer: 0, ids: vec![1] });
    let screen = text(draw(&app, t0, 80, 24).backend().buffer());
    assert!(screen.contains("ready 60: ↻#1 #2 #3 #4"), "{screen}");
    let queue_rows: String = screen
        .lines()
        .skip_while(|l| !l.starts_with(" Queue"))
        .take_while(|l| l.starts_with(" Queue") || l.starts_with("           #"))
        .collect::<Vec<_>>()
        .join(" ");
    let listed: Vec<u64> = queue_rows
        .split_whitespace()
        .filter_map(|w| w.trim_start_matches('↻').strip_prefix('#')?.parse().ok())
        .collect();
    let shown = listed.len() as u64;
    assert_eq!(listed, (1..=shown).collect::<Vec<_>>(), "in queue order:\n{screen}");
    assert!(shown >= 40 && screen.contains(&format!("+{}", 60 - shown)), "the rest is counted:\n{screen}");
}

#[test]
fn six_twelve_and_twenty_four_consumers_fit_with_their_tasks() {
    for (n, w, h) in [(3, 80, 24), (6, 100, 30), (12, 160, 45), (24, 200, 60)] {
        let t0 = Instant::now();
        let mut app = idle(n, t0);
        // Each consumer works on one task and has two waiting (auto-ack).
        burst(&mut app, t0, 1..=(3 * n as u64), 0);
        for c in 0..n {
            start(&mut app, t0, c, c as u64 + 1);
        }
        assert_everything_in_view(&app, at(t0, 0.5), w, h);
        let screen = text(draw(&app, at(t0, 0.5), w, h).backend().buffer());
        assert!(!screen.contains("hidden"), "{n} at {w}x{h}:\n{screen}");
    }
}

#[test]
fn too_many_consumers_are_named_as_hidden() {
    let t0 = Instant::now();
    let mut app = idle(40, t0);
    let screen = text(draw(&app, t0, 100, 30).backend().buffer());
    let shown = (1..=40).filter(|n| screen.contains(&format!("C{n} 1.0s"))).count();
    assert!(shown >= 20, "{shown} lanes:\n{screen}");
    let hint = format!("C{}–C40 hidden, Tab scrolls", shown + 1);
    assert!(screen.contains(&hint), "{hint} missing:\n{screen}");
    // Selecting the last one pages to it, and the hint names what is above.
    app.update(Msg::Action(Action::SelectPrev), t0);
    let screen = text(draw(&app, t0, 100, 30).backend().buffer());
    assert!(screen.contains("C40 1.0s") && !screen.contains("C1 1.0s "), "{screen}");
    assert!(screen.contains("C1–"), "{screen}");
}

#[test]
fn clicks_hit_the_lane_that_was_drawn_there() {
    let (app, now) = demo();
    for (width, height) in [(160, 45), (100, 30), (80, 24), (200, 60)] {
        let terminal = draw(&app, now, width, height);
        let buffer = terminal.backend().buffer();
        let area = Rect::new(0, 0, width, height);
        let mut seen = 0;
        for (pos, c) in app.visible_consumers().enumerate() {
            let name = format!("{} {}", c.name(), crate::ui::format::duration(c.delay));
            let Some((x, y)) = find(buffer, &name) else { continue };
            seen += 1;
            assert_eq!(consumer_at(area, &app, x, y), Some(pos), "{width}x{height} {name}");
            assert_eq!(
                consumer_at(area, &app, x + 30, y),
                Some(pos),
                "{width}x{height} {name}: the whole row"
            );
        }
        assert_eq!(seen, app.visible_consumers().count(), "{width}x{height}");
        assert_eq!(consumer_at(area, &app, 0, 0), None, "the header is no lane");
        assert_eq!(consumer_at(area, &app, 5, height - 1), None, "the footer is no lane");
    }
    assert_eq!(consumer_at(Rect::new(0, 0, 60, 20), &app, 50, 10), None, "too small: nothing");
}

#[test]
fn colours_carry_meaning() {
    let (app, now) = demo();
    let terminal = draw(&app, now, 160, 45);
    let buffer = terminal.backend().buffer();
    let fg = |needle: &str| {
        let (x, y) = find(buffer, needle).unwrap_or_else(|| panic!("{needle} not on screen"));
        buffer[(x, y)].fg
    };
    assert_eq!(fg("✗ crashed"), Color::Red);
    assert_eq!(fg("2: consumer killed under auto-ack"), Color::Red);
    assert_eq!(fg("✓"), Color::Green);
    // The selected lane (C1) is marked with ▸ as well as cyan.
    assert_eq!(fg("▸C1 1.0s"), Color::Cyan);
    // A task keeps its colour: the same as its span in the timeline.
    assert_eq!(fg("▶#2"), crate::ui::timeline::task_colour(2));
}

#[test]
fn connection_trouble_is_on_screen() {
    let t0 = Instant::now();
    let mut app = new_app(&[1000, 2000], t0);
    let screen = text(draw(&app, t0, 100, 30).backend().buffer());
    assert!(screen.contains("connecting…"), "{screen}");
    assert!(screen.contains("starting…"), "{screen}");

    connect(&mut app, t0);
    ev(&mut app, t0, Event::ConnectionLost { reason: "connection reset".into() });
    ev(&mut app, t0, Event::ConsumerReconnecting { consumer: 1, reason: "broker closed".into() });
    app.update(Msg::Action(Action::ToggleMode), t0);
    let screen = text(draw(&app, t0, 100, 30).backend().buffer());
    for needle in [
        "disconnected, reconnecting",
        "connection lost: connection reset; reconnecting",
        "⟳ reconnecting: broker closed",
        "⇄ switching to fair/1",
    ] {
        assert!(screen.contains(needle), "{needle} missing:\n{screen}");
    }
    assert!(!screen.contains("guest"), "never credentials");
}

#[test]
fn switching_shows_only_while_a_switch_is_under_way() {
    let t0 = Instant::now();
    let mut app = idle(2, t0);
    // In round-robin a prefetch change is only noted: nothing switches.
    app.update(Msg::Action(Action::PrefetchUp), t0);
    let screen = text(draw(&app, t0, 80, 24).backend().buffer());
    assert!(!screen.contains("switching"), "{screen}");
    app.update(Msg::Action(Action::ToggleMode), t0);
    assert!(text(draw(&app, t0, 80, 24).backend().buffer()).contains("⇄ switching to fair/2"));
    ev(&mut app, t0, Event::DispatchApplied(Dispatch { mode: Mode::Fair, prefetch: 2 }));
    let screen = text(draw(&app, t0, 80, 24).backend().buffer());
    assert!(
        !screen.contains("switching") && screen.contains("mode fair (manual ack, prefetch 2)"),
        "{screen}"
    );
}

#[test]
fn unacked_is_waiting_plus_in_hand_in_the_header_the_lane_and_the_ledger() {
    let t0 = Instant::now();
    let mut app = idle(3, t0);
    app.update(Msg::Action(Action::PrefetchUp), t0);
    app.update(Msg::Action(Action::PrefetchUp), t0);
    app.update(Msg::Action(Action::ToggleMode), t0);
    ev(&mut app, t0, Event::DispatchApplied(Dispatch { mode: Mode::Fair, prefetch: 3 }));
    let crate::app::Command::Publish { batch, .. } = app.start_batch(7, t0) else { panic!("a publish") };
    for (id, consumer) in [(1, 0), (2, 1), (3, 2), (4, 0), (5, 1), (6, 0), (7, 1)] {
        ev(&mut app, t0, Event::Published { id, batch: Some(batch) });
        ev(&mut app, t0, Event::Delivered { consumer, id, manual_ack: true, redelivered: false });
    }
    for (c, id) in [(0, 1), (1, 2), (2, 3)] {
        start(&mut app, t0, c, id);
    }
    let screen = text(draw(&app, at(t0, 0.2), 160, 45).backend().buffer());
    for needle in [
        "unacked 7 = 4 waiting + 3 in hand",
        "unacked 3 = ▶ + 2 waiting: #4 #6",
        "unacked 3 = ▶ + 2 waiting: #5 #7",
        "unacked 1 = ▶ + 0 waiting",
        "unacked = 4 waiting + 3 in hand",
        "waiting 4 + in hand 3",
    ] {
        assert!(screen.contains(needle), "{needle} missing:\n{screen}");
    }
}

#[test]
fn every_caption_of_every_shipped_lesson_is_whole_at_80x24() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/scenarios");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("assets/scenarios") {
        let path = entry.expect("entry").path();
        let scenario = crate::scenario::load(&path).expect("a shipped lesson loads").scaled(1.0);
        for (i, caption) in scenario.steps.iter().filter_map(|s| s.caption.as_deref()).enumerate() {
            // Playing, waiting for the queue to settle, and paused: the head grows, and still
            // the title, the step and the whole caption are on screen.
            for (paused, waiting, badge) in
                [(false, false, "▶"), (false, true, "settle"), (true, false, "PAUSED")]
            {
                let (mut app, now) = demo();
                app.lesson = Some(crate::app::Lesson {
                    title: scenario.title.clone(),
                    caption: Some(caption.to_string()),
                    paused,
                    waiting,
                    step: (i + 1, 9),
                });
                let screen = text(draw(&app, now, 80, 24).backend().buffer());
                let flat = screen.split_whitespace().collect::<Vec<_>>().join(" ");
                let want = caption.split_whitespace().collect::<Vec<_>>().join(" ");
                let head = format!("{} · step {}/9", scenario.title, i + 1);
                assert!(
                    flat.contains(&want),
                    "{}: caption cut at 80x24:\n{caption}\n{screen}",
                    path.display()
                );
                assert!(flat.contains(&head) && flat.contains(badge), "{head} {badge}:\n{screen}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "only {checked} captions");
}

#[test]
fn captions_say_the_times_the_lanes_show_at_any_speed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/scenarios");
    let number_with_unit = |w: &str| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric());
        w.chars().next().is_some_and(|c| c.is_ascii_digit()) && (w.ends_with("ms") || w.ends_with('s'))
    };
    for entry in std::fs::read_dir(&dir).expect("assets/scenarios") {
        let path = entry.expect("entry").path();
        let raw = crate::scenario::load(&path).expect("loads");
        for caption in raw.steps.iter().filter_map(|s| s.caption.as_deref()) {
            // A time written as a number would be wrong at any other --speed: use {Cn}.
            assert!(!caption.split_whitespace().any(number_with_unit), "{}: {caption}", path.display());
        }
    }
    let kill = crate::scenario::load(&dir.join("kill-with-work-in-hand.toml")).expect("loads");
    let first = |s: &crate::scenario::Scenario| s.steps[0].caption.clone().unwrap_or_default();
    assert_eq!(first(&kill.clone().scaled(1.0)), "C1 takes 4.0s per task, C2 1.0s. Auto-ack first.");
    assert_eq!(first(&kill.scaled(5.0)), "C1 takes 800ms per task, C2 200ms. Auto-ack first.");
}

#[test]
fn details_and_zoom_are_one_key_away_at_80x24() {
    let (mut app, now) = demo();
    app.update(Msg::Action(Action::ToggleDetails), now);
    let screen = text(draw(&app, now, 80, 24).backend().buffer());
    for needle in
        ["Producer", "Distribution", "Where every task is", "recent batches", "batch #2 12 tasks rr 6 left"]
    {
        assert!(screen.contains(needle), "{needle} missing from the details:\n{screen}");
    }
    app.update(Msg::Action(Action::ToggleDetails), now);
    app.update(Msg::Action(Action::ToggleZoom), now);
    let screen = text(draw(&app, now, 80, 24).backend().buffer());
    assert!(screen.contains(" C1 · 1.0s ") && screen.contains("received"), "{screen}");
    assert!(screen.contains("Queue"), "the queue stays in view:\n{screen}");
}

#[test]
fn no_consumers_says_how_to_add_one() {
    let t0 = Instant::now();
    let app = new_app(&[], t0);
    let screen = text(draw(&app, t0, 100, 30).backend().buffer());
    assert!(screen.contains("no consumers: press a to add one"), "{screen}");
}

#[test]
fn never_panics_at_any_size() {
    let (mut app, now) = demo();
    for variant in 0..3 {
        overlay_variant(&mut app, variant, now);
        for (w, h) in sizes() {
            draw(&app, now, w, h);
        }
    }
}

#[test]
fn a_lane_after_a_switch_adds_its_two_kinds_of_waiting_and_marks_redeliveries() {
    let t0 = Instant::now();
    let mut app = idle(2, t0);
    // C1 holds #1 (in hand) and #3 under auto-ack; after the switch to fair it gets #5 unacked.
    burst(&mut app, t0, 1..=4, 0);
    start(&mut app, t0, 0, 1);
    start(&mut app, t0, 1, 2);
    app.update(Msg::Action(Action::ToggleMode), t0);
    ev(&mut app, t0, Event::DispatchApplied(Dispatch { mode: Mode::Fair, prefetch: 1 }));
    let crate::app::Command::Publish { batch, .. } = app.start_batch(1, t0) else { panic!("a publish") };
    ev(&mut app, t0, Event::Published { id: 5, batch: Some(batch) });
    ev(&mut app, t0, Event::Delivered { consumer: 0, id: 5, manual_ack: true, redelivered: false });
    let screen = text(draw(&app, at(t0, 0.1), 100, 30).backend().buffer());
    assert!(screen.contains("waiting 2 = backlog 1 + unacked 1: #3 #5"), "{screen}");
    // C2 gives #4 back and takes it again, redelivered: marked in hand and once done.
    ev(&mut app, t0, Event::Requeued { consumer: 1, ids: vec![4] });
    let screen = text(draw(&app, at(t0, 0.1), 100, 30).backend().buffer());
    assert!(screen.contains("ready 1: ↻#4"), "{screen}");
    done(&mut app, at(t0, 1.0), 1, 2);
    ev(&mut app, at(t0, 1.0), Event::Delivered { consumer: 1, id: 4, manual_ack: true, redelivered: true });
    start(&mut app, at(t0, 1.0), 1, 4);
    let screen = text(draw(&app, at(t0, 1.2), 100, 30).backend().buffer());
    assert!(screen.contains("▶↻#4"), "{screen}");
    ev(&mut app, at(t0, 2.0), Event::Processed { consumer: 1, id: 4, acked: true });
    let screen = text(draw(&app, at(t0, 2.0), 100, 30).backend().buffer());
    assert!(screen.contains("done #2 ↻#4"), "{screen}");
    // Paused, a consumer with nothing in hand is paused, not idle.
    app.update(Msg::Action(Action::PlayPause), at(t0, 2.0));
    let screen = text(draw(&app, at(t0, 2.0), 100, 30).backend().buffer());
    assert!(screen.contains("C2 1.0s  ‖ paused") && screen.contains(" PAUSED "), "{screen}");
}
