//! Progress bars on stderr, drawn only when a person is watching.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A set of bars that is silent when `enabled` is false (stderr is not a
/// terminal, or `--no-progress`), so callers never branch on it.
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    enabled: bool,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let multi = MultiProgress::new();
        if !enabled {
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        Progress { multi, enabled }
    }

    pub fn hidden() -> Self {
        Progress::new(false)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A bar counting `len` items (0 = unknown yet; set it later).
    pub fn bar(&self, prefix: &str, len: u64) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(len));
        if !self.enabled {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let style =
            ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(prefix.to_string());
        bar
    }
}
