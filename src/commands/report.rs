//! `ctrace report`: one self-contained HTML page about a store selection (the same options
//! and selection code as `options`) and/or Tracefiles. Everything is read before the page is
//! written, atomically: a bad input leaves no output file (and an old one untouched).

use std::process::ExitCode;

use anyhow::{bail, Context};
use tracing::info;

use crate::atomic_write::write_atomically;
use crate::cli::{default_db, ReportArgs};
use crate::commands::options::{fleet, selection_given};
use crate::report::{self, model, Report};
use crate::store;

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    if args.db.is_empty() && !args.tracefiles.is_empty() && selection_given(&args.selection) {
        bail!("--since/--until/--label/--name/--image/--container/--runc select from a store: add --db PATH");
    }
    // No input named: the default store ($CTRACE_DB, else /var/lib/ctrace/ctrace.db).
    let dbs = match (args.db.is_empty(), args.tracefiles.is_empty()) {
        (false, _) => args.db.clone(),
        (true, true) => vec![default_db()],
        (true, false) => Vec::new(),
    };
    let mut report = Report {
        generated_ms: store::now_ms(),
        ..Report::default()
    };
    // Every store is opened (and checked) before anything is read from one.
    let nodes = if dbs.is_empty() {
        Vec::new()
    } else {
        fleet::open(&dbs)?
    };
    report.baseline = report::fleet::load_baseline(&nodes)?;
    for node in &nodes {
        report.default_allowlist =
            model::load_default_allowlist(&node.conn).with_context(|| {
                format!(
                    "reading Docker's default allowlist from `{}`",
                    node.path.display()
                )
            })?;
        if report.default_allowlist.is_some() {
            break;
        }
    }
    model::add_files(&mut report, &args.tracefiles)?;
    if !nodes.is_empty() {
        // Selecting by container shows containers; otherwise the Tracefiles they wrote.
        let by_container =
            !args.selection.containers.is_empty() || !args.selection.names.is_empty();
        report::fleet::add_nodes(&mut report, &nodes, &args.selection, by_container)?;
        if report.parts.is_empty() {
            return Err(fleet::matches_nothing(&nodes));
        }
    }
    let html = report::page(&report);
    write_atomically(&args.output, html.as_bytes())
        .with_context(|| format!("writing the report `{}`", args.output.display()))?;
    info!(
        output = %args.output.display(),
        parts = report.parts.len(),
        windows = report.windows.len(),
        "report written"
    );
    println!(
        "{}: {} part(s), {} window change(s)",
        args.output.display(),
        report.parts.len(),
        report.windows.len()
    );
    Ok(ExitCode::SUCCESS)
}
