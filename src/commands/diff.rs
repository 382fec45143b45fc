//! `ctrace diff`: compare two Tracefiles (a directory stands for the union of the
//! Tracefiles under it), or two selections of the store.
//!
//! Output as the original tool: per section that differs, its header, then `-name` (only
//! in A) and `+name` (only in B) lines, sections separated by a blank line; unchanged
//! sections are omitted. Exit 0 when equal, 1 when different, 2 on error, like diff(1).

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::abi::Abi;
use crate::cli::{DiffArgs, Selection};
use crate::commands::options::fleet;
use crate::tracefile::parse::read_union;
use crate::tracefile::{Tracefile, CAPABILITIES, ERRNO};

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// One section that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionDiff {
    pub header: String,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

/// The sections that differ between A and B, in Tracefile order.
pub fn diff(a: &Tracefile, b: &Tracefile) -> Vec<SectionDiff> {
    let mut sections = Vec::new();
    let mut push = |header: String, left: Vec<&String>, right: Vec<&String>| {
        let removed: Vec<String> = left
            .iter()
            .filter(|n| !right.contains(n))
            .map(|n| n.to_string())
            .collect();
        let added: Vec<String> = right
            .iter()
            .filter(|n| !left.contains(n))
            .map(|n| n.to_string())
            .collect();
        if !removed.is_empty() || !added.is_empty() {
            sections.push(SectionDiff {
                header,
                removed,
                added,
            });
        }
    };
    push(
        CAPABILITIES.to_string(),
        a.capabilities.iter().collect(),
        b.capabilities.iter().collect(),
    );
    for abi in Abi::ALL {
        let left = a
            .syscalls
            .get(&abi)
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        let right = b
            .syscalls
            .get(&abi)
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        push(Tracefile::syscall_section(abi), left, right);
    }
    // `clone3 ENOSYS`: a changed answer shows as one line removed and one added.
    let (left, right) = (a.errno_entries(), b.errno_entries());
    push(
        ERRNO.to_string(),
        left.iter().collect(),
        right.iter().collect(),
    );
    sections
}

/// The diff as text; `color` adds ANSI colours (red `-`, green `+`, bold headers).
pub fn render(sections: &[SectionDiff], color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    for (i, section) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&paint(BOLD, &section.header));
        out.push('\n');
        for name in &section.removed {
            out.push_str(&paint(RED, &format!("-{name}")));
            out.push('\n');
        }
        for name in &section.added {
            out.push_str(&paint(GREEN, &format!("+{name}")));
            out.push('\n');
        }
    }
    out
}

fn selection_is_empty(sel: &Selection) -> bool {
    sel.since.is_none()
        && sel.until.is_none()
        && sel.labels.is_empty()
        && sel.names.is_empty()
        && sel.images.is_empty()
        && sel.containers.is_empty()
}

fn use_color(choice: &str) -> bool {
    match choice {
        "always" => true,
        "never" => false,
        _ => io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

pub fn run(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let side_a: Selection = args.a.into();
    let side_b: Selection = args.b.into();
    let stored = match args.db.as_slice() {
        [] => None,
        dbs => {
            if !args.tracefiles.is_empty() {
                bail!("give either two Tracefiles or --db with --a-*/--b-* selections, not both");
            }
            // Every store is opened (and checked) before either side is selected.
            let nodes = fleet::open(dbs)?;
            let stores = || {
                let paths: Vec<String> = nodes
                    .iter()
                    .map(|n| format!("`{}`", n.path.display()))
                    .collect();
                format!(
                    "store{} {}",
                    if paths.len() == 1 { "" } else { "s" },
                    paths.join(", ")
                )
            };
            let select = |side: &str, sel: &Selection| -> anyhow::Result<Tracefile> {
                let tf = fleet::select(&nodes, sel, false, |_, _| {})
                    .with_context(|| format!("selection {side}"))?
                    .union;
                if tf.is_empty() {
                    tracing::warn!("selection {side} matches nothing in {}", stores());
                }
                Ok(tf)
            };
            Some((select("A", &side_a)?, select("B", &side_b)?))
        }
    };
    let (a, b) = match stored {
        Some(pair) => pair,
        None => {
            if !selection_is_empty(&side_a) || !selection_is_empty(&side_b) {
                bail!("--a-*/--b-* selections need --db PATH");
            }
            match args.tracefiles.as_slice() {
                [a, b] => (
                    read_union(std::slice::from_ref(a))?.0,
                    read_union(std::slice::from_ref(b))?.0,
                ),
                _ => bail!(
                    "give two Tracefiles to compare, or --db PATH with --a-*/--b-* selections"
                ),
            }
        }
    };
    let sections = diff(&a, &b);
    let mut out = io::stdout().lock();
    out.write_all(render(&sections, use_color(&args.color)).as_bytes())?;
    out.flush()?;
    if sections.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(crate::EXIT_DIFFERENT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_original() {
        let mut a = Tracefile::default();
        let mut b = Tracefile::default();
        for n in ["bind", "close", "open"] {
            a.add_syscall(Abi::X86_64, n);
        }
        for n in ["close", "execve"] {
            b.add_syscall(Abi::X86_64, n);
        }
        b.add_capability("net_raw");
        a.add_syscall(Abi::I386, "exit");
        b.add_syscall(Abi::I386, "exit");
        let sections = diff(&a, &b);
        assert_eq!(
            render(&sections, false),
            "CAPABILITIES\n+net_raw\n\nSYSCALLS\n-bind\n-open\n+execve\n"
        );
        assert_eq!(
            render(&sections[..1], true),
            "\x1b[1mCAPABILITIES\x1b[0m\n\x1b[32m+net_raw\x1b[0m\n"
        );
        assert!(diff(&a, &a).is_empty());
        // An ABI present on one side only.
        b.add_syscall(Abi::X32, "read");
        let sections = diff(&a, &b);
        assert_eq!(sections.last().unwrap().header, "SYSCALLS:x32");
    }
}
