//! Reconnecting to a container engine (Docker, containerd) that is down or restarting.

use std::time::Duration;

use tokio::sync::watch;

/// Reconnection delays: from the first, doubling up to the last.
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The delay before the next attempt to reach an engine: doubling up to BACKOFF_MAX, back
/// to BACKOFF_MIN once connected.
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff(BACKOFF_MIN)
    }
}

impl Backoff {
    pub fn delay(&self) -> Duration {
        self.0
    }

    /// Sleeps the delay and doubles it; false if `stop` changed meanwhile.
    pub async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(self.0) => {}
            _ = stop.changed() => return false,
        }
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        true
    }

    pub fn reset(&mut self) {
        self.0 = BACKOFF_MIN;
    }
}
