//! What keeps a lesson from hanging or eating memory: the file is read with a bound, and a
//! timeline that would strand tasks with no consumer is refused when loaded.

use std::path::Path;

use super::{Action, Step};

/// The largest scenario file read: a lesson is a few KiB; anything near this is not one.
pub const MAX_FILE: u64 = 1024 * 1024;

/// The file's text, refused unread when its size says it is too large; a file whose size is
/// not known beforehand (a pipe, /dev/zero) is read up to one byte past the limit, never more.
pub(super) fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let too_large = || format!("larger than {} KiB: not a lesson (is it the right file?)", MAX_FILE / 1024);
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read it: {e}"))?;
    if meta.is_dir() {
        return Err("is a directory, not a scenario file".into());
    }
    if meta.is_file() && meta.len() > MAX_FILE {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text: a scenario is a TOML file".into())
}

/// Refuses a timeline that leaves tasks with nobody to take them: `play` would wait for them
/// until --timeout. Any task published since the last settled wait may still be queued, so
/// removing or killing the last consumer then strands it, unless a later step adds a consumer.
#[derive(Default)]
pub(super) struct Stranding {
    /// Tasks were published and no settled wait (with a consumer alive) has passed since.
    pending: bool,
    /// The step (number, line) that left no consumer while tasks were pending.
    emptied: Option<(usize, usize, &'static str)>,
}

impl Stranding {
    pub(super) fn step(
        &mut self,
        step: &Step,
        n: usize,
        line: usize,
        anyone: bool,
    ) -> Result<(), (Option<usize>, String)> {
        if step.after_settled {
            if let Some(err) = self.error() {
                // The wait itself would never end.
                return Err(err);
            }
            self.pending = false;
        }
        match &step.action {
            Some(Action::Publish { .. }) => self.pending = true,
            Some(Action::Add(..)) => self.emptied = None,
            Some(Action::Remove(_)) if !anyone && self.pending => self.emptied = Some((n, line, "removes")),
            Some(Action::Kill(_)) if !anyone && self.pending => self.emptied = Some((n, line, "kills")),
            _ => {}
        }
        Ok(())
    }

    pub(super) fn end(&self) -> Result<(), (Option<usize>, String)> {
        self.error().map_or(Ok(()), Err)
    }

    fn error(&self) -> Option<(Option<usize>, String)> {
        let (n, line, verb) = self.emptied?;
        Some((
            Some(line),
            format!(
                "step {n} {verb} the last consumer while tasks may still be waiting: nobody would \
                 take them and the lesson would wait until --timeout. Add a consumer before that \
                 (and before any settled wait), or give this step after = \"settled\""
            ),
        ))
    }
}
