//! `ctrace report`: one self-contained HTML page about a store selection (the same options
//! and selection code as `options`) and/or Tracefiles. Everything is read before the page is
//! written, atomically: a bad input leaves no output file (and an old one untouched).

use std::process::ExitCode;

use anyhow::{bail, Context};
use tracing::info;

use crate::atomic_write::write_atomically;
use crate::cli::{default_db, ReportArgs};
use crate::commands::options::selection_given;
use crate::report::{self, model, Report};
use crate::store;

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    if args.db.is_none() && !args.tracefiles.is_empty() && selection_given(&args.selection) {
        bail!("--since/--until/--label/--name/--image/--container/--runc select from a store: add --db PATH");
    }
    // No input named: the default store ($CTRACE_DB, else /var/lib/ctrace/ctrace.db).
    let db = match (&args.db, args.tracefiles.is_empty()) {
        (Some(db), _) => Some(db.clone()),
        (None, true) => Some(default_db()),
        (None, false) => None,
    };
    let mut report = Report {
        generated_ms: store::now_ms(),
        ..Report::default()
    };
    let conn = db.as_ref().map(|db| store::open_ro(db)).transpose()?;
    if let (Some(conn), Some(db)) = (&conn, &db) {
        report.baseline = model::load_baseline(conn)
            .with_context(|| format!("reading the runtime baseline of `{}`", db.display()))?;
        report.default_allowlist = model::load_default_allowlist(conn).with_context(|| {
            format!("reading Docker's default allowlist from `{}`", db.display())
        })?;
    }
    model::add_files(&mut report, &args.tracefiles)?;
    if let (Some(conn), Some(db)) = (&conn, &db) {
        // Selecting by container shows containers; otherwise the Tracefiles they wrote.
        let by_container =
            !args.selection.containers.is_empty() || !args.selection.names.is_empty();
        model::add_store(&mut report, conn, db, &args.selection, by_container)?;
        if report.parts.is_empty() {
            return Err(crate::store::select::matches_nothing(db));
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
