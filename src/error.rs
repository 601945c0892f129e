//! How a run ends: outcomes, exit classes, and errors that carry a hint.
//!
//! Commands return [`Outcome`] or an error; only `main` turns them into an
//! exit code. A fatal error prints its cause chain, then every `hint:` found
//! in it (uv's habit: the fix comes after the cause).

use std::path::PathBuf;

use crate::aws::{ContactError, ErrorInfo};

/// The exit classes. Codes are part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    /// An open finding at or above `--fail-on`, a changed bundle, a
    /// discrepancy after an apply. Exit 1.
    Findings,
    /// The command line asked for something that cannot be done as asked.
    /// Exit 2.
    Usage,
    /// An input, AWS or the machine failed the run. Exit 2.
    Fatal,
    /// Some region, key, file or day could not be read. Exit 3.
    Partial,
}

impl ExitClass {
    pub fn code(self) -> i32 {
        match self {
            ExitClass::Findings => 1,
            ExitClass::Usage | ExitClass::Fatal => 2,
            ExitClass::Partial => 3,
        }
    }
}

/// What a finished command reports.
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
            Outcome::Findings => ExitClass::Findings.code(),
            Outcome::Partial => ExitClass::Partial.code(),
        }
    }
}

/// Exit code for usage errors and fatal errors.
pub const EXIT_FATAL: i32 = 2;

/// An error the user can act on: what went wrong, and a `hint:` saying how
/// to fix it. Carried inside `anyhow` chains; [`render`] finds the hints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Flags that contradict each other, a value of the wrong shape, a folder
    /// that must be new, a key that is not there.
    #[error("{message}")]
    Usage { message: String, hint: String },
    /// A file or folder given as input is missing or is not what it should be.
    #[error("{}: {problem}", path.display())]
    Input {
        path: PathBuf,
        problem: String,
        hint: String,
    },
    /// AWS refused or failed a call the command cannot do without.
    #[error("{call}: {error}")]
    Aws {
        /// The call and what it was about: `kms:Sign with alias/x`.
        call: String,
        error: ErrorInfo,
        hint: String,
    },
    /// Anything else that stops the run.
    #[error("{message}")]
    Fatal { message: String, hint: String },
    /// The run could not start talking to AWS: no or refused credentials,
    /// an unknown profile, an expired SSO session, an unreachable endpoint.
    #[error(transparent)]
    Contact(ContactError),
}

impl From<ContactError> for Error {
    fn from(e: ContactError) -> Self {
        Error::Contact(e)
    }
}

impl Error {
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
        Error::Usage {
            message: message.into(),
            hint: hint.into(),
        }
        .into()
    }

    pub fn input(
        path: impl Into<PathBuf>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> anyhow::Error {
        Error::Input {
            path: path.into(),
            problem: problem.into(),
            hint: hint.into(),
        }
        .into()
    }

    pub fn aws(
        call: impl Into<String>,
        error: ErrorInfo,
        hint: impl Into<String>,
    ) -> anyhow::Error {
        Error::Aws {
            call: call.into(),
            error,
            hint: hint.into(),
        }
        .into()
    }

    pub fn fatal(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
        Error::Fatal {
            message: message.into(),
            hint: hint.into(),
        }
        .into()
    }

    pub fn hints(&self) -> Vec<String> {
        match self {
            Error::Usage { hint, .. }
            | Error::Input { hint, .. }
            | Error::Aws { hint, .. }
            | Error::Fatal { hint, .. } => vec![hint.clone()],
            Error::Contact(e) => e.hints(),
        }
    }

    pub fn exit_class(&self) -> ExitClass {
        match self {
            Error::Usage { .. } => ExitClass::Usage,
            Error::Input { .. } | Error::Aws { .. } | Error::Fatal { .. } | Error::Contact(_) => {
                ExitClass::Fatal
            }
        }
    }
}

/// A usage error with a hint: `return Err(hinted("no bucket", "write s3://B/P"))`.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Error::usage(message, hint)
}

/// The exit class of a failed run: the first [`Error`] in the chain decides;
/// an error without one is fatal.
pub fn exit_class(err: &anyhow::Error) -> ExitClass {
    err.chain()
        .find_map(|c| c.downcast_ref::<Error>())
        .map_or(ExitClass::Fatal, Error::exit_class)
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
        if let Some(e) = cause.downcast_ref::<Error>() {
            for hint in e.hints() {
                out.push_str(&format!("\nhint: {}", display_safe(&hint)));
            }
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

    #[test]
    fn each_variant_names_its_subject_and_class() {
        let e = Error::input("b/manifest.json", "not JSON", "re-collect");
        assert_eq!(e.to_string(), "b/manifest.json: not JSON");
        assert_eq!(exit_class(&e), ExitClass::Fatal);
        let e = Error::aws(
            "kms:Sign with alias/x",
            ErrorInfo::new("AccessDeniedException", "no"),
            "grant kms:Sign",
        );
        assert_eq!(
            e.to_string(),
            "kms:Sign with alias/x: AccessDeniedException: no"
        );
        assert!(render(&e).ends_with("hint: grant kms:Sign"));
        assert_eq!(exit_class(&Error::usage("a", "b")), ExitClass::Usage);
        assert_eq!(exit_class(&anyhow::anyhow!("plain")), ExitClass::Fatal);
        assert_eq!(ExitClass::Usage.code(), 2);
        assert_eq!(Outcome::Findings.exit_code(), 1);
        assert_eq!(Outcome::Partial.exit_code(), 3);
    }
}
