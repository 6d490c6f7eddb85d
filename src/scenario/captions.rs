//! Captions that stay true at every `--speed`: `{C2}` in a caption is consumer 2's time per task
//! as its lane shows it when the caption is on screen, so "C2 takes {C2}" reads "C2 takes 10.0s"
//! at speed 1 and "C2 takes 2.0s" at speed 5.

use std::time::Duration;

use super::{Action, Step};
use crate::units;

/// The consumer numbers (1-based) that `caption` names as `{Cn}`, or what is wrong with one.
pub fn named(caption: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    let mut rest = caption;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| format!("caption has a '{{' without '}}': {caption:?}"))?;
        let inner = &after[..close];
        let n =
            inner.strip_prefix('C').and_then(|k| k.parse::<usize>().ok()).filter(|&k| k >= 1).ok_or_else(
                || format!("caption has {{{inner}}}: the only placeholders are {{C1}}, {{C2}}, ..."),
            )?;
        out.push(n);
        rest = &after[close + 1..];
    }
    Ok(out)
}

/// Replace every `{Cn}` in the steps' captions by consumer n's delay at that step (after the
/// step's own action: a caption on an `add` step can name the newcomer).
pub fn expand(steps: &mut [Step], initial: &[Duration]) {
    let mut delays = initial.to_vec();
    for step in steps {
        match &step.action {
            Some(Action::Add(d, _)) => delays.push(*d),
            Some(Action::Delay { consumer, to }) => {
                if let Some(d) = delays.get_mut(*consumer) {
                    *d = *to;
                }
            }
            _ => {}
        }
        if let Some(caption) = &mut step.caption {
            *caption = fill(caption, &delays);
        }
    }
}

fn fill(caption: &str, delays: &[Duration]) -> String {
    let mut out = caption.to_string();
    for (i, d) in delays.iter().enumerate() {
        out = out.replace(&format!("{{C{}}}", i + 1), &units::duration(*d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked() {
        assert_eq!(named("C1 takes {C1}, C12 {C12}"), Ok(vec![1, 12]));
        assert_eq!(named("no placeholder"), Ok(vec![]));
        for bad in ["{C0}", "{delay}", "{C1", "{c2}"] {
            assert!(named(bad).is_err(), "{bad}");
        }
    }
}
