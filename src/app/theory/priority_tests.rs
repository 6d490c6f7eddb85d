//! The model with consumer priorities, a single active consumer, and kills.

use std::time::Duration;

use super::super::{Dispatch, Kill, Mode, State, Switch, predict_from, predict_with};
use super::SingleActive;

const RR: Dispatch = Dispatch { mode: Mode::RoundRobin, prefetch: 0 };

fn fair(prefetch: u16) -> Dispatch {
    Dispatch { mode: Mode::Fair, prefetch }
}

fn ms(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|&m| Duration::from_millis(m)).collect()
}

fn with_priorities(delays: &[u64], priorities: &[i32], d: Dispatch) -> State {
    State { priorities: priorities.to_vec(), ..State::idle(&ms(delays), d) }
}

fn single_active(delays: &[u64], d: Dispatch) -> State {
    State { single_active: Some(SingleActive::in_order(delays.len())), ..State::idle(&ms(delays), d) }
}

#[test]
fn under_auto_ack_the_highest_priority_takes_everything() {
    let s = with_priorities(&[1000, 1000, 1000], &[0, 0, 10], RR);
    let p = predict_from(&s, &[1.0; 6], &[]);
    assert_eq!(p.tasks, vec![vec![], vec![], vec![1, 2, 3, 4, 5, 6]]);
    assert_eq!(p.makespan, Duration::from_secs(6));
}

#[test]
fn equal_top_priorities_share_round_robin_and_lower_ones_get_nothing() {
    let s = with_priorities(&[100, 100, 100], &[5, 5, 0], RR);
    assert_eq!(predict_from(&s, &[1.0; 4], &[]).tasks, vec![vec![1, 3], vec![2, 4], vec![]]);
}

#[test]
fn a_lower_priority_gets_a_task_only_while_every_higher_one_is_full() {
    // Prefetch 1: C3 (priority 10, last in the ring) takes #1 first; full, it is skipped, and
    // C1 and C2 get #2 and #3. C3 acks at 500 and takes #4 ahead of everyone; at 1000 it takes
    // #5, then C1 and C2 ack (after it: index order) with nothing left but #6 for C1.
    let s = with_priorities(&[1200, 1300, 500], &[0, 0, 10], fair(1));
    let p = predict_from(&s, &[1.0; 6], &[]);
    assert_eq!(p.tasks, vec![vec![2, 6], vec![3], vec![1, 4, 5]]);
}

#[test]
fn only_the_active_consumer_receives_however_idle_the_others_are() {
    let p = predict_from(&single_active(&[1000, 10, 10], fair(1)), &[1.0; 4], &[]);
    assert_eq!(p.tasks, vec![vec![1, 2, 3, 4], vec![], vec![]]);
    let p = predict_from(&single_active(&[1000, 10, 10], RR), &[1.0; 4], &[]);
    assert_eq!(p.tasks, vec![vec![1, 2, 3, 4], vec![], vec![]], "auto-ack too");
}

#[test]
fn killing_the_active_consumer_requeues_its_task_first_for_the_next_one() {
    // C1 holds #2 at 1500 (1000 each): #2 goes back to the head, C2 takes over: #2, #3, #4.
    let s = single_active(&[1000, 1000, 1000], fair(1));
    let p = predict_with(&s, &[1.0; 4], &[], &[Kill { at: Duration::from_millis(1500), consumer: 0 }]);
    assert_eq!(p.tasks, vec![vec![1], vec![2, 3, 4], vec![]]);
    assert_eq!(p.finish, ms(&[1000, 4500, 0]));
}

#[test]
fn the_highest_priority_standing_by_takes_over() {
    let s = State { priorities: vec![0, 0, 5], ..single_active(&[1000, 1000, 1000], fair(1)) };
    let p = predict_with(&s, &[1.0; 3], &[], &[Kill { at: Duration::from_millis(500), consumer: 0 }]);
    assert_eq!(p.tasks, vec![vec![], vec![], vec![1, 2, 3]]);
}

#[test]
fn a_switch_on_a_single_active_queue_hands_activity_round_and_back_to_the_first() {
    // Fair, prefetch 1, C1 busy with #1; at 500 a switch to auto-ack: C1 cancels and C2 (still
    // on prefetch 1) takes #2; C2 cancels and C3 takes #3; C3 cancels and C1, re-subscribed
    // without a limit, is active again and takes #4.
    let s = single_active(&[1000, 1000, 1000], fair(1));
    let switch = Switch { at: Duration::from_millis(500), dispatch: RR };
    let p = predict_from(&s, &[1.0; 4], &[switch]);
    assert_eq!(p.tasks, vec![vec![1, 4], vec![2], vec![3]]);
}

#[test]
fn a_kill_requeues_manual_ack_tasks_and_loses_auto_ack_ones() {
    // Fair, prefetch 1: C2 (slow) is killed with #2 in hand; #2 goes back ahead of #4 and C1
    // takes it when it acks #3.
    let s = State::idle(&ms(&[1000, 5000]), fair(1));
    let p = predict_with(&s, &[1.0; 4], &[], &[Kill { at: Duration::from_millis(1500), consumer: 1 }]);
    assert_eq!(p.tasks, vec![vec![1, 3, 2, 4], vec![]]);
    // Auto-ack: C2's #2 and #4 are gone with it; C1 does its own share only.
    let s = State::idle(&ms(&[1000, 5000]), RR);
    let p = predict_with(&s, &[1.0; 4], &[], &[Kill { at: Duration::from_millis(1500), consumer: 1 }]);
    assert_eq!(p.tasks, vec![vec![1, 3], vec![]]);
}

#[test]
fn a_single_active_state_naming_no_consumer_predicts_nothing_rather_than_panic() {
    let s = State {
        single_active: Some(SingleActive { active: Some(7), standby: vec![9] }),
        ..State::idle(&ms(&[100]), RR)
    };
    let p = predict_with(&s, &[1.0; 2], &[], &[Kill { at: Duration::from_millis(1), consumer: 5 }]);
    assert_eq!(p.tasks, vec![Vec::<u64>::new()]);
}
