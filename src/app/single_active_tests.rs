//! Single active consumer and priorities as the app derives them, through `update`.

use std::time::{Duration, Instant};

use super::super::testing::options;
use super::super::*;

fn ev(a: &mut App, now: Instant, e: Event) {
    a.update(Msg::Event(e), now);
}

/// An app on a single-active queue (fair, prefetch 1) with these priorities, everyone registered in order.
fn single_active(delays_ms: &[u64], priorities: &[i32]) -> (App, Instant) {
    let t0 = Instant::now();
    let opts =
        AppOptions { single_active: true, priorities: priorities.to_vec(), ..options(delays_ms, Mode::Fair) };
    let mut a = App::new(opts, t0);
    for consumer in 0..delays_ms.len() {
        ev(&mut a, t0, Event::ConsumerReady { consumer });
    }
    (a, t0)
}

fn roles(a: &App) -> Vec<Option<Role>> {
    a.consumers.iter().map(|c| c.role).collect()
}

fn notice(a: &App) -> &str {
    a.notice.as_ref().map_or("", |n| n.text.as_str())
}

fn publish(a: &mut App, now: Instant, count: u32) {
    a.start_batch(count, now);
    let first = a.ledger.totals().published + 1;
    let batch = a.batches.last().unwrap().id;
    for id in first..first + u64::from(count) {
        ev(a, now, Event::Published { id, batch: Some(batch) });
    }
}

fn predicted_tasks(a: &App) -> Vec<Vec<TaskId>> {
    a.batches.last().unwrap().prediction().tasks
}

const ACTIVE: Option<Role> = Some(Role::Active);
const NEXT: Option<Role> = Some(Role::Next);
const STANDBY: Option<Role> = Some(Role::Standby);

#[test]
fn the_first_to_register_is_active_and_the_others_stand_by_in_order() {
    let (a, _) = single_active(&[1000, 1000, 1000], &[]);
    assert_eq!(roles(&a), vec![ACTIVE, NEXT, STANDBY]);
}

#[test]
fn a_killed_active_consumer_hands_over_to_the_next_with_a_notice() {
    let (mut a, t0) = single_active(&[1000, 1000, 1000], &[]);
    a.kill_consumer(0, t0);
    ev(&mut a, t0, Event::ConsumerGone { consumer: 0, killed: true });
    assert_eq!(roles(&a), vec![None, ACTIVE, NEXT]);
    assert_eq!(notice(&a), "C1 was killed: C2 takes over as the active consumer");
}

#[test]
fn the_highest_priority_standing_by_takes_over_but_never_displaces_a_live_active_one() {
    // C3 has priority 5 but registered last: C1 stays active (RabbitMQ 3.10, checked with pika).
    let (mut a, t0) = single_active(&[1000, 1000, 1000], &[0, 0, 5]);
    assert_eq!(roles(&a), vec![ACTIVE, STANDBY, NEXT]);
    ev(&mut a, t0, Event::ConsumerReconnecting { consumer: 0, reason: "gone".into() });
    assert_eq!(roles(&a), vec![None, NEXT, ACTIVE]);
    // C1 comes back: it stands by behind C2.
    ev(&mut a, t0, Event::ConsumerReady { consumer: 0 });
    assert_eq!(roles(&a), vec![STANDBY, NEXT, ACTIVE]);
}

#[test]
fn a_delivery_to_a_consumer_standing_by_means_it_is_active() {
    let (mut a, t0) = single_active(&[1000, 1000], &[]);
    publish(&mut a, t0, 1);
    ev(&mut a, t0, Event::Delivered { consumer: 1, id: 1, manual_ack: true, redelivered: false });
    assert_eq!(roles(&a), vec![NEXT, ACTIVE]);
    assert_eq!(notice(&a), "C2 received #1: it is the active consumer now");
}

#[test]
fn removing_the_active_consumer_hands_over_at_once() {
    let (mut a, t0) = single_active(&[1000, 1000, 1000], &[]);
    a.remove_consumer(0);
    assert_eq!(roles(&a), vec![None, ACTIVE, NEXT]);
    // What was on its way to C1 before its cancel still arrives: C2 stays the active one.
    publish(&mut a, t0, 1);
    ev(&mut a, t0, Event::Delivered { consumer: 0, id: 1, manual_ack: false, redelivered: false });
    assert_eq!(roles(&a), vec![None, ACTIVE, NEXT]);
    assert_eq!(notice(&a), "");
}

#[test]
fn a_switch_passes_activity_round_the_consumers_and_back_to_the_first() {
    let (mut a, t0) = single_active(&[1000, 1000, 1000], &[]);
    a.update(Msg::Action(Action::ToggleMode), t0);
    assert_eq!(roles(&a), vec![ACTIVE, NEXT, STANDBY]);
    assert_eq!(notice(&a), "each consumer re-subscribes in turn: activity passes down the line, back to C1");
}

#[test]
fn the_theory_gives_a_single_active_batch_to_the_active_consumer_and_follows_a_kill() {
    let (mut a, t0) = single_active(&[1000, 1000, 1000], &[]);
    publish(&mut a, t0, 4);
    assert_eq!(predicted_tasks(&a), vec![vec![1, 2, 3, 4], vec![], vec![]]);
    // C1 holds #2 (1.5 s in) when it is killed: #2 is requeued first, C2 takes over.
    for (id, at) in [(1, 0), (2, 1000)] {
        let now = t0 + Duration::from_millis(at);
        ev(&mut a, now, Event::Delivered { consumer: 0, id, manual_ack: true, redelivered: false });
        ev(&mut a, now, Event::Started { consumer: 0, id, work: Duration::from_secs(1) });
        if id == 1 {
            ev(&mut a, now + Duration::from_secs(1), Event::Processed { consumer: 0, id, acked: true });
        }
    }
    a.kill_consumer(0, t0 + Duration::from_millis(1500));
    assert_eq!(predicted_tasks(&a), vec![vec![1], vec![2, 3, 4], vec![]]);
    assert_eq!(a.batches.last().unwrap().unmodelled, None, "the kill is modelled");
}

#[test]
fn priorities_reach_the_theory_and_the_added_consumer() {
    let t0 = Instant::now();
    let opts = AppOptions { priorities: vec![0, 0, 10], ..options(&[1000, 1000, 1000], Mode::RoundRobin) };
    let mut a = App::new(opts, t0);
    for consumer in 0..3 {
        ev(&mut a, t0, Event::ConsumerReady { consumer });
    }
    publish(&mut a, t0, 6);
    assert_eq!(predicted_tasks(&a), vec![vec![], vec![], vec![1, 2, 3, 4, 5, 6]], "auto-ack: C3 takes all");
    let cmd = a.add_consumer_with_priority(Duration::from_secs(2), 7);
    assert_eq!(cmd, Command::AddConsumer { consumer: 3, delay: Duration::from_secs(2), priority: 7 });
    assert_eq!(a.consumers[3].priority, 7);
}
