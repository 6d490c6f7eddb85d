//! What RabbitMQ's dispatch rules predict for one batch, computed without a broker, so warren can
//! show theory next to what it observed (and tests can hold real runs to it).
//!
//! The model is the classic-queue consumer ring (`rabbit_queue_consumers.erl`, see
//! `shared/rabbitmq-semantics.md`): consumers sit in a ring in registration order, the next ready
//! message goes to the consumer at the head, which then moves to the tail. A consumer whose prefetch
//! window is full is dropped from the ring when it reaches the head ("blocked") and rejoins at the
//! tail when it acks. Auto-ack consumers (round-robin) are never full, so they rotate strictly and
//! pile up a client-side backlog that they work through one task after another.
//!
//! Time is kept as integer nanoseconds ([`Duration`]) so that sums and ties are exact.
//!
//! Tie rule: completions due at the same instant are handled in rounds. A round takes every
//! consumer whose running task ends at that instant, in consumer index order, and for each one acks,
//! lets it rejoin the ring if it was blocked, and dispatches. A task started during the round that
//! also ends at that instant (a zero-length task) belongs to the next round: it cannot be acked
//! before it was delivered. This keeps zero-delay runs in ring order instead of letting C1, which
//! acks first, take everything.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Dispatch, Mode, TaskId};

/// One batch: every task published at t=0 into an empty queue, consumers registered C1..Cn in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Per consumer, its processing time for a task of weight 1.0.
    pub delays: Vec<Duration>,
    /// Per task in publish order (task ids are 1..=len); time = delay * weight. Weights must be
    /// finite and non-negative ([`Duration::mul_f64`] panics otherwise).
    pub weights: Vec<f64>,
    /// Mode and prefetch (0 = unlimited; ignored in round-robin, as for auto-ack consumers).
    pub dispatch: Dispatch,
}

/// The predicted outcome of a [`Workload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    /// Per consumer, task ids in processing order.
    pub tasks: Vec<Vec<TaskId>>,
    /// Per consumer, when it finished its last task (ZERO if it got none).
    pub finish: Vec<Duration>,
    /// The latest of `finish`: when the whole batch is done.
    pub makespan: Duration,
}

impl Prediction {
    /// How many tasks each consumer processed.
    pub fn counts(&self) -> Vec<usize> {
        self.tasks.iter().map(Vec::len).collect()
    }
}

/// Fraction of the batch each consumer processed (all zeros for an empty batch, never NaN).
pub fn shares(p: &Prediction) -> Vec<f64> {
    let counts = p.counts();
    let total: usize = counts.iter().sum();
    counts.iter().map(|&c| if total == 0 { 0.0 } else { c as f64 / total as f64 }).collect()
}

/// Simulate the batch. With no consumers nothing is delivered and the prediction is empty.
pub fn predict(w: &Workload) -> Prediction {
    // Round-robin and prefetch 0 are the same machine with an infinite window: everything is
    // delivered at t=0 in strict rotation, and each consumer then works through its backlog.
    let limit = match w.dispatch {
        Dispatch { mode: Mode::Fair, prefetch } if prefetch > 0 => usize::from(prefetch),
        _ => usize::MAX,
    };
    let n = w.delays.len();
    let mut sim = Sim {
        w,
        limit,
        next: 0,
        ring: (0..n).collect(),
        in_ring: vec![true; n],
        held: vec![VecDeque::new(); n],
        ends: vec![None; n],
        tasks: vec![Vec::new(); n],
        finish: vec![Duration::ZERO; n],
    };
    sim.dispatch(Duration::ZERO);
    while let Some(now) = sim.ends.iter().flatten().min().copied() {
        // Snapshot the round first (see the tie rule in the module docs).
        let due: Vec<usize> = (0..n).filter(|&c| sim.ends[c] == Some(now)).collect();
        for c in due {
            sim.ack(c, now);
            sim.dispatch(now);
        }
    }
    let makespan = sim.finish.iter().copied().max().unwrap_or(Duration::ZERO);
    Prediction { tasks: sim.tasks, finish: sim.finish, makespan }
}

struct Sim<'a> {
    w: &'a Workload,
    /// Prefetch window per consumer (`usize::MAX` = unlimited).
    limit: usize,
    /// Index of the next message still in the queue.
    next: usize,
    /// The consumer ring; blocked consumers are not in it.
    ring: VecDeque<usize>,
    in_ring: Vec<bool>,
    /// Per consumer, delivered but unacked task indices; the front one is being processed.
    held: Vec<VecDeque<usize>>,
    /// Per consumer, when its running task completes (None when idle).
    ends: Vec<Option<Duration>>,
    tasks: Vec<Vec<TaskId>>,
    finish: Vec<Duration>,
}

