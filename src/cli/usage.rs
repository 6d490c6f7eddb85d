//! clap's usage errors in one line, as every other warren error: clap's own words, its hints
//! (possible values, a similar flag) kept, the usage block dropped, and `--help` named.

/// One line for a clap error that goes to stderr, e.g. "invalid value 'xyz' for '--mode <MODE>'
/// [possible values: rr, fair]; see `warren --help`". `first_arg` is the first command-line
/// argument: a subcommand is always first, and names the `--help` to read.
pub fn one_line(e: &clap::Error, first_arg: Option<&str>) -> String {
    let text = e.render().to_string();
    let mut parts: Vec<String> = Vec::new();
    let mut command = match first_arg {
        Some(sub @ ("play" | "broker")) => format!("warren {sub}"),
        _ => "warren".to_string(),
    };
    for line in text.lines() {
        let line = line.trim();
        if let Some(usage) = line.strip_prefix("Usage:") {
            // "Usage: warren play <FILE>": the (sub)command whose --help to name.
            let words: Vec<&str> =
                usage.split_whitespace().take_while(|w| !w.starts_with(['-', '<', '['])).collect();
            if !words.is_empty() {
                command = words.join(" ");
            }
            // What follows is the usage block and clap's own "try '--help'".
            break;
        }
        // "to pass '-x' as a value, use '-- -x'" misleads: no flag of warren takes free values.
        if line.is_empty() || line.starts_with("For more information") || line.contains("as a value, use") {
            continue;
        }
        let line = line.strip_prefix("error:").unwrap_or(line).trim();
        // Rust's words for a failed number parse, in a user's words.
        let line = line
            .replace("invalid digit found in string", "not a whole number")
            .replace("number too large to fit in target type", "too large")
            .replace("cannot parse integer from empty string", "empty")
            .replace("invalid float literal", "not a number");
        parts.push(line);
    }
    // A heading ending in ':' runs on into the items it lists, as does "[possible values: ..]".
    let mut out = String::new();
    for part in parts {
        if !out.is_empty() {
            let run_on = out.ends_with(':') || part.starts_with('[');
            out.push_str(if run_on { " " } else { "; " });
        }
        out.push_str(&part);
    }
    if out.is_empty() {
        out = e.kind().to_string();
    }
    format!("{out}; see `{command} --help`")
}
