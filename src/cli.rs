//! Command-line flags, checked once and turned into a [`Config`] the rest of warren trusts.

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use lapin::uri::AMQPUri;

use crate::app::{Dispatch, Mode};
use crate::ui::Theme;

mod policy_args;
pub mod priorities;
mod usage;
pub use policy_args::PolicyArgs;
pub use priorities::parse_priorities;
pub use usage::one_line as usage_error;

pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// warren: watch a RabbitMQ work queue dispatch tasks to consumers, live.
#[derive(Debug, Parser)]
#[command(
    name = "warren",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true,
    // `--consumers -1` is a wrong number, not an unknown flag `-1`.
    allow_negative_numbers = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub target: TargetArgs,

    /// Name of the task queue to declare and use.
    #[arg(long, default_value = "warren.tasks")]
    pub queue: String,

    /// Declare the queue non-durable and publish non-persistent tasks.
    #[arg(long)]
    pub transient: bool,

    /// How many consumers to start.
    #[arg(long, default_value_t = 3)]
    pub consumers: usize,

    /// Processing time per task, one per consumer, comma-separated; the last one repeats.
    #[arg(long, default_value = "1s,10s,15s")]
    pub delay: String,

    /// Consumer priority (x-priority), one per consumer, comma-separated, e.g. 10,0,0; consumers
    /// not listed get 0, RabbitMQ's default. The broker serves the highest priority first.
    #[arg(long, allow_hyphen_values = true)]
    pub priority: Option<String>,

    /// Declare the queue with x-single-active-consumer: one consumer receives, the others stand by.
    #[arg(long)]
    pub single_active: bool,

    /// Dispatch mode: rr (auto-ack round-robin) or fair (manual ack + prefetch).
    #[arg(long, value_enum, default_value_t = ModeArg::Rr)]
    pub mode: ModeArg,

    /// Unacked tasks allowed per consumer in fair mode (0 = unlimited).
    #[arg(long, default_value_t = 1)]
    pub prefetch: u16,

    /// Tasks published by one burst (the b key).
    #[arg(long, default_value_t = 10)]
    pub burst: u32,

    /// Tasks per second of the continuous stream (the r key).
    #[arg(long, default_value_t = 5)]
    pub rate: u32,

    /// Headless: how many tasks to publish.
    #[arg(long, requires = "headless")]
    pub publish: Option<u32>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded AMQP 0-9-1 broker on its own, for other programs, until Ctrl-C.
    Broker(BrokerArgs),
    /// Play a scenario (a lesson): its consumers, its timeline of steps, its captions.
    #[command(allow_negative_numbers = true)]
    Play(PlayArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct PlayArgs {
    /// The scenario file (TOML), e.g. assets/scenarios/classic-round-robin.toml.
    pub file: std::path::PathBuf,

    /// Scale every duration (delays and timeline): 10 plays a 60-second lesson in 6.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,

    /// Use this queue instead of the lesson's own (e.g. to run it twice on one broker).
    #[arg(long)]
    pub queue: Option<String>,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Which broker: the flags `warren` and `warren play` share.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// AMQP URI of an external broker (credentials are never shown on screen). Without it,
    /// warren uses a local RabbitMQ if one answers, else its embedded broker.
    #[arg(long, env = "AMQP_URL")]
    pub url: Option<String>,

    /// `embedded`: always use the built-in broker, even if RabbitMQ runs locally or
    /// AMQP_URL is set.
    #[arg(long, value_enum)]
    pub broker: Option<BrokerArg>,

    /// The embedded broker keeps its data in DIR (kept after exit); by default a directory of
    /// its own for the run, removed at exit. Implies the embedded broker.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

/// Terminal or not, and what to write: the flags `warren` and `warren play` share.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Run without a terminal UI and print a summary (with `warren`: needs --publish N).
    #[arg(long)]
    pub headless: bool,

    /// Headless: print one JSON object instead of a table.
    #[arg(long, requires = "headless")]
    pub json: bool,

    /// Headless: give up after this long (exit code 2).
    #[arg(long, requires = "headless", default_value = "10m")]
    pub timeout: String,

    /// Record exactly what is on screen into an asciinema (asciicast v2) file.
    #[arg(long, value_name = "FILE.cast", conflicts_with = "headless")]
    pub record: Option<std::path::PathBuf>,

    /// Show each key as it is pressed, for screencasts.
    #[arg(long, conflicts_with = "headless")]
    pub keys: bool,

    /// Colours: `high-contrast` for projectors, `mono` for none [default: default, or mono when
    /// NO_COLOR is set].
    #[arg(long, value_enum, env = "WARREN_THEME")]
    pub theme: Option<ThemeArg>,
}

impl OutputArgs {
    /// The headless settings, if headless; `publish` is how many tasks (0 for scenarios).
    pub fn headless(&self, publish: u32) -> Result<Option<Headless>, String> {
        if !self.headless {
            return Ok(None);
        }
        Ok(Some(Headless { publish, json: self.json, timeout: parse_timeout(&self.timeout)? }))
    }

    /// The theme asked for, else mono when the NO_COLOR variable is set and not empty.
    pub fn theme(&self) -> Theme {
        theme(self.theme, std::env::var_os("NO_COLOR").as_deref())
    }
}

/// `--theme` (or WARREN_THEME) wins; without it a non-empty `no_color` means mono
/// (https://no-color.org).
pub fn theme(asked: Option<ThemeArg>, no_color: Option<&std::ffi::OsStr>) -> Theme {
    match asked {
        Some(ThemeArg::Default) => Theme::Default,
        Some(ThemeArg::HighContrast) => Theme::HighContrast,
        Some(ThemeArg::Mono) => Theme::Mono,
        None if no_color.is_some_and(|v| !v.is_empty()) => Theme::Mono,
        None => Theme::Default,
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// Address to listen on [default: 127.0.0.1:5672, or the next free port if taken].
    #[arg(long)]
    pub listen: Option<String>,

    /// The user clients log in as (required when listening beyond loopback).
    #[arg(long, requires = "password")]
    pub user: Option<String>,

    #[arg(long, requires = "user")]
    pub password: Option<String>,

    /// A delivery not acked within this closes its channel with 406, as RabbitMQ's
    /// consumer_timeout does; "off" for none [default: 30m].
    #[arg(long, value_name = "DURATION", value_parser = parse_consumer_timeout)]
    pub consumer_timeout: Option<ConsumerTimeout>,

    /// Keep durable queues and exchanges, their bindings and persistent messages in DIR and
    /// recover them at start [default: in memory, nothing survives].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

/// A checked --consumer-timeout: `None` is "off".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerTimeout(pub Option<Duration>);

pub fn parse_consumer_timeout(text: &str) -> Result<ConsumerTimeout, String> {
    if text == "off" {
        return Ok(ConsumerTimeout(None));
    }
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(ConsumerTimeout(Some(d))),
        _ => Err(format!("'{text}' is not a duration above 0: try 30m, 90s or off")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerArg {
    /// The broker built into warren: nothing to install.
    Embedded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThemeArg {
    /// Colour carries meaning (with glyphs and words beside it).
    Default,
    /// Bright colours, white labels: readable on a washed-out projector.
    HighContrast,
    /// No colour: bold, reversed, underlined and dim instead.
    Mono,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Auto-ack round-robin.
    Rr,
    /// Manual ack with prefetch: fair dispatch.
    Fair,
}

/// Which broker to drive.
#[derive(Debug, Clone)]
pub enum Target {
    /// An external broker named by --url or AMQP_URL.
    Url(AMQPUri),
    /// The local RabbitMQ if it answers quickly, else the embedded broker.
    Auto,
    /// With the data directory the user gave, if any.
    Embedded(Option<std::path::PathBuf>),
}

/// Everything warren needs to run, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub queue: String,
    pub durable: bool,
    pub delays: Vec<Duration>,
    pub dispatch: Dispatch,
    /// Per consumer, its x-priority (one per consumer).
    pub priorities: Vec<i32>,
    /// The queue is declared with x-single-active-consumer.
    pub single_active: bool,
    pub burst: u32,
    pub rate: u32,
    pub headless: Option<Headless>,
    /// Record the screen into this asciicast file.
    pub record: Option<std::path::PathBuf>,
    pub show_keys: bool,
    pub theme: Theme,
    /// Queue type, limits and poison tasks (see `policy`).
    pub policy: crate::policy::Policy,
}

#[derive(Debug, Clone)]
pub struct Headless {
    pub publish: u32,
    pub json: bool,
    pub timeout: Duration,
}

/// The most consumers one warren drives; more would not be visible or meaningful.
pub const MAX_CONSUMERS: usize = 64;
/// The most tasks one headless run publishes. Every task published and not yet done costs
/// memory in this process (`cargo bench --bench queued`: about 40 bytes in the ledger, about
/// 600 with the embedded broker's queue in the same process), so this bounds a run that
/// publishes faster than its consumers work to about 570 MiB.
pub const MAX_PUBLISH: u32 = 1_000_000;
const MAX_DELAY: Duration = Duration::from_secs(3600);
const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

impl Cli {
    /// Check every value; the error is one line that says what to change.
    pub fn into_config(self) -> Result<Config, String> {
        let target = target(&self.target)?;
        if self.consumers == 0 || self.consumers > MAX_CONSUMERS {
            return Err(format!("--consumers {} is out of range: give 1 to {MAX_CONSUMERS}", self.consumers));
        }
        let delays = parse_delays(&self.delay, self.consumers)?;
        let priorities = parse_priorities(self.priority.as_deref(), self.consumers)?;
        if self.queue.is_empty() || self.queue.len() > 255 || self.queue.starts_with("amq.") {
            return Err(format!(
                "--queue '{}' is not usable: give 1 to 255 bytes, not starting with 'amq.' (reserved)",
                self.queue
            ));
        }
        if self.burst == 0 || self.burst > 100_000 {
            return Err(format!("--burst {} is out of range: give 1 to 100000", self.burst));
        }
        if self.rate == 0 || self.rate > 100_000 {
            return Err(format!("--rate {} is out of range: give 1 to 100000 tasks/s", self.rate));
        }
        let headless = if self.output.headless {
            let publish = self
                .publish
                .ok_or("--headless needs --publish N: how many tasks to publish before the summary")?;
            if publish == 0 {
                return Err(format!(
                    "--publish 0 publishes nothing: give 1 to {MAX_PUBLISH} tasks (the summary is of \
                     what they became)"
                ));
            }
            if publish > MAX_PUBLISH {
                return Err(format!(
                    "--publish {publish} is more than the limit of {MAX_PUBLISH} tasks (each waiting \
                     task holds memory here): give 1 to {MAX_PUBLISH}, or run several times"
                ));
            }
            self.output.headless(publish)?
        } else {
            None
        };
        let theme = self.output.theme();
        let manual_ack = self.mode == ModeArg::Fair;
        let policy = self.policy.into_policy(manual_ack, !self.transient)?;
        if headless.is_some() && !policy.poison.is_empty() && policy.delivery_limit.is_none() {
            return Err("--poison without --delivery-limit cycles those tasks forever, so a                         headless run would never end: add --queue-type quorum --delivery-limit N"
                .into());
        }
        Ok(Config {
            target,
            queue: self.queue,
            durable: !self.transient,
            delays,
            dispatch: Dispatch {
                mode: match self.mode {
                    ModeArg::Rr => Mode::RoundRobin,
                    ModeArg::Fair => Mode::Fair,
                },
                prefetch: self.prefetch,
            },
            priorities,
            single_active: self.single_active,
            burst: self.burst,
            rate: self.rate,
            headless,
            record: self.output.record,
            show_keys: self.output.keys,
            theme,
            policy,
        })
    }
}

/// --url names an external broker; else --broker embedded; else look for a local RabbitMQ.
pub fn target(args: &TargetArgs) -> Result<Target, String> {
    let (url, broker) = (args.url.as_deref(), args.broker);
    if let Some(dir) = &args.data_dir {
        // A data directory is the embedded broker's: not accepted and then ignored elsewhere.
        if url.is_some() && broker.is_none() {
            return Err(format!(
                "--data-dir {} is for warren's embedded broker, but --url (or AMQP_URL) names \
                 another: drop one, or add --broker embedded",
                dir.display()
            ));
        }
        return Ok(Target::Embedded(Some(dir.clone())));
    }
    Ok(match (url, broker) {
        // Asked for by name, it wins: AMQP_URL may be set in the environment for other tools.
        (_, Some(BrokerArg::Embedded)) => Target::Embedded(None),
        (Some(url), None) => Target::Url(parse_url(url)?),
        (None, None) => Target::Auto,
    })
}

/// A checked --timeout.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(text)
        .map_err(|e| format!("--timeout '{text}' is not a duration ({e}): try 30s or 5m"))?;
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(format!("--timeout '{text}' is out of range: give more than 0s and at most 7d"));
    }
    Ok(timeout)
}

/// Parse an AMQP URI; the error names the URL without its password.
pub fn parse_url(url: &str) -> Result<AMQPUri, String> {
    let shown = redact(url);
    let uri: AMQPUri = url.parse().map_err(|e: String| {
        format!("invalid --url '{shown}': {e}; expected amqp://user:password@host:5672/vhost")
    })?;
    if uri.scheme == lapin::uri::AMQPScheme::AMQPS && !cfg!(feature = "tls") {
        return Err(format!(
            "--url '{shown}' uses amqps://, but this warren was built without TLS: \
             rebuild with `cargo build --release --features tls`, or use amqp://"
        ));
    }
    if uri.authority.host.is_empty() {
        return Err(format!(
            "invalid --url '{shown}': no host; expected amqp://user:password@host:5672/vhost"
        ));
    }
    Ok(uri)
}

/// The URL with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, tail) = match rest.rfind('@') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{tail}"),
        None => url.to_string(),
    }
}

/// `1s,10s,15s` for 5 consumers gives 1s,10s,15s,15s,15s; surplus entries are an error.
pub fn parse_delays(list: &str, consumers: usize) -> Result<Vec<Duration>, String> {
    let mut given = Vec::new();
    for part in list.split(',').map(str::trim) {
        let d = humantime::parse_duration(part).map_err(|e| {
            format!("--delay '{part}' is not a duration ({e}): use values like 500ms, 1s, 2m")
        })?;
        if d > MAX_DELAY {
            return Err(format!("--delay '{part}' is longer than the 1h maximum"));
        }
        given.push(d);
    }
    if given.len() > consumers {
        return Err(format!(
            "--delay lists {} durations but there are only {consumers} consumers: \
             give at most one per consumer, or raise --consumers",
            given.len()
        ));
    }
    let last = *given.last().expect("split yields at least one part");
    given.resize(consumers, last);
    Ok(given)
}

#[cfg(test)]
mod tests;
