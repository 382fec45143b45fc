//! What the writer does when the store refuses a commit (locked by another connection, a full
//! file system, an I/O error): it keeps the batch, rebuilds its in-memory state from what is
//! committed, and tries again with back-off, forever; meanwhile the bounded channel holds the
//! reader back (back-pressure, no drop). Each fault is logged once, when it starts, and once
//! when the store takes writes again.

use std::time::{Duration, Instant};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// The fault in progress, if any.
#[derive(Debug, Default)]
pub struct FaultLog {
    current: Option<Fault>,
}

#[derive(Debug)]
struct Fault {
    cause: String,
    since: Instant,
    attempts: u32,
    delay: Duration,
}

/// The kind of failure, without the details that change from one attempt to the next.
fn cause(error: &rusqlite::Error) -> String {
    match error.sqlite_error_code() {
        Some(code) => format!("{code:?}"),
        None => error.to_string(),
    }
}

impl FaultLog {
    /// Records a failed attempt at `what`; logs when a fault starts or changes kind. Returns
    /// how long to wait before the next attempt.
    pub fn failed(&mut self, what: &str, error: &rusqlite::Error) -> Duration {
        let cause = cause(error);
        match &mut self.current {
            Some(f) if f.cause == cause => {
                f.attempts += 1;
                f.delay = (f.delay * 2).min(MAX_DELAY);
            }
            _ => {
                tracing::error!(
                    "{what}: {error}; keeping the batch and retrying with back-off \
                     (up to every {MAX_DELAY:?}); nothing is dropped meanwhile"
                );
                self.current = Some(Fault {
                    cause,
                    since: Instant::now(),
                    attempts: 1,
                    delay: FIRST_DELAY,
                });
            }
        }
        self.current.as_ref().map_or(FIRST_DELAY, |f| f.delay)
    }

    /// An attempt succeeded: a fault in progress is over.
    pub fn succeeded(&mut self) {
        if let Some(f) = self.current.take() {
            tracing::info!(
                "the store takes writes again ({} after {} failed attempts over {:.1?})",
                f.cause,
                f.attempts,
                f.since.elapsed()
            );
        }
    }
}
