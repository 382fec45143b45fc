//! containerd's events, decoded into what the watcher acts on. Every envelope carries its
//! namespace; payloads are protobuf `Any`s whose type URL containerd 1.6 writes without the
//! leading `/` that prost expects.

use containerd_client::events::{
    ContainerCreate, ContainerDelete, ContainerUpdate, TaskCreate, TaskDelete, TaskExit, TaskStart,
};
use containerd_client::types::Envelope;

/// Topics the watcher subscribes to (containerd's filter syntax; several filters are OR'ed).
pub const SUBSCRIPTION: [&str; 2] = [r#"topic~="^/containers/""#, r#"topic~="^/tasks/""#];

/// A container or its init process changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A container record was made (or its labels changed): its labels are in the record.
    ContainerCreated { namespace: String, id: String },
    /// A container record is gone.
    ContainerDeleted { namespace: String, id: String },
    /// The init process exists, stopped before the entrypoint: its cgroup is made.
    TaskCreated {
        namespace: String,
        container_id: String,
        pid: u32,
    },
    /// The entrypoint runs.
    TaskStarted {
        namespace: String,
        container_id: String,
        pid: u32,
    },
    /// The init process ended (`/tasks/exit`) or was deleted (`/tasks/delete`, which also
    /// comes when the exit was missed); `at_ms` is when it exited (Unix ms).
    InitEnded {
        namespace: String,
        container_id: String,
        at_ms: i64,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("decoding containerd event {topic} (namespace {namespace}): {message}")]
pub struct EventError {
    pub topic: String,
    pub namespace: String,
    pub message: String,
}

/// The event an envelope holds; None for topics and processes the watcher ignores (exec
/// processes, pauses, snapshots).
pub fn decode(envelope: &Envelope) -> Result<Option<Event>, EventError> {
    let namespace = envelope.namespace.clone();
    let fail = |message: String| EventError {
        topic: envelope.topic.clone(),
        namespace: envelope.namespace.clone(),
        message,
    };
    let Some(any) = &envelope.event else {
        return Ok(None);
    };
    let mut any = any.clone();
    if !any.type_url.starts_with('/') {
        any.type_url.insert(0, '/');
    }
    let event = match envelope.topic.as_str() {
        "/containers/create" => {
            let e: ContainerCreate = any.to_msg().map_err(|e| fail(e.to_string()))?;
            Event::ContainerCreated {
                namespace,
                id: e.id,
            }
        }
        // Labels can change after the create: the record is read again.
        "/containers/update" => {
            let e: ContainerUpdate = any.to_msg().map_err(|e| fail(e.to_string()))?;
            Event::ContainerCreated {
                namespace,
                id: e.id,
            }
        }
        "/containers/delete" => {
            let e: ContainerDelete = any.to_msg().map_err(|e| fail(e.to_string()))?;
            Event::ContainerDeleted {
                namespace,
                id: e.id,
            }
        }
        "/tasks/create" => {
            let e: TaskCreate = any.to_msg().map_err(|e| fail(e.to_string()))?;
            Event::TaskCreated {
                namespace,
                container_id: e.container_id,
                pid: e.pid,
            }
        }
        "/tasks/start" => {
            let e: TaskStart = any.to_msg().map_err(|e| fail(e.to_string()))?;
            Event::TaskStarted {
                namespace,
                container_id: e.container_id,
                pid: e.pid,
            }
        }
        "/tasks/exit" => {
            let e: TaskExit = any.to_msg().map_err(|e| fail(e.to_string()))?;
            // An exec'd process exits with its own id; the init process with the container's.
            if e.id != e.container_id {
                return Ok(None);
            }
            Event::InitEnded {
                namespace,
                at_ms: unix_ms(e.exited_at.as_ref(), envelope),
                container_id: e.container_id,
            }
        }
        "/tasks/delete" => {
            let e: TaskDelete = any.to_msg().map_err(|e| fail(e.to_string()))?;
            if !e.id.is_empty() && e.id != e.container_id {
                return Ok(None);
            }
            Event::InitEnded {
                namespace,
                at_ms: unix_ms(e.exited_at.as_ref(), envelope),
                container_id: e.container_id,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

/// A protobuf time in Unix ms; the envelope's time when the payload has none.
fn unix_ms(at: Option<&prost_types::Timestamp>, envelope: &Envelope) -> i64 {
    at.or(envelope.timestamp.as_ref())
        .filter(|t| t.seconds > 0)
        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
        .unwrap_or_else(crate::store::now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_client::to_any;

    const ID: &str = "0d52706f66bf76eeb663d1b2643722d053a29cba0b2fbf70b3dc1541a641f174";

    /// An envelope as containerd 1.6 sends it: the type URL without its leading `/`.
    fn envelope<M: prost::Message + prost::Name>(topic: &str, payload: &M) -> Envelope {
        let any = to_any(payload);
        assert!(!any.type_url.starts_with('/'), "{}", any.type_url);
        Envelope {
            timestamp: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
            namespace: "ctrace-test".into(),
            topic: topic.into(),
            event: Some(any),
        }
    }

    fn exited(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos })
    }

    #[test]
    fn container_and_task_lifecycle() {
        let create = ContainerCreate {
            id: ID.into(),
            image: "docker.io/ctrace-test/busybox:latest".into(),
            runtime: None,
        };
        assert_eq!(
            decode(&envelope("/containers/create", &create)).unwrap(),
            Some(Event::ContainerCreated {
                namespace: "ctrace-test".into(),
                id: ID.into()
            })
        );
        let task = TaskCreate {
            container_id: ID.into(),
            pid: 18452,
            ..Default::default()
        };
        assert!(matches!(
            decode(&envelope("/tasks/create", &task)).unwrap(),
            Some(Event::TaskCreated { pid: 18452, .. })
        ));
        let exit = TaskExit {
            container_id: ID.into(),
            id: ID.into(),
            pid: 18452,
            exit_status: 0,
            exited_at: exited(1_800_000_001, 410_631_334),
        };
        assert_eq!(
            decode(&envelope("/tasks/exit", &exit)).unwrap(),
            Some(Event::InitEnded {
                namespace: "ctrace-test".into(),
                container_id: ID.into(),
                at_ms: 1_800_000_001_410
            })
        );
        let delete = ContainerDelete { id: ID.into() };
        assert!(matches!(
            decode(&envelope("/containers/delete", &delete)).unwrap(),
            Some(Event::ContainerDeleted { .. })
        ));
    }

    #[test]
    fn exec_processes_are_not_the_container() {
        let exit = TaskExit {
            container_id: ID.into(),
            id: "exec-1".into(),
            ..Default::default()
        };
        assert_eq!(decode(&envelope("/tasks/exit", &exit)).unwrap(), None);
        let delete = TaskDelete {
            container_id: ID.into(),
            id: "exec-1".into(),
            ..Default::default()
        };
        assert_eq!(decode(&envelope("/tasks/delete", &delete)).unwrap(), None);
        // The init process's delete names no process id; without an exit time the
        // envelope's time stands in.
        let init = TaskDelete {
            container_id: ID.into(),
            ..Default::default()
        };
        assert!(matches!(
            decode(&envelope("/tasks/delete", &init)).unwrap(),
            Some(Event::InitEnded {
                at_ms: 1_800_000_000_000,
                ..
            })
        ));
    }

    #[test]
    fn a_payload_of_the_wrong_type_is_an_error_naming_the_topic() {
        let wrong = ContainerDelete { id: ID.into() };
        let e = decode(&envelope("/tasks/exit", &wrong)).unwrap_err();
        assert!(e.to_string().contains("/tasks/exit"), "{e}");
        let other = ContainerDelete { id: ID.into() };
        assert_eq!(decode(&envelope("/snapshot/remove", &other)).unwrap(), None);
    }
}
