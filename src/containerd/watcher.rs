//! The containerd watcher: subscribes to the events of every namespace, takes an inventory,
//! then identifies the cgroups the kernel started tracking and follows containers to their
//! end; reconnects with back-off when containerd restarts. It sends the writer and the
//! reader the same messages as the Docker watcher.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use containerd_client::tonic::transport::Channel;
use crossbeam_channel::Sender;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::describe::Described;
use super::events::{self, Event};
use super::subscription::subscribe;
use super::{api, connect, DOCKER_NAMESPACE};
use crate::docker::pod::{self, Source};
use crate::kernel::event::NewCgroup;
use crate::pipeline::{ReaderControl, ToReader, ToWriter};
use crate::registry::Registry;
use crate::runtimes::backoff::Backoff;

mod identify;

/// How long a new cgroup may wait to be identified before it is dropped; also how long a
/// deleted container is remembered (a cgroup of its may still wait).
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// A container: its namespace and its id (ids are unique per namespace only).
type Key = (String, String);

pub struct Watcher {
    address: PathBuf,
    cgroup_root: PathBuf,
    to_writer: Sender<ToWriter>,
    to_reader: ReaderControl,
    /// The containers traced (by cgroup id and by container id).
    registry: Registry,
    /// `containerd-<version>`: part of the seccomp key stored with each container.
    engine: String,
    /// Every container of every namespace seen, as its record described it.
    known: HashMap<Key, Described>,
    /// Cgroup paths (relative to the cgroup2 mount) the specs of `known` name.
    by_cgroup: HashMap<String, Key>,
    /// Labelled containers, running or not: the syscall program stays attached while there
    /// is one, so a start is seen from its first call.
    labelled: HashSet<Key>,
    /// Pod sandboxes (containerd CRI) whose pod sets a Tracefile name: sandbox id → value.
    pods: HashMap<String, (String, Source)>,
    /// New cgroups not yet identified, with their deadline.
    unidentified: Vec<(NewCgroup, Instant)>,
    /// Labelled containers whose init process ended before they were traced (Unix ms).
    died: HashMap<Key, i64>,
    /// Deleted containers, forgotten once no cgroup of theirs can still wait.
    deleted: VecDeque<(Key, Instant)>,
    /// Seccomp keys of containers without a filter, stored as refusing nothing.
    unfiltered: HashSet<String>,
    /// Labelled containers whose cgroup is not named like an id, with the path announced
    /// to the kernel so that it is tracked from its creation all the same.
    announced: HashMap<Key, String>,
    /// Announced containers whose task exists but whose cgroup is not identified yet, with
    /// their init pid: traced from the task if the kernel did not report the cgroup in time.
    awaiting: Vec<(Key, u32, Instant)>,
}

impl Watcher {
    pub fn new(
        address: PathBuf,
        to_writer: Sender<ToWriter>,
        to_reader: ReaderControl,
        cgroup_root: PathBuf,
    ) -> Watcher {
        Watcher {
            address,
            cgroup_root,
            to_writer,
            to_reader,
            registry: Registry::default(),
            engine: String::new(),
            known: HashMap::new(),
            by_cgroup: HashMap::new(),
            labelled: HashSet::new(),
            pods: HashMap::new(),
            unidentified: Vec::new(),
            died: HashMap::new(),
            deleted: VecDeque::new(),
            unfiltered: HashSet::new(),
            announced: HashMap::new(),
            awaiting: Vec::new(),
        }
    }

