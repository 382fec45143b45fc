//! Coverage: per syscall (per ABI) and granted capability of a selection, on how many nodes
//! (stores), containers and runs it was seen. A run is one `containers` row (one container's
//! life, from its id); a container is a name on a node (`web` started again is one container,
//! two runs). Coverage informs: the profile is still the union of everything selected.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::SystemTime;

use rusqlite::{params_from_iter, Connection};
use serde::Serialize;

use super::bits::{self, Bits, Class};
use super::select::{Filter, Scope, SelectError};
use crate::cli::Selection;

/// One item's coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoverageItem {
    pub name: String,
    /// `syscall` or `capability`.
    pub kind: &'static str,
    /// The syscall's ABI (`x86_64`, `i386`, `x32`); none for a capability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abi: Option<&'static str>,
    pub nodes: usize,
    pub containers: usize,
    pub runs: usize,
}

/// How much the selection holds, and how many items rest on little of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoverageTotals {
    pub nodes: usize,
    pub containers: usize,
    pub runs: usize,
    /// Items seen on one node only (of several).
    pub single_node: usize,
    /// Items seen in one run only: they rest on a single container run.
    pub single_run: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// By kind, ABI and name.
    pub items: Vec<CoverageItem>,
    pub totals: CoverageTotals,
}

/// Where one item was seen: node indexes, (node, container name) pairs, and how many runs.
#[derive(Debug, Default)]
struct Seen {
    nodes: BTreeSet<usize>,
    containers: BTreeSet<(usize, usize)>,
    runs: usize,
}

/// Gathers coverage over one or more stores (call [`CoverageBuilder::add`] per store).
#[derive(Debug, Default)]
pub struct CoverageBuilder {
    nodes: Vec<String>,
    names: HashMap<String, usize>,
    items: BTreeMap<(Class, u32), Seen>,
    all: Seen,
}

impl CoverageBuilder {
    /// Adds what `sel` (within `scope`) selects in the store of node `node`.
    pub fn add(
        &mut self,
        node: &str,
        conn: &Connection,
        sel: &Selection,
        scope: Scope,
    ) -> Result<(), SelectError> {
        let n = match self.nodes.iter().position(|x| x == node) {
            Some(n) => n,
            None => {
                self.nodes.push(node.to_string());
                self.nodes.len() - 1
            }
        };
        let filter = Filter::new(sel, scope).with_run_times(sel, SystemTime::now())?;
        let mut stmt = conn.prepare(&format!(
            "SELECT r.container, c.name, r.kind, r.abi, {} FROM runs r \
             JOIN containers c ON c.id = r.container \
             WHERE r.kind IN ('syscall', 'cap_granted') AND {}",
            bits::WORD_COLUMNS,
            filter.sql
        ))?;
        let mut rows = stmt.query(params_from_iter(filter.params().iter()))?;
        // Each run's sets first (a run has many rows), then each item once per run.
        let mut runs: HashMap<i64, (usize, BTreeMap<Class, Bits>)> = HashMap::new();
        while let Some(row) = rows.next()? {
            let kind: String = row.get(2)?;
            let abi: Option<String> = row.get(3)?;
            let Some(class) = Class::from_columns(&kind, abi.as_deref()) else {
                continue;
            };
            let run: i64 = row.get(0)?;
            let set = Bits::from_row(row, 4)?;
            let (_, sets) = match runs.entry(run) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let name: String = row.get(1)?;
                    let next = self.names.len();
                    let c = *self.names.entry(name).or_insert(next);
                    e.insert((c, BTreeMap::new()))
                }
            };
            let entry = sets.entry(class).or_default();
            *entry = entry.union(&set);
        }
        for (c, sets) in runs.into_values() {
            self.all.nodes.insert(n);
            self.all.containers.insert((n, c));
            self.all.runs += 1;
            for (class, set) in sets {
                for nr in set.iter() {
                    let seen = self.items.entry((class, nr)).or_default();
                    seen.nodes.insert(n);
                    seen.containers.insert((n, c));
                    seen.runs += 1;
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Coverage {
        let mut items: Vec<CoverageItem> = self
            .items
            .into_iter()
            .map(|((class, nr), seen)| CoverageItem {
                name: class.name(nr),
                kind: match class {
                    Class::Syscall(_) => "syscall",
                    _ => "capability",
                },
                abi: class.abi(),
                nodes: seen.nodes.len(),
                containers: seen.containers.len(),
                runs: seen.runs,
            })
            .collect();
        items.sort_by(|a, b| (a.kind, a.abi, &a.name).cmp(&(b.kind, b.abi, &b.name)));
        let nodes = self.all.nodes.len();
        let totals = CoverageTotals {
            nodes,
            containers: self.all.containers.len(),
            runs: self.all.runs,
            single_node: if nodes > 1 {
                items.iter().filter(|i| i.nodes == 1).count()
            } else {
                0
            },
            single_run: items.iter().filter(|i| i.runs == 1).count(),
        };
        Coverage { items, totals }
    }
}
