//! `ctrace coverage`: per syscall (per ABI) and granted capability of a selection over one or
//! more stores, on how many nodes, containers and runs it was seen; the thinnest first. The
//! same numbers as `options --format json` (`coverage`) and the report's coverage tables.

use std::io::{self, Write};
use std::process::ExitCode;

use crate::cli::CoverageArgs;
use crate::commands::options::fleet;
use crate::store::coverage::Coverage;

/// The table: a header, one line per item (tab-separated), and the totals.
pub fn render(coverage: &Coverage) -> String {
    let mut items: Vec<_> = coverage.items.iter().collect();
    items.sort_by(|a, b| {
        (a.runs, a.nodes, a.kind, a.abi, &a.name).cmp(&(b.runs, b.nodes, b.kind, b.abi, &b.name))
    });
    let mut out = String::from("nodes\tcontainers\truns\tabi\tname\n");
    for i in items {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            i.nodes,
            i.containers,
            i.runs,
            i.abi.unwrap_or("capability"),
            i.name
        ));
    }
    let t = &coverage.totals;
    out.push_str(&format!(
        "{} items over {} node(s), {} container(s), {} run(s); {} rest on a single run, {} \
         were seen on a single node of several\n",
        coverage.items.len(),
        t.nodes,
        t.containers,
        t.runs,
        t.single_run,
        t.single_node
    ));
    out
}

pub fn run(args: CoverageArgs) -> anyhow::Result<ExitCode> {
    let nodes = fleet::open(&args.db)?;
    let selected = fleet::select(&nodes, &args.selection, true, |_, _| {})?;
    if selected.matched.is_empty() {
        return Err(fleet::matches_nothing(&nodes));
    }
    let c = selected.coverage;
    let text = if args.json {
        let doc = serde_json::json!({"coverage": c.items, "coverage_totals": c.totals});
        format!("{}\n", serde_json::to_string_pretty(&doc)?)
    } else {
        render(&c)
    };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
