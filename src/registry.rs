//! Which cgroups belong to which traced containers, shared by the Docker watcher (writes),
//! the writer (reads) and the trace command (reports).

use std::collections::HashMap;
use std::sync::Arc;

use dashmap::DashMap;

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
    /// It was already running its entrypoint when tracing started.
    pub predates_daemon: bool,
    /// Its seccomp setting, as the errno probe's key (`containers.seccomp`); None if unknown.
    pub seccomp: Option<String>,
}

impl Container {
    pub fn short_id(&self) -> &str {
        self.container_id.get(..12).unwrap_or(&self.container_id)
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    by_cgroup: DashMap<u64, Arc<Container>>,
}

impl Registry {
    pub fn insert(&self, container: Arc<Container>) {
        self.by_cgroup.insert(container.cgroup_id, container);
    }

    pub fn get(&self, cgroup_id: u64) -> Option<Arc<Container>> {
        self.by_cgroup
            .get(&cgroup_id)
            .map(|c| Arc::clone(c.value()))
    }

    pub fn remove(&self, cgroup_id: u64) -> Option<Arc<Container>> {
        self.by_cgroup.remove(&cgroup_id).map(|(_, c)| c)
    }

    pub fn by_container_id(&self, container_id: &str) -> Option<Arc<Container>> {
        self.by_cgroup
            .iter()
            .find(|c| c.container_id == container_id)
            .map(|c| Arc::clone(c.value()))
    }

    pub fn len(&self) -> usize {
        self.by_cgroup.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_cgroup.is_empty()
    }
}
