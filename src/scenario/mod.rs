//! Scenario files: a lesson as data. The broker set-up, the consumers and their delays, and a
//! timeline of steps at time offsets. Every mistake is reported as `file:line: what is wrong`.
//!
//! ```toml
//! title = "Classic round-robin"
//! about = "Auto-ack hands out tasks in strict rotation, whatever each consumer's speed."
//! mode = "rr"                       # rr | fair
//! prefetch = 1                      # fair mode: unacked tasks per consumer (0 = unlimited)
//! consumers = ["1s", "10s", "15s"]  # each consumer's time per task
//! expect_losses = false             # true: losing tasks is the lesson (play --headless exits 0)
//!
//! [[step]]
//! at = "0s"
//! caption = "Three consumers, one fast and two slow."
//!
//! [[step]]
//! at = "1s"
//! publish = 5
//! weights = [3, 1]                  # optional: task cost pattern (time = delay x weight)
//! ```
//! Other step actions (at most one per step): `mode = "fair"`, `prefetch = 10`,
//! `delay = { consumer = 2, to = "500ms" }`, `add = "1s"`, `remove = 2`, `kill = 1`,
//! `pause = true` (the presenter resumes), `restart_broker = true` (the embedded broker
//! restarts in-process: what is durable and persistent comes back). `after = "settled"` makes a step wait until every
//! task published so far is processed (or lost) before its own time starts counting.
//!
//! Consumer priorities and single active consumer (`priority.rs` checks them):
//! `priorities = [10, 0, 0]` gives each consumer its `x-priority` (missing ones: 0),
//! `single_active = true` declares the queue with `x-single-active-consumer`, and an added
//! consumer may have a priority: `add = "1s"` with `priority = 5` in the same step.
//!
//! A caption says a consumer's time per task as `{C2}`, never as a number: it is filled in with
//! the time the lane shows then, so the caption stays true at any `--speed` (see `captions.rs`).
//! `expect_losses = true` says the lesson loses tasks on purpose (`play --headless` exits 0).
//!
//! The queue's policy, as the flags of the same names (see `policy.rs`): `queue_type = "quorum"`,
//! `delivery_limit = 2`, `max_length = 3`, `overflow = "reject-publish"`, `task_ttl = "3s"`,
//! `poison = [3, 7]` (task ids every consumer fails on; needs mode fair and a delivery limit).
//! `transient = true` is `--transient`: the queue non-durable and the tasks not persistent
//! (without it a lesson's queue is durable and its tasks persistent, as the CLI's default).
//!
//! `play --headless` exits 1 when tasks were lost, as a lost task is normally a failure; a
//! lesson that loses tasks on purpose (a kill under auto-ack) says `expect_losses = true`.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::app::Mode;

mod captions;
mod limits;
mod policy;
mod priority;
use crate::units;
use limits::{Stranding, read_bounded};

/// A checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub title: String,
    pub about: String,
    pub mode: Mode,
    pub prefetch: u16,
    pub delays: Vec<Duration>,
    /// Per consumer, its `x-priority` (as many as `delays`).
    pub priorities: Vec<i32>,
    /// The queue is declared with `x-single-active-consumer`.
    pub single_active: bool,
    pub queue: Option<String>,
    /// Losing tasks is what the lesson shows: `play --headless` does not fail on it.
    pub expect_losses: bool,
    /// As `--transient`: a non-durable queue and non-persistent tasks (default: durable).
    pub transient: bool,
    pub steps: Vec<Step>,
    /// Queue type, limits and poison tasks.
    pub policy: crate::policy::Policy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Offset from the start (or from when the previous wait ended).
    pub at: Duration,
    pub after_settled: bool,
    pub caption: Option<String>,
    pub action: Option<Action>,
    /// Where it is written, for messages.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Publish {
        count: u32,
        weights: Vec<f64>,
    },
    Mode(Mode),
    Prefetch(u16),
    /// Consumers are numbered from 0 here (from 1 in the file, as on screen).
    Delay {
        consumer: usize,
        to: Duration,
    },
    /// A new consumer with this delay and `x-priority`.
    Add(Duration, i32),
    Remove(usize),
    Kill(usize),
    Pause,
    /// Restart the embedded broker in-process (the durability lesson).
    RestartBroker,
}

