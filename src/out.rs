//! Lines for stdout that never panic: `println!` panics when the reader has gone (`warren broker
//! | head -1`, a headless run piped into a script that stopped reading); a line nobody can read
//! any more is simply dropped.

use std::fmt::Display;
use std::io::Write;

/// Write `text` and a newline to stdout, ignoring a closed pipe.
pub fn line(text: impl Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Write `text` as it is (a table that ends in its own newline) to stdout, ignoring a closed pipe.
pub fn text(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