    /// Runs until `stop` turns true; `ready` fires once connected and the inventory taken.
    pub async fn run(
        mut self,
        ready: oneshot::Sender<()>,
        mut new_cgroups: mpsc::UnboundedReceiver<NewCgroup>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ready = Some(ready);
        let mut backoff = Backoff::default();
        loop {
            let (channel, engine) = match connect(&self.address).await {
                Ok(connected) => connected,
                Err(e) => {
                    tracing::info!(
                        "containerd unavailable ({e}); retrying in {:?}",
                        backoff.delay()
                    );
                    if !backoff.wait(&mut stop).await {
                        return;
                    }
                    continue;
                }
            };
            backoff.reset();
            if ready.is_none() {
                tracing::info!("reconnected to containerd");
            }
            tracing::info!(
                "engine is {engine} at {}; namespace {DOCKER_NAMESPACE} is Docker's and \
                 not traced here",
                self.address.display()
            );
            self.engine = engine;
            let (mut envelopes, forwarding) = subscribe(&channel).await;
            self.inventory(&channel).await;
            if let Some(ready) = ready.take() {
                self.to_reader.applied(Duration::from_secs(10)).await;
                let _ = ready.send(());
            }
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                self.registry.report_size(&self.to_writer);
                tokio::select! {
                    _ = stop.changed() => {
                        forwarding.abort();
                        return;
                    }
                    Some(new) = new_cgroups.recv() => {
                        self.unidentified.push((new, Instant::now() + IDENTIFY_TIMEOUT));
                        self.identify_pending(&channel).await;
                    }
                    received = envelopes.recv() => match received {
                        Some(Ok(envelope)) => match events::decode(&envelope) {
                            Ok(Some(event)) => {
                                self.on_event(&channel, event).await;
                                self.identify_pending(&channel).await;
                            }
                            Ok(None) => {}
                            Err(e) => tracing::warn!("{e}"),
                        },
                        Some(Err(e)) => {
                            tracing::info!("containerd's event stream ended ({e}); reconnecting");
                            break;
                        }
                        None => break,
                    },
                    _ = tick.tick(), if !self.unidentified.is_empty() || !self.awaiting.is_empty() => {
                        self.identify_pending(&channel).await;
                        self.track_overdue();
                    }
                }
            }
            forwarding.abort();
        }
    }

    /// Every container of every namespace; the labelled ones with a live task are traced
    /// from now on.
    async fn inventory(&mut self, channel: &Channel) {
        let namespaces = match api::namespaces(channel).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("listing containerd's namespaces: {e}");
                return;
            }
        };
        for namespace in &namespaces {
            match api::containers(channel, namespace).await {
                Ok(records) => {
                    for record in &records {
                        self.learn(Described::from_record(namespace, record));
                    }
                }
                Err(e) => tracing::error!("listing containers of namespace {namespace}: {e}"),
            }
        }
        // Judged once every record is in: a pod container's Tracefile name may be its
        // sandbox's.
        let labelled: HashSet<Key> = self
            .known
            .iter()
            .filter(|(_, d)| self.traceable(d))
            .map(|(key, _)| key.clone())
            .collect();
        self.set_labelled(labelled.clone());
        for key in labelled {
            if self.registry.by_container_id(&key.1).is_some() {
                continue;
            }
            match api::live_task_pid(channel, &key.0, &key.1).await {
                Ok(Some(pid)) => self.track_running(&key, pid, false),
                Ok(None) => {}
                Err(e) => tracing::error!("task of container {} ({}): {e}", key.1, key.0),
            }
        }
    }

    async fn on_event(&mut self, channel: &Channel, event: Event) {
        match event {
            Event::ContainerCreated { namespace, id } => {
                match api::container(channel, &namespace, &id).await {
                    Ok(Some(record)) => {
                        let described = Described::from_record(&namespace, &record);
                        self.learn_sandbox(channel, &described).await;
                        let traceable = self.traceable(&described);
                        let key = self.learn(described);
                        let mut labelled = self.labelled.clone();
                        if traceable {
                            labelled.insert(key);
                        } else {
                            labelled.remove(&key);
                        }
                        self.set_labelled(labelled);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!("reading container {id} ({namespace}): {e}"),
                }
            }
            Event::ContainerDeleted { namespace, id } => {
                let key = (namespace, id);
                self.pods.remove(&key.1);
                if self.labelled.contains(&key) {
                    let mut labelled = self.labelled.clone();
                    labelled.remove(&key);
                    self.set_labelled(labelled);
                }
                self.forget_later(key);
            }
            Event::TaskCreated {
                namespace,
                container_id,
                pid,
            }
            | Event::TaskStarted {
                namespace,
                container_id,
                pid,
            } => {
                let key = (namespace, container_id);
                let unseen = self
                    .known
                    .get(&key)
                    .is_some_and(|d| !d.kernel_sees_creation());
                if unseen
                    && self.labelled.contains(&key)
                    && self.registry.by_container_id(&key.1).is_none()
                {
                    if !self.announced.contains_key(&key) {
                        self.track_running(&key, pid, true);
                    } else if !self.awaiting.iter().any(|(k, _, _)| *k == key) {
                        self.awaiting
                            .push((key, pid, Instant::now() + IDENTIFY_TIMEOUT));
                    }
                }
            }
            Event::InitEnded {
                namespace,
                container_id,
                at_ms,
            } => {
                let key = (namespace, container_id);
                if let Some(container) = self.registry.by_container_id(&key.1).cloned() {
                    self.stop_tracing(container.cgroup_id, at_ms);
                } else if self.labelled.contains(&key) {
                    self.died.insert(key, at_ms);
                }
            }
        }
    }

    /// Labelled (or in a labelled pod), and not Docker's.
    fn traceable(&self, d: &Described) -> bool {
        d.namespace != DOCKER_NAMESPACE && d.tracefile(&self.pods).is_some()
    }

    /// Remembers a container (and a sandbox's pod Tracefile name); returns its key.
    fn learn(&mut self, described: Described) -> Key {
        let key = (described.namespace.clone(), described.id.clone());
        if described.is_sandbox() {
            if let Some((value, source)) = pod::pod_tracefile(&described.labels) {
                self.pods
                    .insert(described.id.clone(), (value.to_string(), source));
            }
        }
        if let Some(path) = described.cgroup_relative() {
            self.by_cgroup.insert(path.to_string(), key.clone());
        }
        self.known.insert(key.clone(), described);
        key
    }

    /// A pod container whose sandbox this watcher has not seen (created before the stream
    /// was open, after the inventory): the sandbox is read once, for the pod's Tracefile name.
    async fn learn_sandbox(&mut self, channel: &Channel, described: &Described) {
        let Some(sandbox) = described.sandbox_id.as_deref() else {
            return;
        };
        let key = (described.namespace.clone(), sandbox.to_string());
        if self.known.contains_key(&key) {
            return;
        }
        match api::container(channel, &key.0, &key.1).await {
            Ok(Some(record)) => {
                self.learn(Described::from_record(&key.0, &record));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("reading pod sandbox {sandbox} ({}): {e}", key.0),
        }
    }

    /// What is known of a deleted container goes once no cgroup can still wait for it.
    fn forget_later(&mut self, key: Key) {
        let now = Instant::now();
        while let Some((_, until)) = self.deleted.front() {
            if *until > now {
                break;
            }
            if let Some((gone, _)) = self.deleted.pop_front() {
                if let Some(d) = self.known.remove(&gone) {
                    if let Some(path) = d.cgroup_relative() {
                        self.by_cgroup.remove(path);
                    }
                }
                self.died.remove(&gone);
            }
        }
        self.deleted.push_back((key, now + IDENTIFY_TIMEOUT));
    }

    fn set_labelled(&mut self, labelled: HashSet<Key>) {
        if labelled != self.labelled || labelled.is_empty() {
            let _ = self
                .to_reader
                .send(ToReader::LabelledContainers(labelled.len()));
        }
        let gone: Vec<Key> = self.labelled.difference(&labelled).cloned().collect();
        for key in gone {
            if let Some(path) = self.announced.remove(&key) {
                let _ = self.to_reader.send(ToReader::ExpectCgroup {
                    path,
                    expected: false,
                });
            }
        }
        // containerd learns of a container (`create`) before its task's cgroup is made.
        for key in labelled.difference(&self.labelled) {
            let Some(d) = self.known.get(key) else {
                continue;
            };
            if let Some(relative) = d.cgroup_relative().filter(|_| !d.kernel_sees_creation()) {
                let path = format!("/{relative}");
                let _ = self.to_reader.send(ToReader::ExpectCgroup {
                    path: path.clone(),
                    expected: true,
                });
                self.announced.insert(key.clone(), path);
            }
        }
        self.labelled = labelled;
    }

    /// Announced containers whose cgroup the kernel did not report in time (announced too
    /// late, or refused): traced from their task.
    fn track_overdue(&mut self) {
        let now = Instant::now();
        for (key, pid, deadline) in std::mem::take(&mut self.awaiting) {
            if self.registry.by_container_id(&key.1).is_some() || !self.labelled.contains(&key) {
                continue;
            }
            if now >= deadline {
                self.track_running(&key, pid, true);
            } else {
                self.awaiting.push((key, pid, deadline));
            }
        }
    }

    fn stop_tracing(&mut self, cgroup_id: u64, at_ms: i64) {
        let _ = self.to_reader.send(ToReader::Stopped { cgroup_id, at_ms });
        self.registry.remove(cgroup_id);
    }
}
