//! How a run ends: exit codes, and errors that carry a hint for the user.
//!
//! Commands return [`Outcome`] or an error; only `main` turns them into an exit
//! code. A fatal error prints its cause chain, then every `hint:` found in it.

use std::fmt;

/// What a finished command reports. Exit codes are part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was read and nothing failed the gate. Exit 0.
    Complete,
    /// An open finding at or above `--fail-on`. Exit 1.
    Findings,
    /// Some region, key, file or day could not be read; stderr says which. Exit 3.
    Partial,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Complete => 0,
            Outcome::Findings => 1,
            Outcome::Partial => 3,
        }
    }
}

/// Exit code for usage errors and fatal errors.
pub const EXIT_FATAL: i32 = 2;

/// An error with a suggestion the user can act on.
#[derive(Debug)]
pub struct Hinted {
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// Builds a hinted error: `return Err(hinted("no region", "pass --region"))`.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        message: message.into(),
        hint: hint.into(),
    })
}

/// Renders an error for stderr: `error: ...`, each cause, then the hints.
/// Messages quote file names, AWS error messages and log strings, so each is
/// printed with terminal control characters escaped.
pub fn render(err: &anyhow::Error) -> String {
    use crate::output::display_safe;
    let mut out = format!("error: {}", display_safe(&err.to_string()));
    for cause in err.chain().skip(1) {
        out.push_str(&format!(
            "\n  caused by: {}",
            display_safe(&cause.to_string())
        ));
    }
    for cause in err.chain() {
        if let Some(h) = cause.downcast_ref::<Hinted>() {
            out.push_str(&format!("\nhint: {}", display_safe(&h.hint)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn hints_are_found_under_context() {
        let err: anyhow::Result<()> = Err(hinted("no credentials", "run `aws sso login`"));
        let err = err.context("reading us-east-1").unwrap_err();
        let text = render(&err);
        assert!(text.starts_with("error: reading us-east-1"));
        assert!(text.contains("caused by: no credentials"));
        assert!(text.ends_with("hint: run `aws sso login`"));
    }

    #[test]
    fn rendered_errors_cannot_drive_the_terminal() {
        let err = anyhow::anyhow!("AccessDenied: \u{1b}]0;owned\u{7}\u{1b}[2J");
        let text = render(&err.context("reading events.json"));
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
        assert!(text.contains("\\u{1b}]0;owned"), "{text}");
    }
}
