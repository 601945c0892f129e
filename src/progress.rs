//! How long-running library work says how far it got, and passes on a note
//! for the person watching, without knowing how (or whether) it is shown.
//!
//! The library holds a [`Progress`] handle and asks it for [`Bar`]s; the CLI
//! plugs in terminal bars (`crate::terminal`), tests and offline runs use
//! [`Progress::hidden`]. Nothing below the CLI depends on a terminal crate.

use std::sync::Arc;

/// Draws progress for a run. Implemented by the CLI layer.
pub trait Reporter: Send + Sync {
    /// A meter counting `len` items (0 = not known yet; grown later).
    fn meter(&self, label: &str, len: u64) -> Arc<dyn Meter>;
    /// A line for stderr (a warning, a note), printed so that bars being
    /// drawn are not torn.
    fn note(&self, line: &str);
}

/// One counter of a [`Reporter`].
pub trait Meter: Send + Sync {
    fn inc(&self, n: u64);
    fn inc_length(&self, n: u64);
    fn set_message(&self, message: &str);
    /// Done: the meter disappears.
    fn finish(&self);
}

/// A cheap, cloneable handle on the run's reporter; silent when hidden.
#[derive(Clone, Default)]
pub struct Progress {
    reporter: Option<Arc<dyn Reporter>>,
}

impl Progress {
    pub fn new(reporter: Arc<dyn Reporter>) -> Self {
        Progress {
            reporter: Some(reporter),
        }
    }

    /// Draws nothing. Notes still reach stderr: a warning is not progress.
    pub fn hidden() -> Self {
        Progress { reporter: None }
    }

    pub fn bar(&self, label: &str, len: u64) -> Bar {
        Bar {
            meter: self.reporter.as_ref().map(|r| r.meter(label, len)),
        }
    }

    /// A warning or note for the person running kmsrot (stderr).
    pub fn note(&self, line: &str) {
        match &self.reporter {
            Some(r) => r.note(line),
            None => eprintln!("{line}"),
        }
    }
}

/// A counter handed to library work; clones count on the same meter.
#[derive(Clone, Default)]
pub struct Bar {
    meter: Option<Arc<dyn Meter>>,
}

impl Bar {
    pub fn hidden() -> Self {
        Bar { meter: None }
    }

    pub fn inc(&self, n: u64) {
        if let Some(m) = &self.meter {
            m.inc(n);
        }
    }

    pub fn inc_length(&self, n: u64) {
        if let Some(m) = &self.meter {
            m.inc_length(n);
        }
    }

    pub fn set_message(&self, message: &str) {
        if let Some(m) = &self.meter {
            m.set_message(message);
        }
    }

    pub fn finish_and_clear(&self) {
        if let Some(m) = &self.meter {
            m.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    struct RecMeter(Arc<Recorder>, String);

    impl Reporter for Arc<Recorder> {
        fn meter(&self, label: &str, len: u64) -> Arc<dyn Meter> {
            self.0.lock().unwrap().push(format!("{label} len {len}"));
            Arc::new(RecMeter(self.clone(), label.to_string()))
        }
        fn note(&self, line: &str) {
            self.0.lock().unwrap().push(format!("note {line}"));
        }
    }

    impl Meter for RecMeter {
        fn inc(&self, n: u64) {
            self.0 .0.lock().unwrap().push(format!("{} +{n}", self.1));
        }
        fn inc_length(&self, n: u64) {
            self.0
                 .0
                .lock()
                .unwrap()
                .push(format!("{} len+{n}", self.1));
        }
        fn set_message(&self, message: &str) {
            self.0
                 .0
                .lock()
                .unwrap()
                .push(format!("{} {message}", self.1));
        }
        fn finish(&self) {
            self.0 .0.lock().unwrap().push(format!("{} done", self.1));
        }
    }

    #[test]
    fn bars_and_notes_reach_the_reporter() {
        let rec = Arc::new(Recorder::default());
        let progress = Progress::new(Arc::new(rec.clone()));
        let bar = progress.bar("keys", 0);
        bar.inc_length(2);
        bar.clone().inc(1);
        bar.finish_and_clear();
        progress.note("warning: x");
        assert_eq!(
            *rec.0.lock().unwrap(),
            [
                "keys len 0",
                "keys len+2",
                "keys +1",
                "keys done",
                "note warning: x"
            ]
        );
        // A hidden handle counts nothing and does not fail.
        Progress::hidden().bar("x", 1).inc(1);
    }
}
