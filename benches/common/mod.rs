//! Shared by the benches: CPU time read from /proc.

/// user + system CPU seconds from a /proc `stat` file (a process's or a thread's).
#[allow(dead_code)] // not every bench reads CPU
pub fn cpu_seconds(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // The fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The `amqp://` URL a starting broker prints, read from its stdout up to the line that has it
/// (`warren broker` first says how many connections fit).
#[allow(dead_code)] // not every bench starts a broker
pub fn broker_url(stdout: impl std::io::Read) -> String {
    use std::io::BufRead;
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("the broker's output");
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("amqp://")) {
            return url.to_string();
        }
        seen.push(line);
    }
    panic!("no URL in the broker's output: {seen:?}");
}
