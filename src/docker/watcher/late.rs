//! Docker's events can overtake a container's new cgroup: a container that lives a few
//! milliseconds can die, and even be destroyed, before the watcher has identified the cgroup
//! the kernel reported (it inspects containers one at a time, and `select!` takes ready
//! branches in any order). Such a container must still be traced, and then stopped at once:
//! otherwise it is lost ("belongs to no container Docker knows") or, traced after its `die`,
//! stays in the registry, the reader and the writer for the daemon's life.
//!
//! Under a sustained stream of starts the events can also lag seconds behind (2,000
//! containers, 8 at a time, on 2 CPUs: up to 12 s). A cgroup is therefore judged against the
//! events, not the clock: while events older than its arrival are still queued, its
//! container's `create` may be among them, so it is neither inspected nor given up.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Watcher, IDENTIFY_TIMEOUT};
use crate::store::now_ms;

/// No event handled for this long: none is queued (the watcher handles them as they come,
/// between inspections that take well under a second each).
const EVENTS_IDLE: Duration = Duration::from_secs(5);
use crate::pipeline::{ToReader, ToWriter};
use crate::registry::Container;

/// What the watcher keeps of containers that ended before their cgroup was identified.
#[derive(Debug, Default)]
pub(super) struct Late {
    /// Labelled containers whose `die` came while they were not in the registry, with when
    /// they died (Unix ms).
    died: HashMap<String, i64>,
    /// Destroyed containers, and until when their description and death are kept (a cgroup
    /// of theirs may still wait to be identified). Expired entries go at the next `destroy`.
    destroyed: VecDeque<(String, Instant)>,
    /// The Docker time (Unix ms) of the last event handled, and when it was handled.
    last_event: Option<(i64, Instant)>,
}

impl Late {
    pub(super) fn event_handled(&mut self, time_nano: Option<i64>) {
        if let Some(ns) = time_nano {
            let ms = ns / 1_000_000;
            let newest = self.last_event.map_or(ms, |(last, _)| last.max(ms));
            self.last_event = Some((newest, Instant::now()));
        }
    }

    /// Every event from before the cgroup with this deadline reached the watcher has been
    /// handled (or none came for EVENTS_IDLE): if its container is Docker's and was created
    /// while the daemon ran, its `create` event is known.
    pub(super) fn caught_up(&self, deadline: Instant) -> bool {
        let Some((event_ms, handled)) = self.last_event else {
            return true;
        };
        let arrived = deadline.checked_sub(IDENTIFY_TIMEOUT).unwrap_or(deadline);
        let waited = Instant::now().saturating_duration_since(arrived);
        let arrived_ms = now_ms() - i64::try_from(waited.as_millis()).unwrap_or(i64::MAX);
        event_ms >= arrived_ms || handled.elapsed() >= EVENTS_IDLE
    }
}

impl Watcher {
    /// A container died: a traced one stops; a labelled one not identified yet is stopped
    /// as soon as it is.
    pub(super) fn container_died(&mut self, id: String, at_ms: i64) {
        if let Some(container) = self.registry.by_container_id(&id).cloned() {
            self.stop_tracing(&container, at_ms);
        } else if self.labelled.contains(&id) {
            self.late.died.insert(id, at_ms);
        }
    }

    /// A container was destroyed: what is known of it goes once no cgroup can still be
    /// waiting for it (IDENTIFY_TIMEOUT).
    pub(super) fn container_destroyed(&mut self, id: String) {
        let now = Instant::now();
        while let Some((_, until)) = self.late.destroyed.front() {
            if *until > now {
                break;
            }
            if let Some((gone, _)) = self.late.destroyed.pop_front() {
                self.described.remove(&gone);
                self.late.died.remove(&gone);
            }
        }
        self.late.destroyed.push_back((id, now + IDENTIFY_TIMEOUT));
    }

    /// A new cgroup is a labelled container: the writer is told, and if the container died
    /// already, it is stopped right after.
    pub(super) fn identified(&mut self, container: Arc<Container>) {
        let _ = self
            .to_writer
            .send(ToWriter::Resolved(Arc::clone(&container)));
        if let Some(at_ms) = self.late.died.remove(&container.container_id) {
            self.stop_tracing(&container, at_ms);
        }
    }

    fn stop_tracing(&mut self, container: &Container, at_ms: i64) {
        let _ = self.to_reader.send(ToReader::Stopped {
            cgroup_id: container.cgroup_id,
            at_ms,
        });
        self.registry.remove(container.cgroup_id);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::pipeline::control_channel;
    use crate::tracefile::label::TracefilePattern;

    #[test]
    fn a_cgroup_waits_for_the_events_from_before_it_arrived() {
        let mut late = Late::default();
        let deadline = Instant::now() + IDENTIFY_TIMEOUT;
        assert!(late.caught_up(deadline), "no event yet: nothing queued");
        late.event_handled(Some((now_ms() - 3_000) * 1_000_000));
        assert!(!late.caught_up(deadline), "events 3 s behind");
        late.event_handled(Some((now_ms() + 10) * 1_000_000));
        assert!(late.caught_up(deadline));
    }

    #[test]
    fn a_container_that_died_before_it_was_identified_is_stopped_once_it_is() {
        let (to_writer, from_watcher) = crossbeam_channel::unbounded();
        let (to_reader, control) = control_channel().unwrap();
        let mut watcher = Watcher::new(to_writer, to_reader, "/".into());
        let id = "ab".repeat(32);
        watcher.labelled.insert(id.clone());
        watcher.container_died(id.clone(), 1234);
        assert!(from_watcher.try_recv().is_err(), "nothing to stop yet");

        let container = Arc::new(Container {
            container_id: id,
            name: "short".into(),
            image: "busybox".into(),
            pattern: TracefilePattern::parse("short").unwrap(),
            labels: HashMap::new(),
            cgroup_id: 77,
            seccomp: None,
            pod: None,
        });
        watcher.registry.insert(Arc::clone(&container));
        watcher.identified(container);
        assert!(matches!(from_watcher.try_recv(), Ok(ToWriter::Resolved(_))));
        assert!(matches!(
            control.rx.try_recv(),
            Ok(ToReader::Stopped {
                cgroup_id: 77,
                at_ms: 1234
            })
        ));
        assert!(watcher.registry.is_empty());
        assert!(watcher.late.died.is_empty());
    }
}