impl Sim<'_> {
    fn cost(&self, consumer: usize, task: usize) -> Duration {
        self.w.delays[consumer].mul_f64(self.w.weights[task])
    }

    /// Hand queued messages round the ring until the queue is empty or every consumer is blocked.
    fn dispatch(&mut self, now: Duration) {
        while self.next < self.w.weights.len() {
            let Some(c) = self.ring.pop_front() else { return };
            if self.held[c].len() >= self.limit {
                // Full at the head: leave the ring until an ack frees a slot.
                self.in_ring[c] = false;
                continue;
            }
            self.held[c].push_back(self.next);
            if self.ends[c].is_none() {
                self.ends[c] = Some(now + self.cost(c, self.next));
            }
            self.next += 1;
            self.ring.push_back(c);
        }
    }

    /// Consumer `c` completes and acks its running task at `now`, then starts its next held one.
    fn ack(&mut self, c: usize, now: Duration) {
        let task = self.held[c].pop_front().expect("a running task is held");
        self.tasks[c].push(task as TaskId + 1);
        self.finish[c] = now;
        self.ends[c] = self.held[c].front().map(|&t| now + self.cost(c, t));
        if !self.in_ring[c] {
            // The ack unblocks it: back into the ring, at the tail.
            self.in_ring[c] = true;
            self.ring.push_back(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RR: Dispatch = Dispatch { mode: Mode::RoundRobin, prefetch: 0 };

    fn fair(prefetch: u16) -> Dispatch {
        Dispatch { mode: Mode::Fair, prefetch }
    }

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    fn secs(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&s| Duration::from_secs(s)).collect()
    }

    fn run(delays: Vec<Duration>, tasks: usize, dispatch: Dispatch) -> Prediction {
        predict(&Workload { delays, weights: vec![1.0; tasks], dispatch })
    }

    #[test]
    fn round_robin_rotates_whatever_the_speed() {
        for delays in [ms(&[10, 10, 10]), ms(&[1, 500, 3000]), ms(&[3000, 500, 1])] {
            let p = run(delays.clone(), 5, RR);
            assert_eq!(p.tasks, vec![vec![1, 4], vec![2, 5], vec![3]], "{delays:?}");
            let sums: Vec<Duration> = delays.iter().zip(p.counts()).map(|(d, k)| *d * k as u32).collect();
            assert_eq!(p.finish, sums, "{delays:?}");
            assert_eq!(p.makespan, *sums.iter().max().unwrap());
        }
    }

    #[test]
    fn fair_prefetch_1_fast_consumer_does_most() {
        // t=0: C1<-1 (ends 1s), C2<-2 (ends 10s), C3<-3 (ends 15s); all full, all blocked.
        // t=1..7: each second C1 acks, rejoins the empty ring and gets the next task: 4,5,...,10.
        // t=8: C1 acks 10 (queue already empty). t=10: C2 acks 2. t=15: C3 acks 3.
        let p = run(secs(&[1, 10, 15]), 10, fair(1));
        assert_eq!(p.tasks, vec![vec![1, 4, 5, 6, 7, 8, 9, 10], vec![2], vec![3]]);
        assert_eq!(p.finish, secs(&[8, 10, 15]));
        assert_eq!(p.makespan, Duration::from_secs(15));
        // Round-robin on the same workload: C3 alone needs 3 x 15s.
        assert_eq!(run(secs(&[1, 10, 15]), 10, RR).makespan, Duration::from_secs(45));
    }

    #[test]
    fn equal_times_resolve_in_consumer_order() {
        // t=0: C1<-1, C2<-2. t=1: C1 acks, gets 3 (ends 2s). t=2: C1 and C2 both ack; C1 goes
        // first, so it rejoins first and takes 4.
        let p = run(secs(&[1, 2]), 4, fair(1));
        assert_eq!(p.tasks, vec![vec![1, 3, 4], vec![2]]);
        assert_eq!(p.finish, secs(&[3, 2]));
    }

    #[test]
    fn fair_beats_round_robin_on_uneven_consumers() {
        let delays = ms(&[20, 200, 600]);
        let rr = run(delays.clone(), 24, RR);
        let f = run(delays, 24, fair(1));
        assert_eq!(rr.counts(), vec![8, 8, 8]);
        assert_eq!(rr.makespan, Duration::from_millis(4800));
        assert!(f.makespan < rr.makespan, "{f:?}");
        assert!(f.counts()[0] > 12, "{f:?}");
        assert!(shares(&f)[0] > 0.5);
        assert_eq!(f.counts().iter().sum::<usize>(), 24);
    }

    #[test]
    fn heavy_odd_tasks_all_land_on_c1_in_round_robin_but_balance_in_fair() {
        let weights: Vec<f64> = (0..8).map(|i| if i % 2 == 0 { 3.0 } else { 1.0 }).collect();
        let w = |dispatch| Workload { delays: secs(&[1, 1]), weights: weights.clone(), dispatch };
        let rr = predict(&w(RR));
        assert_eq!(rr.tasks, vec![vec![1, 3, 5, 7], vec![2, 4, 6, 8]]);
        assert_eq!(rr.finish, secs(&[12, 4]));
        // t=0: C1<-1 (heavy, ends 3), C2<-2 (light, ends 1). t=1: C2<-3 (ends 4). t=3: C1<-4
        // (ends 4). t=4: C1 then C2 ack: C1<-5 (ends 7), C2<-6 (ends 5). t=5: C2<-7 (ends 8).
        // t=7: C1<-8 (ends 8). Both finish at 8s, each with two heavy and two light tasks.
        let f = predict(&w(fair(1)));
        assert_eq!(f.tasks, vec![vec![1, 4, 5, 8], vec![2, 3, 6, 7]]);
        assert_eq!(f.finish, secs(&[8, 8]));
        assert!(f.finish[0].abs_diff(f.finish[1]) <= Duration::from_secs(3));
    }

    #[test]
    fn unlimited_prefetch_is_round_robin() {
        for delays in [secs(&[1, 10, 15]), ms(&[20, 200, 600]), ms(&[0, 5])] {
            for tasks in [0, 1, 7, 24] {
                let rr = run(delays.clone(), tasks, RR);
                assert_eq!(run(delays.clone(), tasks, fair(0)), rr, "prefetch 0, {delays:?} x{tasks}");
                // A window as big as the batch never fills: everything is dealt out at t=0.
                let big = u16::try_from(tasks.max(1)).unwrap();
                assert_eq!(run(delays.clone(), tasks, fair(big)), rr, "prefetch {big}, {delays:?}");
            }
        }
    }

    #[test]
    fn fair_prefetch_3_by_hand() {
        // t=0: ring C1,C2 deals 1,2,3,4,5,6: C1 holds [1,3,5], C2 [2,4,6]; both full, blocked.
        // t=1: C1 acks 1, gets 7, starts 3. t=2: C1 acks 3, gets 8, starts 5.
        // t=3: C1 acks 5, gets 9, starts 7; then C2 acks 2, gets 10, starts 4. Queue empty.
        // t=4,5: C1 acks 7, 8. t=6: C1 acks 9 (done); C2 acks 4, starts 6. t=9: 6. t=12: 10.
        let p = run(secs(&[1, 3]), 10, fair(3));
        assert_eq!(p.tasks, vec![vec![1, 3, 5, 7, 8, 9], vec![2, 4, 6, 10]]);
        assert_eq!(p.finish, secs(&[6, 12]));
        assert_eq!(p.makespan, Duration::from_secs(12));
        // The bigger window parks tasks on the slow consumer: prefetch 1 ends 3s sooner.
        let p1 = run(secs(&[1, 3]), 10, fair(1));
        assert_eq!(p1.tasks, vec![vec![1, 3, 4, 5, 7, 8, 9], vec![2, 6, 10]]);
        assert_eq!(p1.makespan, Duration::from_secs(9));
    }

    #[test]
    fn edge_cases() {
        for dispatch in [RR, fair(1), fair(3)] {
            let empty = run(secs(&[1, 2]), 0, dispatch);
            assert_eq!(empty.tasks, vec![Vec::<TaskId>::new(); 2]);
            assert_eq!((empty.finish, empty.makespan), (vec![Duration::ZERO; 2], Duration::ZERO));
            assert_eq!(shares(&run(secs(&[1, 2]), 0, dispatch)), vec![0.0, 0.0]);

            // Zero delays: everything ends at 0, but each round of acks still follows the ring.
            let zero = run(ms(&[0, 0, 0]), 7, dispatch);
            assert_eq!(zero.tasks, vec![vec![1, 4, 7], vec![2, 5], vec![3, 6]], "{dispatch}");
            assert_eq!(zero.makespan, Duration::ZERO);

            let one = run(ms(&[100]), 4, dispatch);
            assert_eq!(one.tasks, vec![vec![1, 2, 3, 4]]);
            assert_eq!(one.makespan, Duration::from_millis(400));
            assert_eq!(shares(&one), vec![1.0]);

            let nobody = run(vec![], 3, dispatch);
            assert_eq!((nobody.tasks.len(), nobody.makespan), (0, Duration::ZERO));
        }
    }
}
