//! The containers being traced, as a watcher (Docker's, containerd's) knows them: an index by cgroup id (what
//! the kernel reports) and by container id (what Docker's events name), both O(1). The
//! watcher owns it; the writer gets each [`Container`] in `ToWriter::Resolved`.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::pipeline::ToWriter;

use crate::tracefile::label::TracefilePattern;

/// A labelled container, as Docker describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub container_id: String,
    pub name: String,
    pub image: String,
    pub pattern: TracefilePattern,
    pub labels: HashMap<String, String>,
    pub cgroup_id: u64,
    /// Its seccomp setting, as the errno probe's key (`containers.seccomp`); None if unknown.
    pub seccomp: Option<String>,
    /// Its pod, when a CRI runtime (cri-dockerd) created it for kubelet.
    pub pod: Option<crate::docker::pod::Pod>,
}

impl Container {
    pub fn short_id(&self) -> &str {
        self.container_id.get(..12).unwrap_or(&self.container_id)
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    by_cgroup: HashMap<u64, Arc<Container>>,
    /// Container id → cgroup id.
    by_id: HashMap<String, u64>,
    /// The size as last sent to the store (`meta.registry_containers`).
    reported: Option<usize>,
}

impl Registry {
    /// Stores the size when it changed (occupancy, for operators and tests).
    pub fn report_size(&mut self, to_writer: &Sender<ToWriter>) {
        let size = self.len();
        if self.reported != Some(size) {
            self.reported = Some(size);
            let _ = to_writer.send(ToWriter::KernelCounter {
                key: "registry_containers",
                value: size as u64,
            });
        }
    }

    /// Adds a container, replacing one with the same cgroup or container id.
    pub fn insert(&mut self, container: Arc<Container>) {
        if let Some(cgroup_id) = self.by_id.get(&container.container_id).copied() {
            self.remove(cgroup_id);
        }
        self.remove(container.cgroup_id);
        self.by_id
            .insert(container.container_id.clone(), container.cgroup_id);
        self.by_cgroup.insert(container.cgroup_id, container);
    }

    pub fn get(&self, cgroup_id: u64) -> Option<&Arc<Container>> {
        self.by_cgroup.get(&cgroup_id)
    }

    pub fn by_container_id(&self, container_id: &str) -> Option<&Arc<Container>> {
        self.get(*self.by_id.get(container_id)?)
    }

    pub fn remove(&mut self, cgroup_id: u64) -> Option<Arc<Container>> {
        let container = self.by_cgroup.remove(&cgroup_id)?;
        self.by_id.remove(&container.container_id);
        Some(container)
    }

    pub fn len(&self) -> usize {
        self.by_cgroup.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_cgroup.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: &str, cgroup_id: u64) -> Arc<Container> {
        Arc::new(Container {
            container_id: id.into(),
            name: id.into(),
            image: "busybox".into(),
            pattern: TracefilePattern::parse("t").unwrap(),
            labels: HashMap::new(),
            cgroup_id,
            seccomp: None,
            pod: None,
        })
    }

    #[test]
    fn both_indexes_follow_inserts_and_removals() {
        let mut registry = Registry::default();
        registry.insert(container("a", 1));
        registry.insert(container("b", 2));
        assert_eq!(registry.by_container_id("b").map(|c| c.cgroup_id), Some(2));
        assert_eq!(registry.get(1).map(|c| c.name.as_str()), Some("a"));
        // The same container in a new cgroup replaces the old entry.
        registry.insert(container("a", 3));
        assert!(registry.get(1).is_none());
        assert_eq!(registry.by_container_id("a").map(|c| c.cgroup_id), Some(3));
        assert_eq!(registry.remove(2).map(|c| c.cgroup_id), Some(2));
        assert!(registry.by_container_id("b").is_none());
        assert_eq!(registry.len(), 1);
    }
}
