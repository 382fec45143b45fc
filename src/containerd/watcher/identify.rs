//! From a new cgroup (or a live task) to a traced container: which containerd container it
//! is (by the cgroup path its spec names, else by the id in the cgroup's name), whether its
//! label is valid, and, for a container that ended before it was identified, its stop.

use std::sync::Arc;

use containerd_client::tonic::transport::Channel;
use tokio::time::Instant;

use super::{Key, Watcher};
use crate::containerd::api;
use crate::containerd::describe::Described;
use crate::docker::cgroup;
use crate::docker::pod::Pod;
use crate::kernel::event::NewCgroup;
use crate::pipeline::{ToReader, ToWriter};
use crate::registry::Container;
use crate::tracefile::label::TracefilePattern;

impl Watcher {
    pub(super) async fn identify_pending(&mut self, channel: &Channel) {
        let now = Instant::now();
        let mut still = Vec::new();
        for (new, deadline) in std::mem::take(&mut self.unidentified) {
            let mut found = self.find(&new);
            if found.is_none() && now >= deadline {
                found = self.look_up(channel, &new.container_id).await;
            }
            match found {
                Some(key) if self.traceable(&self.known[&key]) => {
                    match self.accept(&key, new.cgroup_id) {
                        Some(container) => {
                            if new.syscalls_detached {
                                tracing::warn!(
                                    "container {} ({}) started while the syscall program \
                                     was detached: its first calls may be missing",
                                    container.name,
                                    key.0
                                );
                            }
                            self.identified(&key, container);
                        }
                        None => self.ignore(new.cgroup_id),
                    }
                }
                Some(_) => self.ignore(new.cgroup_id),
                None if now >= deadline => {
                    tracing::info!(
                        "cgroup {} ({}) belongs to no container containerd knows; not traced",
                        new.cgroup_id,
                        new.path
                    );
                    self.ignore(new.cgroup_id);
                }
                None => still.push((new, deadline)),
            }
        }
        self.unidentified = still;
    }

    /// The known container whose spec names this cgroup, else one with the id its name
    /// carries (the systemd driver's `cri-containerd-<id>.scope`).
    fn find(&self, new: &NewCgroup) -> Option<Key> {
        if let Some(key) = self.by_cgroup.get(new.path.trim_matches('/')) {
            return Some(key.clone());
        }
        self.known
            .keys()
            .find(|(_, id)| *id == new.container_id)
            .cloned()
    }

    /// Asks every namespace for a container with this id (its create event never came:
    /// the stream was down, or it was made between inventory and subscription).
    async fn look_up(&mut self, channel: &Channel, id: &str) -> Option<Key> {
        let namespaces = api::namespaces(channel).await.ok()?;
        for namespace in namespaces {
            if let Ok(Some(record)) = api::container(channel, &namespace, id).await {
                return Some(self.learn(Described::from_record(&namespace, &record)));
            }
        }
        None
    }

    /// A labelled container whose cgroup the kernel did not track from its creation (its
    /// cgroup is not named like a container id), or that ran before the daemon: traced from
    /// now on, through its init process's cgroup.
    pub(super) fn track_running(&mut self, key: &Key, pid: u32, late: bool) {
        let located = cgroup::cgroup_of_pid(pid)
            .and_then(|rel| cgroup::cgroup_id(&self.cgroup_root, &rel).map(|id| (rel, id)));
        let (relative, cgroup_id) = match located {
            Ok(found) => found,
            Err(e) => {
                tracing::error!("container {} ({}): {e}", key.1, key.0);
                return;
            }
        };
        let Some(container) = self.accept(key, cgroup_id) else {
            return;
        };
        if late {
            tracing::warn!(
                "container {} ({}): its cgroup {relative} is not named like a container \
                 id and the kernel did not track it from its creation (not announced in \
                 time), so it is traced from its task on: its first calls may be missing \
                 and the runtime's last set-up calls counted",
                container.name,
                key.0
            );
        }
        let _ = self.to_reader.send(ToReader::Track {
            cgroup_id,
            path: self.cgroup_root.join(relative.trim_start_matches('/')),
        });
        self.identified(key, container);
    }

