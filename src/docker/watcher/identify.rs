//! From a new cgroup (or a running container of the inventory) to a traced container: who
//! it is (Docker's `create` event or an inspection), whether its label is valid, and the
//! errno probe of its seccomp setting when it is the first with that setting.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::InspectContainerOptions;
use bollard::Docker;
use crossbeam_channel::Sender;
use tokio::time::Instant;

use super::{Described, Watcher, PROBE_ATTEMPTS};
use crate::docker::pod::{self, Pod};
use crate::pipeline::{ToReader, ToWriter};
use crate::refusals::{run_probe, ProbeTarget};
use crate::registry::Container;
use crate::tracefile::label::TracefilePattern;

impl Watcher {
    pub(super) async fn identify_pending(&mut self, docker: &Docker) {
        let now = Instant::now();
        let mut still = Vec::new();
        for (new, deadline) in std::mem::take(&mut self.unidentified) {
            let inspect =
                || docker.inspect_container(&new.container_id, None::<InspectContainerOptions>);
            let described = match self.described.get(&new.container_id) {
                // A labelled one: its seccomp settings are only in an inspection, which
                // fails if it is gone already (then only its label and name are known).
                Some(d)
                    if d.target.is_none() && pod::tracefile(&d.labels, &self.pods).is_some() =>
                {
                    Some(
                        inspect()
                            .await
                            .map(|i| describe(&i))
                            .unwrap_or_else(|_| d.clone()),
                    )
                }
                Some(d) => Some(d.clone()),
                // Its `create` event may still be queued (late.rs): no inspection meanwhile.
                None if !self.late.caught_up(deadline) => None,
                None => inspect().await.ok().map(|i| describe(&i)),
            };
            if let Some(d) = &described {
                self.learn_sandbox(docker, &d.labels).await;
            }
            match described {
                Some(d) => match self.accept(docker, &new.container_id, &d, new.cgroup_id) {
                    Some(container) => {
                        if new.syscalls_detached {
                            tracing::warn!(
                                "container {} ({}) started while the syscall \
                                 program was detached (created before the daemon saw it): \
                                 its first calls may be missing",
                                container.name,
                                container.short_id()
                            );
                        }
                        self.identified(container);
                    }
                    None => self.ignore(new.cgroup_id),
                },
                None if now >= deadline && self.late.caught_up(deadline) => {
                    tracing::info!(
                        "cgroup {} ({}) belongs to no container Docker knows; not traced",
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

    /// A pod container whose sandbox this watcher has not seen (its `create` event came
    /// before the event stream was open, after the inventory): the sandbox is inspected
    /// once, for the pod's Tracefile name.
    pub(super) async fn learn_sandbox(
        &mut self,
        docker: &Docker,
        labels: &HashMap<String, String>,
    ) {
        let Some(sandbox) = pod::sandbox_id(labels) else {
            return;
        };
        if pod::is_sandbox(labels)
            || self.pods.contains_key(sandbox)
            || !self.sandboxes_seen.insert(sandbox.to_string())
        {
            return;
        }
        match docker
            .inspect_container(sandbox, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspected) => {
                let sandbox_labels = describe(&inspected).labels;
                self.note_sandbox(sandbox, &sandbox_labels);
            }
            Err(e) => tracing::warn!("inspecting pod sandbox {sandbox}: {e}"),
        }
    }

    fn ignore(&self, cgroup_id: u64) {
        let _ = self.to_writer.send(ToWriter::Ignored { cgroup_id });
        let _ = self.to_reader.send(ToReader::Untrack { cgroup_id });
    }

    /// A container with a valid label becomes traced; a hostile label is refused and logged.
    /// The first container of each seccomp setting has the setting probed.
    pub(super) fn accept(
        &mut self,
        docker: &Docker,
        container_id: &str,
        d: &Described,
        cgroup_id: u64,
    ) -> Option<Arc<Container>> {
        let (value, source) = pod::tracefile(&d.labels, &self.pods)?;
        let pattern = match TracefilePattern::parse(value) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(
                    "container {} ({}): refusing {}={value:?}: {e}",
                    d.name,
                    container_id.get(..12).unwrap_or(container_id),
                    source.describe()
                );
                return None;
            }
        };
        let pod = Pod::from_labels(&d.labels);
        if let Some(p) = &pod {
            tracing::info!(
                "container {} ({}) is {:?} of pod {}/{}; Tracefile from its {}",
                d.name,
                container_id.get(..12).unwrap_or(container_id),
                p.container.as_deref().unwrap_or("?"),
                p.namespace,
                p.name,
                source.describe()
            );
        }
        let container = Arc::new(Container {
            container_id: container_id.to_string(),
            name: d.name.trim_start_matches('/').to_string(),
            image: d.image.clone(),
            pattern,
            labels: d.labels.clone(),
            cgroup_id,
            seccomp: d.target.as_ref().map(|t| t.setting_key(&self.engine)),
            pod,
        });
        match (&d.target, &container.seccomp) {
            (Some(target), Some(key)) if self.probed.insert(key.clone()) => {
                tokio::spawn(probe(
                    docker.clone(),
                    target.clone(),
                    key.clone(),
                    self.to_writer.clone(),
                ));
            }
            (None, _) => tracing::warn!(
                "container {} ({}) is gone before its seccomp settings could \
                 be read: its Tracefile gets no ERRNO section from it",
                container.name,
                container.short_id()
            ),
            _ => {}
        }
        self.registry.insert(Arc::clone(&container));
        Some(container)
    }
}

pub(super) fn describe(inspected: &bollard::models::ContainerInspectResponse) -> Described {
    let config = inspected.config.as_ref();
    let host = inspected.host_config.as_ref();
    Described {
        name: inspected.name.clone().unwrap_or_default(),
        image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
        labels: config.and_then(|c| c.labels.clone()).unwrap_or_default(),
        target: host.map(|h| ProbeTarget {
            security_opt: h.security_opt.clone().unwrap_or_default(),
            cap_add: h.cap_add.clone().unwrap_or_default(),
            cap_drop: h.cap_drop.clone().unwrap_or_default(),
            privileged: h.privileged.unwrap_or(false),
        }),
    }
}

/// Measures what a seccomp setting answers for the calls it refuses (src/refusals) and hands
/// it to the writer, which stores it and rewrites the Tracefiles concerned.
async fn probe(docker: Docker, target: ProbeTarget, key: String, to_writer: Sender<ToWriter>) {
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=PROBE_ATTEMPTS {
        match run_probe(&docker, &target).await {
            Ok(refusals) => {
                let _ = to_writer.send(ToWriter::Refusals {
                    seccomp: key,
                    errnos: refusals.by_name(),
                    allowed: refusals.allowed(),
                });
                return;
            }
            Err(e) if attempt < PROBE_ATTEMPTS => {
                tracing::warn!("{e}; probing again in {delay:?}");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => tracing::error!(
                "{e}: Tracefiles of containers with seccomp setting {key} get no \
                 ERRNO section, and profiles made from them answer every refused call EPERM"
            ),
        }
    }
}
