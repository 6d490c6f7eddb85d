//! warren: a terminal UI that makes RabbitMQ work-queue dispatch visible.
//!
//! Data flows one way: key -> [`app::Action`] -> [`app::App::update`] -> [`app::Command`] ->
//! [`workload`] -> broker -> [`app::Event`] -> `update` -> render.

pub mod app;
/// The embedded broker lives in its own crate (crates/warren-broker); the TUI uses it like any
/// other user, under its old path.
pub use warren_broker as broker;
pub mod cli;
pub mod endpoint;
pub mod headless;
pub mod keymap;
pub mod out;
pub mod play;
pub mod policy;
pub mod record;
pub mod scenario;
pub mod serve;
pub mod signal;
pub mod tui;
pub mod ui;
pub mod units;
pub mod workload;