    /// A container with a valid label becomes traced; a hostile label is refused and logged.
    fn accept(&mut self, key: &Key, cgroup_id: u64) -> Option<Arc<Container>> {
        let d = self.known.get(key)?;
        let (value, source) = d.tracefile(&self.pods)?;
        let pattern = match TracefilePattern::parse(value) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(
                    "container {} ({}): refusing {}={value:?}: {e}",
                    d.name(),
                    d.namespace,
                    source.describe()
                );
                return None;
            }
        };
        let pod = Pod::from_labels(&d.labels);
        if let Some(p) = &pod {
            tracing::info!(
                "container {} ({}) is {:?} of pod {}/{}; Tracefile from its {}",
                d.name(),
                d.namespace,
                p.container.as_deref().unwrap_or("?"),
                p.namespace,
                p.name,
                source.describe()
            );
        }
        let seccomp = d.seccomp_key(&self.engine);
        let container = Arc::new(Container {
            container_id: d.id.clone(),
            name: d.name(),
            image: d.image.clone(),
            pattern,
            labels: d.labels.clone(),
            cgroup_id,
            seccomp: Some(seccomp.clone()),
            pod,
        });
        // The errno probe runs only on Docker; without a filter there is nothing to probe:
        // nothing is refused (what the probe finds for Docker's unconfined containers).
        if !d.seccomp && self.unfiltered.insert(seccomp.clone()) {
            let _ = self.to_writer.send(ToWriter::Refusals {
                seccomp,
                errnos: Default::default(),
                allowed: Default::default(),
            });
        }
        self.registry.insert(Arc::clone(&container));
        Some(container)
    }

    /// The writer is told; a container whose init process ended already is stopped at once.
    fn identified(&mut self, key: &Key, container: Arc<Container>) {
        let _ = self
            .to_writer
            .send(ToWriter::Resolved(Arc::clone(&container)));
        if let Some(at_ms) = self.died.remove(key) {
            self.stop_tracing(container.cgroup_id, at_ms);
        }
    }

    fn ignore(&self, cgroup_id: u64) {
        let _ = self.to_writer.send(ToWriter::Ignored { cgroup_id });
        let _ = self.to_reader.send(ToReader::Untrack { cgroup_id });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::containerd::DOCKER_NAMESPACE;
    use crate::pipeline::control_channel;
    use crate::tracefile::label::LABEL;

    const LEAF: &str = "2a09f2e45c80d3b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c";

    fn described(namespace: &str, id: &str, cgroups_path: &str) -> Described {
        Described {
            namespace: namespace.into(),
            id: id.into(),
            labels: HashMap::from([(LABEL.to_string(), "t".to_string())]),
            cgroups_path: Some(cgroups_path.into()),
            ..Default::default()
        }
    }

    fn new_cgroup(path: &str) -> NewCgroup {
        NewCgroup {
            cgroup_id: 77,
            container_id: LEAF.into(),
            path: path.into(),
            syscalls_detached: false,
        }
    }

    #[test]
    fn a_cgroup_not_named_like_an_id_is_announced_to_the_kernel_while_labelled() {
        let (to_writer, _from_watcher) = crossbeam_channel::unbounded();
        let (to_reader, control) = control_channel().unwrap();
        let mut watcher = Watcher::new("/x".into(), to_writer, to_reader, "/".into());
        let web = watcher.learn(described("ns", "web", "/ns/web"));
        let hex = watcher.learn(described("ns", LEAF, &format!("/ns/{LEAF}")));
        let announced = |expected: bool| -> Vec<String> {
            control
                .rx
                .try_iter()
                .filter_map(|m| match m {
                    ToReader::ExpectCgroup { path, expected: e } if e == expected => Some(path),
                    _ => None,
                })
                .collect()
        };
        watcher.set_labelled([web.clone(), hex.clone()].into());
        assert_eq!(
            announced(true),
            ["/ns/web"],
            "an id-named cgroup needs none"
        );
        watcher.set_labelled([hex].into());
        assert_eq!(
            announced(false),
            ["/ns/web"],
            "withdrawn once no longer labelled"
        );
    }

    #[test]
    fn a_cgroup_is_the_container_whose_spec_names_it_and_dockers_are_not_traced() {
        let (to_writer, _from_watcher) = crossbeam_channel::unbounded();
        let (to_reader, _control) = control_channel().unwrap();
        let mut watcher = Watcher::new("/x".into(), to_writer, to_reader, "/".into());
        // Its cgroup's leaf is another container's id: the spec's path decides.
        let kube = watcher.learn(described(
            "k8s.io",
            "app",
            &format!("/kubepods/besteffort/pod1/{LEAF}"),
        ));
        watcher.learn(described("other", LEAF, &format!("/other/{LEAF}")));
        let cgroup = new_cgroup(&format!("/kubepods/besteffort/pod1/{LEAF}"));
        assert_eq!(watcher.find(&cgroup), Some(kube.clone()));
        // Docker's own, in namespace moby: known, labelled, and still not traced here.
        let docker = watcher.learn(described(DOCKER_NAMESPACE, "d", &format!("/docker/{LEAF}")));
        assert_eq!(
            watcher.find(&new_cgroup(&format!("docker/{LEAF}"))),
            Some(docker.clone())
        );
        assert!(!watcher.traceable(&watcher.known[&docker]));
        assert!(watcher.traceable(&watcher.known[&kube]));
    }

    #[test]
    fn a_container_that_ended_before_it_was_identified_is_stopped_once_it_is() {
        let (to_writer, from_watcher) = crossbeam_channel::unbounded();
        let (to_reader, control) = control_channel().unwrap();
        let mut watcher = Watcher::new("/x".into(), to_writer, to_reader, "/".into());
        let key = watcher.learn(described("ns", LEAF, &format!("/ns/{LEAF}")));
        watcher.died.insert(key.clone(), 1234);
        let container = watcher.accept(&key, 77).expect("labelled");
        assert_eq!(container.name, LEAF);
        assert!(container
            .seccomp
            .as_deref()
            .is_some_and(|s| s.contains("none")));
        // No filter: stored as refusing nothing, once per setting.
        assert!(matches!(
            from_watcher.try_recv(),
            Ok(ToWriter::Refusals { errnos, .. }) if errnos.is_empty()
        ));
        watcher.identified(&key, container);
        assert!(matches!(from_watcher.try_recv(), Ok(ToWriter::Resolved(_))));
        let stopped = control.rx.try_iter().any(|m| {
            matches!(
                m,
                ToReader::Stopped {
                    cgroup_id: 77,
                    at_ms: 1234
                }
            )
        });
        assert!(stopped);
        assert!(watcher.registry.is_empty() && watcher.died.is_empty());
    }
}
