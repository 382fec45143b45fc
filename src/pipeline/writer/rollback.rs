//! After a rolled-back transaction (src/pipeline/store_faults.rs): the cgroups' states go
//! back to what they were before it, and the sheets are loaded again from the store.

use rusqlite::Transaction;

use super::{CgroupState, State};
use crate::store::containers;
use crate::store::record::Sheet;

impl State {
    /// Saves a cgroup's state before this transaction's first change of it.
    pub(super) fn keep_for_undo(&mut self, cgroup_id: u64) {
        if !self.undo.contains_key(&cgroup_id) {
            let before = self.cgroups.get(&cgroup_id).cloned();
            self.undo.insert(cgroup_id, before);
        }
    }

    /// The transaction was rolled back: the cgroups' states go back to what they were, the
    /// ids created meanwhile are forgotten, and the sheets are loaded again from the store.
    pub(super) fn roll_back(&mut self) {
        for (cgroup_id, before) in self.undo.drain() {
            match before {
                Some(state) => self.cgroups.insert(cgroup_id, state),
                None => self.cgroups.remove(&cgroup_id),
            };
        }
        self.tracefile_ids.clear();
        self.touched.clear();
        self.reload = true;
    }

    /// After a rollback: every traced cgroup's sheet as the store has it.
    pub(super) fn reload_sheets(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if !self.reload {
            return Ok(());
        }
        let now = crate::store::now_ms();
        for state in self.cgroups.values_mut() {
            if let CgroupState::Traced(t) = state {
                let id = containers::tracefile_id(tx, &mut self.tracefile_ids, &t.window)?;
                t.sheet = Sheet::load(tx, t.row, id, self.epoch_ms, now)?;
            }
        }
        // Committed with this transaction; a rollback sets it again.
        self.reload = false;
        Ok(())
    }
}
