//! Progress bars on stderr, drawn only when a person is watching: the CLI's
//! [`Reporter`] for the library's [`Progress`](crate::progress::Progress).

use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Meter, Reporter};

/// A set of bars on stderr.
pub struct TerminalBars {
    multi: MultiProgress,
}

impl TerminalBars {
    pub fn new() -> Self {
        TerminalBars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        }
    }
}

impl Default for TerminalBars {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for TerminalBars {
    fn meter(&self, label: &str, len: u64) -> Arc<dyn Meter> {
        let bar = self.multi.add(ProgressBar::new(len));
        let style =
            ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        Arc::new(TerminalMeter(bar))
    }

    fn note(&self, line: &str) {
        // Above the bars, so they are not torn; indicatif drops lines
        // printed to a hidden target, so those go to stderr directly.
        if self.multi.is_hidden() || self.multi.println(line).is_err() {
            eprintln!("{line}");
        }
    }
}

struct TerminalMeter(ProgressBar);

impl Meter for TerminalMeter {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn inc_length(&self, n: u64) {
        self.0.inc_length(n);
    }
    fn set_message(&self, message: &str) {
        self.0.set_message(message.to_string());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
