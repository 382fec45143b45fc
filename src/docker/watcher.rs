//! The Docker watcher: inventory at start, then events; identifies the cgroups the kernel
//! started tracking; reconnects with back-off when dockerd restarts.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use bollard::query_parameters::{EventsOptions, InspectContainerOptions, ListContainersOptions};
use bollard::Docker;
use crossbeam_channel::Sender;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::docker::cgroup;
use crate::docker::pod::{self, Source};
use crate::kernel::event::NewCgroup;
use crate::pipeline::{ReaderControl, ToReader, ToWriter};
use crate::refusals::ProbeTarget;
use crate::registry::Registry;
use crate::runtimes::backoff::Backoff;

mod identify;
mod late;

use identify::describe;

/// How long a new cgroup may wait to be identified before it is dropped.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// Runs of the errno probe for one seccomp setting before giving up.
const PROBE_ATTEMPTS: u32 = 3;

/// What Docker says of a container, from a `create` event or an inspection.
#[derive(Debug, Clone)]
struct Described {
    name: String,
    image: String,
    labels: HashMap<String, String>,
    /// Its seccomp settings; None when only a `create` event described it.
    target: Option<ProbeTarget>,
}

pub struct Watcher {
    /// The containers traced (by cgroup id and by container id).
    registry: Registry,
    pub to_writer: Sender<ToWriter>,
    pub to_reader: ReaderControl,
    pub cgroup_root: PathBuf,
    /// Containers described by `create` events: a container removed right after it ran can
    /// no longer be inspected.
    described: HashMap<String, Described>,
    /// New cgroups not yet identified, with their deadline.
    unidentified: Vec<(NewCgroup, Instant)>,
    /// Labelled containers Docker has, running or not: the reader keeps the syscall program
    /// attached while there is one, so that a start is seen from its first call (attaching
    /// when its cgroup appears would be too late for the runtime's first calls).
    labelled: HashSet<String>,
    /// The engine's version: part of every seccomp setting's key (defaults change with it).
    engine: String,
    /// Seccomp settings (`containers.seccomp`) whose probe this daemon started.
    probed: HashSet<String>,
    /// Containers that died or were destroyed before their cgroup was identified (late.rs).
    late: late::Late,
    /// Pod sandboxes (cri-dockerd) whose pod sets a Tracefile name: sandbox id → its value.
    pods: HashMap<String, (String, Source)>,
    /// Sandboxes inspected because their `create` event came before the event stream did.
    sandboxes_seen: HashSet<String>,
}

/// podman's Docker-compatible API names itself in the version's components.
pub fn is_podman(version: &bollard::models::SystemVersion) -> bool {
    version
        .components
        .iter()
        .flatten()
        .any(|c| c.name.starts_with("Podman"))
}

/// The engine's version as stores key by it: Docker's as it is, podman's as `podman-<version>`
/// (a podman and a Docker version must not name the same baseline or seccomp setting).
pub fn engine_version(version: &bollard::models::SystemVersion) -> String {
    let number = version.version.clone().unwrap_or_default();
    if is_podman(version) {
        format!("podman-{number}")
    } else {
        number
    }
}

pub async fn connect() -> Result<Docker, bollard::errors::Error> {
    let docker = Docker::connect_with_local_defaults()?;
    docker.negotiate_version().await
}

impl Watcher {
    /// Seccomp settings the store has measured already: not probed again.
    pub fn with_measured(mut self, measured: HashSet<String>) -> Watcher {
        self.probed = measured;
        self
    }

    pub fn new(
        to_writer: Sender<ToWriter>,
        to_reader: ReaderControl,
        cgroup_root: PathBuf,
    ) -> Watcher {
        Watcher {
            registry: Registry::default(),
            to_writer,
            to_reader,
            cgroup_root,
            described: HashMap::new(),
            unidentified: Vec::new(),
            labelled: HashSet::new(),
            engine: String::new(),
            probed: HashSet::new(),
            late: late::Late::default(),
            pods: HashMap::new(),
            sandboxes_seen: HashSet::new(),
        }
    }

