//! What a report shows, gathered from the store (through the same selection code as
//! `options`) or from Tracefiles, before any HTML is made.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{params, Connection};

use crate::abi::Abi;
use crate::cli::Selection;
use crate::commands::diff::{diff, SectionDiff};
use crate::profile::SeccompProfile;
use crate::store::baseline::stored_baseline;
use crate::store::coverage::Coverage;
use crate::store::materialize::materialize;
pub use crate::store::refusals::DefaultAllowlist;
use crate::store::select::{
    select_containers, select_denied, select_parts, select_scoped, select_sightings, Scope,
    SelectedContainer, Sighting,
};
use crate::tracefile::collect::collect_tracefiles;
use crate::tracefile::parse::read_tracefile;
use crate::tracefile::Tracefile;

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Unix ms.
    pub generated_ms: i64,
    /// Where the data came from: `store data/ctrace.db`, Tracefile paths.
    pub sources: Vec<String>,
    /// The selection, as given on the command line (`--since 7d`, `--label web`).
    pub selection: Vec<String>,
    /// The runtime baseline every generated profile adds (`ctrace requirements`).
    pub baseline: Option<Baseline>,
    /// What Docker's default seccomp setting allows, as the errno probe measured it
    /// (`refusals.allowed`), if the store has a measurement.
    pub default_allowlist: Option<DefaultAllowlist>,
    pub parts: Vec<Part>,
    /// Per windowed label, its newest two windows compared.
    pub windows: Vec<WindowChange>,
}

#[derive(Debug, Clone)]
pub struct Baseline {
    /// `engine 20.10.24`.
    pub source: String,
    pub tracefile: Tracefile,
}

/// One Tracefile, container or Tracefile file of the report.
#[derive(Debug, Clone, Default)]
pub struct Part {
    /// `Tracefile`, `Container` or `Tracefile file`.
    pub what: &'static str,
    pub title: String,
    pub containers: Vec<SelectedContainer>,
    /// Syscalls per ABI and granted capabilities (the application's, unless `--runc`).
    pub recorded: Tracefile,
    pub denied: BTreeSet<String>,
    /// First sightings in time order; `None` where the input keeps no times (a file).
    pub sightings: Option<Vec<Sighting>>,
    /// Syscall names the profile `ctrace options` makes for this part allows (with the
    /// baseline, when known).
    pub profile_allowed: usize,
    /// Where the part comes from: (node index, scope in that node's store).
    pub scopes: Vec<(usize, Scope)>,
    /// On how many nodes, containers and runs each item was seen (store parts).
    pub coverage: Option<Coverage>,
}

/// The newest two windows of one windowed label (`app-%Y%m%d`).
#[derive(Debug, Clone)]
pub struct WindowChange {
    pub label: String,
    pub older: String,
    pub newer: String,
    /// `diff`'s sections: removed (only in the older window) and added.
    pub changes: Vec<SectionDiff>,
}

pub fn profile_size(recorded: &Tracefile, baseline: Option<&Baseline>) -> usize {
    let mut union = recorded.clone();
    if let Some(b) = baseline {
        union.merge(&b.tracefile);
    }
    SeccompProfile::from_tracefile(&union).allowed().count()
}

/// The runtime baseline cached in the store, as `options` adds it.
pub fn load_baseline(conn: &Connection) -> anyhow::Result<Option<Baseline>> {
    Ok(stored_baseline(conn)?.map(|b| Baseline {
        source: format!("engine {}", b.engine_version),
        tracefile: b.tracefile,
    }))
}

/// Docker's default allowlist measured in the store (see [`DefaultAllowlist`]).
pub fn load_default_allowlist(conn: &Connection) -> anyhow::Result<Option<DefaultAllowlist>> {
    Ok(crate::store::refusals::default_allowlist(conn)?)
}

/// The recorded syscalls, per ABI, that `default` does not allow: what the part needed beyond
/// Docker's default profile. ABIs the probe does not measure (x32) are left out.
pub fn beyond_default(
    recorded: &Tracefile,
    default: &DefaultAllowlist,
) -> BTreeMap<Abi, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (abi, names) in &recorded.syscalls {
        let Some(allowed) = default.allowed.get(abi) else {
            continue;
        };
        let beyond: BTreeSet<String> = names.difference(allowed).cloned().collect();
        if !beyond.is_empty() {
            out.insert(*abi, beyond);
        }
    }
    out
}