impl Action {
    /// What the step did, in words for the log and the captions.
    pub fn describe(&self) -> String {
        match self {
            Action::Publish { count, weights } if weights.is_empty() => format!("publish {count} tasks"),
            Action::Publish { count, weights } => format!("publish {count} tasks weighing {weights:?}"),
            Action::Mode(Mode::Fair) => "switch to fair dispatch".into(),
            Action::Mode(Mode::RoundRobin) => "switch to round-robin".into(),
            Action::Prefetch(0) => "prefetch unlimited".into(),
            Action::Prefetch(p) => format!("prefetch {p}"),
            Action::Delay { consumer, to } => {
                format!("C{} now takes {}", consumer + 1, units::duration(*to))
            }
            Action::Add(d, 0) => format!("add a consumer taking {}", units::duration(*d)),
            Action::Add(d, p) => format!("add a consumer taking {} with priority {p}", units::duration(*d)),
            Action::Remove(c) => format!("remove C{}", c + 1),
            Action::Kill(c) => format!("kill C{}", c + 1),
            Action::Pause => "pause for the presenter".into(),
            Action::RestartBroker => "restart the broker".into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    title: String,
    #[serde(default)]
    about: String,
    #[serde(default = "default_mode")]
    mode: Spanned<String>,
    #[serde(default = "default_prefetch")]
    prefetch: u16,
    consumers: Spanned<Vec<String>>,
    priorities: Option<Spanned<Vec<i32>>>,
    #[serde(default)]
    single_active: bool,
    queue: Option<String>,
    #[serde(default)]
    expect_losses: bool,
    #[serde(default)]
    transient: bool,
    queue_type: Option<String>,
    delivery_limit: Option<u32>,
    max_length: Option<u32>,
    overflow: Option<String>,
    task_ttl: Option<String>,
    poison: Option<Vec<crate::app::TaskId>>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
}

fn default_mode() -> Spanned<String> {
    Spanned::new(0..0, "rr".into())
}

fn default_prefetch() -> u16 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    at: Option<String>,
    after: Option<String>,
    caption: Option<String>,
    publish: Option<u32>,
    weights: Option<Vec<f64>>,
    mode: Option<String>,
    prefetch: Option<u16>,
    delay: Option<RawDelay>,
    add: Option<String>,
    priority: Option<i32>,
    remove: Option<usize>,
    kill: Option<usize>,
    pause: Option<bool>,
    restart_broker: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelay {
    consumer: usize,
    to: String,
}

const MAX_CONSUMERS: usize = crate::cli::MAX_CONSUMERS;

/// Read and check a scenario file.
pub fn load(path: &Path) -> Result<Scenario, String> {
    let text = read_bounded(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|(line, what)| match line {
        Some(line) => format!("{}:{line}: {what}", path.display()),
        None => format!("{}: {what}", path.display()),
    })
}

/// Check a scenario's text; errors carry the 1-based line they are about.
pub fn parse(text: &str) -> Result<Scenario, (Option<usize>, String)> {
    let line_of = |offset: usize| Some(text[..offset.min(text.len())].matches('\n').count() + 1);
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let line = e.span().and_then(|s| line_of(s.start));
        (line, e.message().trim().to_string())
    })?;
    let mode = parse_mode(raw.mode.get_ref()).ok_or_else(|| {
        (
            line_of(raw.mode.span().start),
            format!("mode '{}' is neither \"rr\" nor \"fair\"", raw.mode.get_ref()),
        )
    })?;
    let consumers_line = line_of(raw.consumers.span().start);
    let delays = raw
        .consumers
        .get_ref()
        .iter()
        .map(|d| duration(d).map_err(|e| (consumers_line, format!("consumer delay {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() || delays.len() > MAX_CONSUMERS {
        return Err((consumers_line, format!("give 1 to {MAX_CONSUMERS} consumers")));
    }
    let priorities = match &raw.priorities {
        None => vec![0; delays.len()],
        Some(p) => {
            priority::per_consumer(p.get_ref(), delays.len()).map_err(|e| (line_of(p.span().start), e))?
        }
    };
    let mut steps = Vec::new();
    // Which consumers are alive at each step: removed and killed ones keep their number.
    let mut live = vec![true; delays.len()];
    let mut last_at = Duration::ZERO;
    let mut stranding = Stranding::default();
    // Waiting tasks hold memory (see `cli::MAX_PUBLISH`): a lesson gets the same bound as a run.
    let mut total = 0u64;
    for (n, spanned) in raw.step.iter().enumerate() {
        let line = line_of(spanned.span().start).unwrap_or(0);
        let step = check_step(spanned.get_ref(), n + 1, &mut live, &mut last_at)
            .map_err(|what| (Some(line), what))?;
        stranding.step(&step, n + 1, line, live.iter().any(|alive| *alive))?;
        if let Some(Action::Publish { count, .. }) = &step.action {
            total += u64::from(*count);
            if total > u64::from(crate::cli::MAX_PUBLISH) {
                let limit = crate::cli::MAX_PUBLISH;
                return Err((
                    Some(line),
                    format!("step {}: the lesson publishes more than {limit} tasks in all", n + 1),
                ));
            }
        }
        steps.push(Step { line, ..step });
    }
    stranding.end()?;
    if let Some(q) = &raw.queue
        && (q.is_empty() || q.len() > 255 || q.starts_with("amq."))
    {
        return Err((
            None,
            format!("queue '{q}' is not usable: give 1 to 255 bytes, not starting with 'amq.'"),
        ));
    }
    let raw_policy = policy::RawPolicy {
        queue_type: raw.queue_type,
        delivery_limit: raw.delivery_limit,
        max_length: raw.max_length,
        overflow: raw.overflow,
        task_ttl: raw.task_ttl,
        poison: raw.poison,
    };
    let policy = policy::check(raw_policy, mode, &steps).map_err(|e| (None, e))?;
    if raw.transient && policy.queue_type == crate::policy::QueueType::Quorum {
        let e = "transient = true with queue_type = \"quorum\": a quorum queue is always durable";
        return Err((None, e.into()));
    }
    Ok(Scenario {
        policy,
        title: raw.title,
        about: raw.about,
        mode,
        prefetch: raw.prefetch,
        delays,
        priorities,
        single_active: raw.single_active,
        queue: raw.queue,
        expect_losses: raw.expect_losses,
        transient: raw.transient,
        steps,
    })
}

fn check_step(s: &RawStep, n: usize, live: &mut Vec<bool>, last_at: &mut Duration) -> Result<Step, String> {
    let at = match &s.at {
        Some(at) => duration(at).map_err(|e| format!("step {n}: at {e}"))?,
        None => *last_at,
    };
    let after_settled = match s.after.as_deref() {
        None => false,
        Some("settled") => true,
        Some(other) => return Err(format!("step {n}: after = \"{other}\": the only choice is \"settled\"")),
    };
    if at < *last_at && !after_settled {
        return Err(format!(
            "step {n} is at {} but the step before is at {}: keep the timeline in order",
            units::duration(at),
            units::duration(*last_at)
        ));
    }
    *last_at = at;
    let consumer = |k: usize, live: &[bool], verb: &str| -> Result<usize, String> {
        match live.get(k.wrapping_sub(1)) {
            None => Err(format!(
                "step {n} would {verb} consumer {k}, but consumers are numbered 1 to {} here",
                live.len()
            )),
            Some(false) => {
                Err(format!("step {n} would {verb} consumer {k}, but it was removed or killed before"))
            }
            Some(true) => Ok(k - 1),
        }
    };
    let mut actions = Vec::new();
    if let Some(count) = s.publish {
        if count == 0 || count > 100_000 {
            return Err(format!("step {n}: publish {count}: give 1 to 100000 tasks"));
        }
        if !live.iter().any(|alive| *alive) {
            // Nobody would ever take them: a later "after = settled" would wait forever.
            return Err(format!("step {n} publishes, but every consumer was removed or killed before"));
        }
        let weights = s.weights.clone().unwrap_or_default();
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0 || *w > 1000.0) {
            return Err(format!("step {n}: weights must be numbers from 0 to 1000"));
        }
        actions.push(Action::Publish { count, weights });
    } else if s.weights.is_some() {
        return Err(format!("step {n}: weights without publish"));
    }
    if let Some(m) = &s.mode {
        let mode =
            parse_mode(m).ok_or_else(|| format!("step {n}: mode '{m}' is neither \"rr\" nor \"fair\""))?;
        actions.push(Action::Mode(mode));
    }
    if let Some(p) = s.prefetch {
        actions.push(Action::Prefetch(p));
    }
    if let Some(d) = &s.delay {
        let to = duration(&d.to).map_err(|e| format!("step {n}: delay {e}"))?;
        actions.push(Action::Delay { consumer: consumer(d.consumer, live, "change the delay of")?, to });
    }
    if let Some(a) = &s.add {
        if live.len() >= MAX_CONSUMERS {
            return Err(format!("step {n}: at most {MAX_CONSUMERS} consumers"));
        }
        let priority = priority::of_added(s.priority).map_err(|e| format!("step {n}: {e}"))?;
        actions.push(Action::Add(duration(a).map_err(|e| format!("step {n}: add {e}"))?, priority));
        live.push(true);
    } else if s.priority.is_some() {
        return Err(format!("step {n}: priority without add (it is the added consumer's x-priority)"));
    }
    // Removed and killed consumers keep their number: later steps may not target them, but
    // the numbering of the others does not shift (as on screen).
    if let Some(k) = s.remove {
        actions.push(Action::Remove(consumer(k, live, "remove")?));
        live[k - 1] = false;
    }
    if let Some(k) = s.kill {
        actions.push(Action::Kill(consumer(k, live, "kill")?));
        live[k - 1] = false;
    }

    if s.pause == Some(true) {
        actions.push(Action::Pause);
    }
    if s.restart_broker == Some(true) {
        actions.push(Action::RestartBroker);
    }
    if actions.len() > 1 {
        return Err(format!(
            "step {n} has {} actions ({}): give each its own [[step]]",
            actions.len(),
            actions.iter().map(Action::describe).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(caption) = &s.caption {
        for k in captions::named(caption).map_err(|e| format!("step {n}: {e}"))? {
            if k > live.len() {
                return Err(format!(
                    "step {n}: the caption names {{C{k}}}, but consumers are numbered 1 to {} here",
                    live.len()
                ));
            }
        }
    }
    if actions.is_empty() && s.caption.is_none() && !after_settled {
        return Err(format!("step {n} does nothing: give it a caption or an action"));
    }
    Ok(Step { at, after_settled, caption: s.caption.clone(), action: actions.pop(), line: 0 })
}

fn parse_mode(s: &str) -> Option<Mode> {
    match s {
        "rr" => Some(Mode::RoundRobin),
        "fair" => Some(Mode::Fair),
        _ => None,
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("'{text}' is not a duration ({e}): try 500ms or 2s"))?;
    if d > Duration::from_secs(3600) {
        return Err(format!("'{text}' is longer than the 1h maximum"));
    }
    Ok(d)
}

impl Scenario {
    /// Every duration divided by `speed`, so a 60-second lesson can be shown in 6; the captions'
    /// `{Cn}` say the delays as they then are.
    pub fn scaled(mut self, speed: f64) -> Self {
        // Callers keep speed within 0.01..=1000 (play::prepare); saturate rather than panic anyway.
        let scale =
            |d: Duration| Duration::try_from_secs_f64(d.as_secs_f64() / speed).unwrap_or(Duration::MAX);
        self.delays = self.delays.into_iter().map(scale).collect();
        // A time to live is part of the lesson's clock too.
        self.policy.task_ttl = self.policy.task_ttl.map(scale);
        for s in &mut self.steps {
            s.at = scale(s.at);
            match &mut s.action {
                Some(Action::Delay { to, .. }) => *to = scale(*to),
                Some(Action::Add(d, _)) => *d = scale(*d),
                _ => {}
            }
        }
        captions::expand(&mut self.steps, &self.delays);
        self
    }
}

#[cfg(test)]
mod tests;
