//! `ctrace options`: the union of Tracefiles (files or directories, searched recursively)
//! and/or a store selection, plus the runtime baseline (`ctrace requirements`), turned into
//! a seccomp profile written to `--output` and the options that apply it.
//!
//! Every input is read and checked before anything is written; the profile is then written
//! atomically, so a bad input leaves no output file (and an old one untouched).

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::{default_db, OptionsArgs, OutputFormat, Selection};
use crate::names;
use crate::profile::formats::{self, BaselineSummary, Summary};
use crate::profile::write_profile;
use crate::store;
use crate::store::baseline::stored_baseline;
use crate::store::fleet::Node;
use crate::tracefile::parse::{read_tracefile, read_union};
use crate::tracefile::Tracefile;

pub mod fleet;

fn no_baseline(db: &Path, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "no runtime baseline: {why}. Without it the profile would block the runtime's own \
         set-up and containers would fail to start. Record it with `ctrace requirements \
         --db {}` (root, dockerd running) and retry, or pass `--requirements \
         FILE`, or `--no-requirements` to leave it out",
        db.display()
    )
}

/// The baseline to add, per the options, and how it is reported. With several stores, each
/// selected store's own baseline (`fleet::baselines`).
fn resolve_baseline(
    args: &OptionsArgs,
    nodes: &[Node],
    matched: &[usize],
) -> anyhow::Result<(Tracefile, BaselineSummary)> {
    let summary = |source: &str, path: Option<String>, tf: &Tracefile| BaselineSummary {
        source: source.to_string(),
        path,
        capabilities: tf.capabilities.len(),
        syscalls: tf.syscall_count(),
        ..BaselineSummary::default()
    };
    if let Some(path) = &args.requirements {
        let tf = read_tracefile(path).context("reading the requirements Tracefile")?;
        let s = summary("file", Some(path.display().to_string()), &tf);
        return Ok((tf, s));
    }
    if args.no_requirements {
        let tf = Tracefile::default();
        let s = summary("none", None, &tf);
        return Ok((tf, s));
    }
    if nodes.len() > 1 {
        return fleet::baselines(nodes, matched, no_baseline);
    }
    let db = match nodes {
        [node] => node.path.clone(),
        _ => default_db(),
    };
    if !db.exists() {
        return Err(no_baseline(
            &db,
            &format!("store `{}` does not exist", db.display()),
        ));
    }
    let conn = store::open_ro(&db)?;
    match stored_baseline(&conn)? {
        Some(b) => {
            let s = summary("store", Some(db.display().to_string()), &b.tracefile);
            Ok((b.tracefile, s))
        }
        None => Err(no_baseline(
            &db,
            &format!("store `{}` has no requirements recorded", db.display()),
        )),
    }
}

/// Whether any store selection option was given (they need `--db`).
pub fn selection_given(sel: &Selection) -> bool {
    sel.since.is_some()
        || sel.until.is_some()
        || !sel.labels.is_empty()
        || !sel.names.is_empty()
        || !sel.images.is_empty()
        || !sel.containers.is_empty()
        || sel.runc
}

/// Drops names the tables do not know (the store may hold numbers newer than this build);
/// returns them as `abi:name`.
fn drop_unknown(tf: &mut Tracefile) -> Vec<String> {
    let mut dropped = Vec::new();
    for (abi, set) in tf.syscalls.iter_mut() {
        set.retain(|name| {
            let known = names::syscall_number(*abi, name).is_some();
            if !known {
                dropped.push(format!("{abi}:{name}"));
            }
            known
        });
    }
    tf.capabilities.retain(|name| {
        let known = names::capability_by_name(name).is_some();
        if !known {
            dropped.push(format!("capability:{name}"));
        }
        known
    });
    dropped
}

pub fn run(args: OptionsArgs) -> anyhow::Result<ExitCode> {
    if args.no_requirements && args.requirements.is_some() {
        bail!("--requirements and --no-requirements contradict each other");
    }
    if args.tracefiles.is_empty() && args.db.is_empty() {
        bail!("nothing to read: give Tracefiles or directories, or --db PATH with a selection");
    }
    if args.db.is_empty() && selection_given(&args.selection) {
        bail!("--since/--until/--label/--name/--image/--container/--runc select from a store: add --db PATH");
    }

    let (mut union, files) = read_union(&args.tracefiles)?;
    let mut inputs: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    // Every store is opened (and checked) before anything is selected.
    let nodes = if args.db.is_empty() {
        Vec::new()
    } else {
        fleet::open(&args.db)?
    };
    let mut coverage = None;
    let mut matched = Vec::new();
    if !nodes.is_empty() {
        let selected = fleet::select(&nodes, &args.selection, true, |db, part| {
            let dropped = drop_unknown(part);
            if !dropped.is_empty() {
                tracing::warn!(
                    "store `{}` holds names unknown to this build, left out: {}",
                    db.display(),
                    dropped.join(", ")
                );
            }
        })?;
        if selected.matched.is_empty() {
            return Err(fleet::matches_nothing(&nodes));
        }
        union.merge(&selected.union);
        inputs.extend(
            selected
                .matched
                .iter()
                .map(|&i| format!("store:{}", nodes[i].path.display())),
        );
        matched = selected.matched;
        coverage = Some(selected.coverage);
    }
    if union.syscall_count() == 0 {
        tracing::warn!("the inputs record no system calls");
    }
    let (baseline, baseline_summary) = resolve_baseline(&args, &nodes, &matched)?;
    union.merge(&baseline);

    // Everything is read and valid: only now is the output written.
    let profile = write_profile(&union, &args.output)?;
    let text = match args.format {
        OutputFormat::Docker => format!("{}\n", formats::docker_options(&union, &args.output)),
        OutputFormat::Compose => formats::compose(&union, &args.output),
        OutputFormat::K8s => formats::k8s(&union, &profile, &args.output),
        OutputFormat::Json => {
            let mut summary =
                Summary::new(&union, &profile, &args.output, baseline_summary, inputs);
            if let Some(c) = coverage {
                summary.coverage = Some(c.items);
                summary.coverage_totals = Some(c.totals);
            }
            format!("{}\n", summary.to_json()?)
        }
    };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Abi;

    #[test]
    fn unknown_store_names_are_dropped() {
        let mut tf = Tracefile::default();
        tf.add_syscall(Abi::X86_64, "read");
        tf.add_syscall(Abi::X86_64, "syscall_999");
        tf.add_capability("chown");
        tf.add_capability("cap_41");
        assert_eq!(
            drop_unknown(&mut tf),
            ["x86_64:syscall_999", "capability:cap_41"]
        );
        assert_eq!(tf.syscall_count(), 1);
    }
}
