//! A report over several stores (one per node): each store's parts are gathered as for one
//! store, parts of the same title (the same Tracefile or container name on several nodes)
//! are merged, and every store part gets its coverage (nodes, containers, runs per item).

use anyhow::Context;

use super::model::{self, Baseline, Part, Report};
use crate::cli::Selection;
use crate::store::coverage::CoverageBuilder;
use crate::store::fleet::Node;

/// The runtime baseline of the report: the store's, or with several stores each one's,
/// united (as `options` adds them), named by engine and node.
pub fn load_baseline(nodes: &[Node]) -> anyhow::Result<Option<Baseline>> {
    if let [node] = nodes {
        return model::load_baseline(&node.conn)
            .with_context(|| format!("reading the runtime baseline of `{}`", node.path.display()));
    }
    let mut union: Option<Baseline> = None;
    for node in nodes {
        let Some(b) = model::load_baseline(&node.conn).with_context(|| {
            format!("reading the runtime baseline of `{}`", node.path.display())
        })?
        else {
            continue;
        };
        let source = format!("{} on {}", b.source, node.name);
        match &mut union {
            None => {
                union = Some(Baseline {
                    source,
                    tracefile: b.tracefile,
                })
            }
            Some(u) => {
                u.source = format!("{}; {source}", u.source);
                u.tracefile.merge(&b.tracefile);
            }
        }
    }
    Ok(union)
}

/// Adds the parts of every node's selection, merged by title, each with its coverage.
pub fn add_nodes(
    report: &mut Report,
    nodes: &[Node],
    sel: &Selection,
    by_container: bool,
) -> anyhow::Result<()> {
    let first = report.parts.len();
    for (i, node) in nodes.iter().enumerate() {
        let windows = report.windows.len();
        model::add_store(report, &node.conn, &node.path, sel, by_container, i)?;
        if nodes.len() > 1 {
            for w in &mut report.windows[windows..] {
                w.label = format!("{} on {}", w.label, node.name);
            }
        }
    }
    let stored = report.parts.split_off(first);
    let mut merged: Vec<Part> = Vec::new();
    for part in stored {
        match merged
            .iter_mut()
            .find(|m| m.what == part.what && m.title == part.title)
        {
            Some(m) => merge(m, part),
            None => merged.push(part),
        }
    }
    for part in &mut merged {
        let mut coverage = CoverageBuilder::default();
        for &(i, scope) in &part.scopes {
            let node = &nodes[i];
            coverage
                .add(&node.name, &node.conn, sel, scope)
                .with_context(|| format!("coverage in store `{}`", node.path.display()))?;
        }
        part.coverage = Some(coverage.finish());
        part.profile_allowed = model::profile_size(&part.recorded, report.baseline.as_ref());
    }
    report.parts.extend(merged);
    Ok(())
}

/// One part seen on another node joins the first.
fn merge(into: &mut Part, part: Part) {
    into.recorded.merge(&part.recorded);
    into.denied.extend(part.denied);
    into.containers.extend(part.containers);
    into.containers.sort_by_key(|c| c.started_at);
    if let (Some(a), Some(b)) = (&mut into.sightings, part.sightings) {
        a.extend(b);
        a.sort_by_key(|x| x.at_ms);
    }
    into.scopes.extend(part.scopes);
}
