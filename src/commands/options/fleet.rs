//! Selections over several stores (`--db a.db --db b.db`, `--db DIR`), shared by `options`,
//! `diff` and `report`: the selection is applied to every store and the union taken; each
//! store's runtime baseline is added for its own containers.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::Selection;
use crate::profile::formats::{BaselineSummary, StoreBaseline};
use crate::store::baseline::stored_baseline;
use crate::store::coverage::{Coverage, CoverageBuilder};
use crate::store::fleet::{open_nodes, Node};
use crate::store::select::{select_tracefile, Scope};
use crate::tracefile::Tracefile;

/// A selection's union over the nodes.
pub struct FleetSelection {
    pub union: Tracefile,
    /// Indexes of the nodes where the selection matched something.
    pub matched: Vec<usize>,
    pub coverage: Coverage,
}

/// Opens every store; an error names the store concerned.
pub fn open(dbs: &[PathBuf]) -> anyhow::Result<Vec<Node>> {
    Ok(open_nodes(dbs)?)
}

/// The error of a selection that matches nothing in any of the stores.
pub fn matches_nothing(nodes: &[Node]) -> anyhow::Error {
    match nodes {
        [node] => crate::store::select::matches_nothing(&node.path),
        _ => anyhow::anyhow!(
            "the selection matches nothing recorded in any of the {} stores ({}); check \
             --since/--until and the container filters",
            nodes.len(),
            nodes
                .iter()
                .map(|n| format!("`{}`", n.path.display()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `sel` applied to every node; `clean` is given each node's part (to drop names this
/// build does not know) before it joins the union. Coverage only `with_coverage`.
pub fn select(
    nodes: &[Node],
    sel: &Selection,
    with_coverage: bool,
    mut clean: impl FnMut(&Path, &mut Tracefile),
) -> anyhow::Result<FleetSelection> {
    let mut union = Tracefile::default();
    let mut matched = Vec::new();
    let mut coverage = CoverageBuilder::default();
    for (i, node) in nodes.iter().enumerate() {
        let mut part = select_tracefile(&node.conn, sel)
            .with_context(|| format!("selecting from store `{}`", node.path.display()))?;
        if part.is_empty() {
            continue;
        }
        clean(&node.path, &mut part);
        union.merge(&part);
        if with_coverage {
            coverage
                .add(&node.name, &node.conn, sel, Scope::All)
                .with_context(|| format!("coverage in store `{}`", node.path.display()))?;
        }
        matched.push(i);
    }
    Ok(FleetSelection {
        union,
        matched,
        coverage: coverage.finish(),
    })
}

/// Each matched node's own runtime baseline, united: stores of different engine versions
/// keep each their own. A node without one is an error naming it (`no_baseline`).
pub fn baselines(
    nodes: &[Node],
    matched: &[usize],
    no_baseline: impl Fn(&Path, &str) -> anyhow::Error,
) -> anyhow::Result<(Tracefile, BaselineSummary)> {
    let mut union = Tracefile::default();
    let mut stores = Vec::new();
    for &i in matched {
        let node = &nodes[i];
        let Some(b) = stored_baseline(&node.conn)? else {
            return Err(no_baseline(
                &node.path,
                &format!(
                    "store `{}` (node {}) has no requirements recorded",
                    node.path.display(),
                    node.name
                ),
            ));
        };
        stores.push(StoreBaseline {
            node: node.name.clone(),
            path: node.path.display().to_string(),
            engine_version: b.engine_version,
            capabilities: b.tracefile.capabilities.len(),
            syscalls: b.tracefile.syscall_count(),
        });
        union.merge(&b.tracefile);
    }
    let mut engines: Vec<&str> = stores.iter().map(|s| s.engine_version.as_str()).collect();
    engines.sort_unstable();
    engines.dedup();
    let note = format!(
        "each store's own runtime baseline for its containers, united (engine version{} {})",
        if engines.len() == 1 { "" } else { "s" },
        engines.join(", ")
    );
    let summary = BaselineSummary {
        source: "stores".to_string(),
        path: None,
        capabilities: union.capabilities.len(),
        syscalls: union.syscall_count(),
        stores,
        note: Some(note),
    };
    Ok((union, summary))
}
