//! Tracefiles from the writer's side: a container's first window, windows that roll over,
//! names that may not land on the store, and rewriting the files that changed.

use std::sync::Arc;
use std::time::Instant;

use chrono::Local;
use rusqlite::{Connection, Transaction};

use super::{CgroupState, State, Traced, REWRITE_EVERY};
use crate::atomic_write::WriteError;
use crate::pipeline::ToReader;
use crate::registry::Container;
use crate::store::containers;
use crate::store::materialize::materialize;
use crate::store::record::Sheet;
use crate::tracefile::label::{self, LabelError};

impl State {
    /// A label like `app-%Y-W%V` names a new file when the window rolls over: start it, and
    /// reset the cgroup's sightings so what is used in the new window is seen again.
    pub(super) fn roll_windows(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let now = Local::now();
        let mut rolled = Vec::new();
        for (cgroup_id, state) in &self.cgroups {
            if let CgroupState::Traced(t) = state {
                // A stopped container starts no new file.
                if t.stopped.is_some() {
                    continue;
                }
                if let Ok(window) = t.container.pattern.expand(&now) {
                    if window != t.window {
                        rolled.push((*cgroup_id, window));
                    }
                }
            }
        }
        for (cgroup_id, window) in rolled {
            let window = match self.not_the_store(window) {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!("cgroup {cgroup_id}: new Tracefile window refused: {e}");
                    continue;
                }
            };
            let id = containers::tracefile_id(tx, &mut self.tracefile_ids, &window)?;
            self.keep_for_undo(cgroup_id);
            if let Some(CgroupState::Traced(t)) = self.cgroups.get_mut(&cgroup_id) {
                t.sheet.flush(tx)?;
                t.sheet = Sheet::load(tx, t.row, id, self.epoch_ms, crate::store::now_ms())?;
                self.dirty
                    .insert(std::mem::replace(&mut t.window, window.clone()));
                self.dirty.insert(window);
                // The new file starts with what the container uses from now on: it alone
                // reports its current use again.
                let _ = self.to_reader.send(ToReader::Forget { cgroup_id });
            }
        }
        Ok(())
    }

    /// A Tracefile name that would land on the store (kept in the data directory under a
    /// name without a reserved suffix) is refused.
    pub(super) fn not_the_store(&self, window: String) -> Result<String, LabelError> {
        let Some(store) = &self.config.store else {
            return Ok(window);
        };
        let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or(p.to_path_buf());
        let target = absolute(&self.config.data_dir.join(&window));
        let store = absolute(store);
        let kept = ["", "-wal", "-shm", "-journal", ".lock"]
            .iter()
            .any(|suffix| {
                let mut name = store.clone().into_os_string();
                name.push(suffix);
                target == std::path::Path::new(&name)
            });
        if kept {
            return Err(LabelError::Store(window));
        }
        Ok(window)
    }

    /// Rewrites dirty Tracefiles, each at most every `REWRITE_EVERY` unless `all`.
    pub(super) fn write_tracefiles(&mut self, conn: &Connection, all: bool) {
        let now = Instant::now();
        self.written
            .retain(|_, at| now.duration_since(*at) < REWRITE_EVERY);
        let due: Vec<String> = self
            .dirty
            .iter()
            .filter(|path| all || !self.written.contains_key(*path))
            .cloned()
            .collect();
        for path in due {
            self.dirty.remove(&path);
            self.written.insert(path.clone(), now);
            match materialize(conn, &path, self.config.runc) {
                Ok(tracefile) => {
                    let written = label::write_inside(
                        &self.config.data_dir,
                        &path,
                        tracefile.render().as_bytes(),
                    );
                    match written {
                        Ok(_) => {
                            self.failing_writes.remove(&path);
                        }
                        Err(e) => {
                            // An I/O error (a full disk) passes: try again; a refusal (a
                            // symlink planted on the way) stays. Each said once.
                            if self.failing_writes.insert(path.clone()) {
                                tracing::error!("writing Tracefile: {e}");
                            }
                            if matches!(e, LabelError::Write(WriteError::Io { .. })) {
                                self.dirty.insert(path);
                            }
                        }
                    }
                }
                Err(e) => {
                    if crate::logging::first_time(&format!("reading {path}: {e}")) {
                        tracing::error!("reading Tracefile `{path}` from the store: {e}")
                    }
                }
            }
        }
    }

    pub(super) fn resolve(
        &mut self,
        tx: &Transaction<'_>,
        container: Arc<Container>,
    ) -> rusqlite::Result<()> {
        let window = container
            .pattern
            .check_window(self.config.epoch)
            .and_then(|()| container.pattern.expand(&Local::now()))
            .and_then(|w| self.not_the_store(w));
        let window = match window {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(
                    "container {} ({}): tracefile label refused: {e}",
                    container.name,
                    container.short_id()
                );
                self.cgroups
                    .insert(container.cgroup_id, CgroupState::Ignored(Instant::now()));
                let _ = self.to_reader.send(ToReader::Untrack {
                    cgroup_id: container.cgroup_id,
                });
                return Ok(());
            }
        };
        let now = crate::store::now_ms();
        let row = containers::upsert(tx, &container, now)?;
        let tracefile_id = containers::tracefile_id(tx, &mut self.tracefile_ids, &window)?;
        if self.config.announce {
            println!(
                "ctrace: tracing container {} ({}) into {}",
                container.name,
                container.short_id(),
                self.config.data_dir.join(&window).display()
            );
        }
        let sheet = Sheet::load(tx, row, tracefile_id, self.epoch_ms, now)?;
        let waiting = match self.cgroups.insert(
            container.cgroup_id,
            CgroupState::Traced(Box::new(Traced {
                container: Arc::clone(&container),
                row,
                window: window.clone(),
                sheet,
                stopped: None,
            })),
        ) {
            Some(CgroupState::Pending(w)) => w,
            _ => Vec::new(),
        };
        for s in waiting {
            self.record(tx, &s)?;
        }
        self.dirty.insert(window);
        Ok(())
    }
}