    /// Runs until `stop` turns true. `first` is an already connected client, if any (else it
    /// keeps connecting, silently: the caller said it waits); `ready` fires once connected
    /// and the inventory taken.
    pub async fn run(
        mut self,
        first: Option<Docker>,
        ready: oneshot::Sender<()>,
        mut new_cgroups: mpsc::UnboundedReceiver<NewCgroup>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut docker = first;
        let mut ready = Some(ready);
        let mut backoff = Backoff::default();
        loop {
            let client = match docker.take() {
                Some(d) => d,
                None => match connect().await {
                    Ok(d) if ready.is_some() => d,
                    Ok(d) => {
                        tracing::info!("reconnected to Docker");
                        d
                    }
                    Err(e) => {
                        if ready.is_none() {
                            tracing::info!(
                                "Docker unavailable ({e}); retrying in {:?}",
                                backoff.delay()
                            );
                        }
                        if !backoff.wait(&mut stop).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            backoff.reset();
            let version = client.version().await;
            let podman = version.as_ref().is_ok_and(is_podman);
            self.engine = match version {
                Ok(v) => engine_version(&v),
                Err(e) => {
                    tracing::warn!("asking Docker for its version: {e}");
                    String::new()
                }
            };
            if podman {
                tracing::info!(
                    "engine is {}: its events arrive after a container started, so \
                     the syscall program stays attached while connected",
                    self.engine
                );
            }
            let _ = self.to_reader.send(ToReader::EngineEventsLate(podman));
            let filters = HashMap::from([("type".to_string(), vec!["container".to_string()])]);
            let mut events = client.events(Some(EventsOptions {
                filters: Some(filters),
                ..Default::default()
            }));
            self.inventory(&client).await;
            if let Some(ready) = ready.take() {
                self.to_reader.applied(Duration::from_secs(10)).await;
                let _ = ready.send(());
            }
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                self.registry.report_size(&self.to_writer);
                tokio::select! {
                    _ = stop.changed() => return,
                    Some(new) = new_cgroups.recv() => {
                        self.unidentified.push((new, Instant::now() + IDENTIFY_TIMEOUT));
                        self.identify_pending(&client).await;
                    }
                    event = events.next() => match event {
                        Some(Ok(ev)) => {
                            if ev.action.as_deref() == Some("create") {
                                if let Some(attributes) =
                                    ev.actor.as_ref().and_then(|a| a.attributes.as_ref())
                                {
                                    self.learn_sandbox(&client, attributes).await;
                                }
                            }
                            self.on_event(ev);
                            self.identify_pending(&client).await;
                        }
                        Some(Err(e)) => {
                            tracing::info!("Docker event stream failed: {e}");
                            break;
                        }
                        None => {
                            tracing::info!("Docker event stream ended (dockerd restarting?)");
                            break;
                        }
                    },
                    _ = tick.tick(), if !self.unidentified.is_empty() => {
                        self.identify_pending(&client).await;
                    }
                }
            }
        }
    }

    /// Labelled containers Docker has; the running ones are traced from now on.
    async fn inventory(&mut self, docker: &Docker) {
        // Every container: a pod's Tracefile name is a label of its sandbox (pod.rs), which
        // Docker's label filter cannot join to the pod's containers.
        let listed = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..Default::default()
            }))
            .await;
        let mut containers = match listed {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("listing containers: {e}");
                return;
            }
        };
        let no_labels = HashMap::new();
        for c in &containers {
            if let Some(id) = &c.id {
                self.note_sandbox(id, c.labels.as_ref().unwrap_or(&no_labels));
            }
        }
        containers.retain(|c| {
            pod::tracefile(c.labels.as_ref().unwrap_or(&no_labels), &self.pods).is_some()
        });
        let labelled: HashSet<String> = containers.iter().filter_map(|c| c.id.clone()).collect();
        self.set_labelled(labelled);
        for summary in containers {
            let Some(id) = summary.id else { continue };
            if summary
                .state
                .as_ref()
                .is_some_and(|s| s.to_string() != "running")
            {
                continue;
            }
            if self.registry.by_container_id(&id).is_some() {
                continue;
            }
            let inspected = match docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
            {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!("inspecting container {id}: {e}");
                    continue;
                }
            };
            let Some(pid) = inspected
                .state
                .as_ref()
                .and_then(|s| s.pid)
                .filter(|p| *p > 0)
            else {
                continue;
            };
            let described = describe(&inspected);
            let located = cgroup::cgroup_of_pid(pid as u32)
                .and_then(|rel| cgroup::cgroup_id(&self.cgroup_root, &rel).map(|cid| (rel, cid)));
            let (relative, cgroup_id) = match located {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!("container {id}: {e}");
                    continue;
                }
            };
            if let Some(container) = self.accept(docker, &id, &described, cgroup_id) {
                let _ = self.to_writer.send(ToWriter::Resolved(container));
                let _ = self.to_reader.send(ToReader::Track {
                    cgroup_id,
                    path: self.cgroup_root.join(relative.trim_start_matches('/')),
                });
            }
        }
    }

    fn on_event(&mut self, ev: bollard::models::EventMessage) {
        self.late.event_handled(ev.time_nano);
        let Some(actor) = ev.actor else { return };
        let Some(id) = actor.id else { return };
        let action = ev.action.unwrap_or_default();
        match action.as_str() {
            "create" => {
                let mut attributes = actor.attributes.unwrap_or_default();
                let name = attributes.remove("name").unwrap_or_default();
                let image = attributes.remove("image").unwrap_or_default();
                // Remaining attributes are the container's labels.
                self.note_sandbox(&id, &attributes);
                if pod::tracefile(&attributes, &self.pods).is_some() {
                    let mut labelled = self.labelled.clone();
                    labelled.insert(id.clone());
                    self.set_labelled(labelled);
                }
                self.described.insert(
                    id,
                    Described {
                        name,
                        image,
                        labels: attributes,
                        target: None,
                    },
                );
            }
            "die" => {
                let at_ms = ev
                    .time_nano
                    .map(|n| n / 1_000_000)
                    .unwrap_or_else(crate::store::now_ms);
                self.container_died(id, at_ms);
            }
            "destroy" => {
                self.pods.remove(&id);
                self.sandboxes_seen.remove(&id);
                if self.labelled.contains(&id) {
                    let mut labelled = self.labelled.clone();
                    labelled.remove(&id);
                    self.set_labelled(labelled);
                }
                self.container_destroyed(id);
            }
            _ => {}
        }
    }

    /// A pod sandbox whose pod sets a Tracefile name: its containers are labelled too.
    fn note_sandbox(&mut self, id: &str, labels: &HashMap<String, String>) {
        if !pod::is_sandbox(labels) {
            return;
        }
        if let Some((value, source)) = pod::pod_tracefile(labels) {
            self.pods
                .insert(id.to_string(), (value.to_string(), source));
        }
    }

    fn set_labelled(&mut self, labelled: HashSet<String>) {
        if labelled != self.labelled || labelled.is_empty() {
            let _ = self
                .to_reader
                .send(ToReader::LabelledContainers(labelled.len()));
        }
        self.labelled = labelled;
    }
}