/// The command-line form of a selection, for the report's header.
pub fn describe(sel: &Selection) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |flag: &str, values: &[String]| {
        out.extend(values.iter().map(|v| format!("--{flag} {v}")));
    };
    add("since", sel.since.as_slice());
    add("until", sel.until.as_slice());
    add("label", &sel.labels);
    add("name", &sel.names);
    add("image", &sel.images);
    add("container", &sel.containers);
    if sel.runc {
        out.push("--runc".to_string());
    }
    out
}

/// Adds the store's parts: one per Tracefile of the selection, or per container with
/// `by_container`; then the window changes of the selected labels.
pub fn add_store(
    report: &mut Report,
    conn: &Connection,
    db: &Path,
    sel: &Selection,
    by_container: bool,
    node: usize,
) -> anyhow::Result<()> {
    let store = || format!("store `{}`", db.display());
    report.sources.push(format!("store {}", db.display()));
    report.selection = describe(sel);
    let parts = select_parts(conn, sel, by_container).with_context(store)?;
    for part in parts {
        let recorded = select_scoped(conn, sel, part.scope).with_context(store)?;
        let profile_allowed = profile_size(&recorded, report.baseline.as_ref());
        report.parts.push(Part {
            what: match part.scope {
                Scope::Container(_) => "Container",
                _ => "Tracefile",
            },
            title: part.title,
            containers: select_containers(conn, sel, part.scope).with_context(store)?,
            denied: select_denied(conn, sel, part.scope).with_context(store)?,
            sightings: Some(select_sightings(conn, sel, part.scope).with_context(store)?),
            recorded,
            profile_allowed,
            scopes: vec![(node, part.scope)],
            coverage: None,
        });
    }
    let labels: BTreeSet<String> = select_containers(conn, sel, Scope::All)
        .with_context(store)?
        .into_iter()
        .map(|c| c.label)
        .collect();
    for label in labels {
        if let Some(change) = window_change(conn, &label, sel.runc).with_context(store)? {
            report.windows.push(change);
        }
    }
    Ok(())
}

/// The newest two Tracefiles (windows) recorded under `label`, by the start of their first
/// run, compared with `diff`: what the newer window added and no longer used.
pub fn window_change(
    conn: &Connection,
    label: &str,
    runc: bool,
) -> rusqlite::Result<Option<WindowChange>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.path FROM tracefiles t JOIN runs r ON r.tracefile = t.id \
         JOIN containers c ON c.id = r.container WHERE c.label = ?1 AND (r.init = 0 OR ?2) \
         GROUP BY t.id ORDER BY min(r.first_seen) DESC, t.id DESC LIMIT 2",
    )?;
    let newest: Vec<String> = stmt
        .query_map(params![label, runc], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let [newer, older] = newest.as_slice() else {
        return Ok(None);
    };
    let (a, b) = (
        materialize(conn, older, runc)?,
        materialize(conn, newer, runc)?,
    );
    Ok(Some(WindowChange {
        label: label.to_string(),
        older: older.clone(),
        newer: newer.clone(),
        changes: diff(&a, &b),
    }))
}

/// Adds one part per Tracefile file (directories are searched as `options` does). Every
/// file is parsed strictly before anything is added.
pub fn add_files(report: &mut Report, paths: &[PathBuf]) -> anyhow::Result<()> {
    let mut parts = Vec::new();
    for path in paths {
        for file in collect_tracefiles(path)? {
            let recorded = read_tracefile(&file)?;
            parts.push((file, recorded));
        }
    }
    for (file, recorded) in parts {
        report.sources.push(file.display().to_string());
        report.parts.push(Part {
            what: "Tracefile file",
            title: file.display().to_string(),
            profile_allowed: profile_size(&recorded, report.baseline.as_ref()),
            recorded,
            ..Part::default()
        });
    }
    Ok(())
}
