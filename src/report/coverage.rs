//! The coverage table of a store part: per syscall (per ABI) and granted capability, on how
//! many nodes, containers and runs it was seen. Items that rest on a single run, or on one
//! node of several, come first and are highlighted: the profile allows them all the same.

use std::fmt::Write as _;

use super::html::esc;
use crate::store::coverage::Coverage;

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn table(coverage: &Coverage) -> String {
    let t = &coverage.totals;
    let mut out = String::from("<h3>Coverage</h3>");
    let _ = write!(
        out,
        "<p class=\"coverage-summary\">Seen in {} of {} on {}. <b>{}</b> of {} items rest on a \
         single run{}. The profile allows every item; a thin one is worth a second run before \
         the profile is trusted.</p>",
        plural(t.runs, "run", "runs"),
        plural(t.containers, "container", "containers"),
        plural(t.nodes, "node", "nodes"),
        t.single_run,
        coverage.items.len(),
        if t.nodes > 1 {
            format!("; <b>{}</b> were seen on a single node", t.single_node)
        } else {
            String::new()
        }
    );
    let mut items: Vec<_> = coverage.items.iter().collect();
    items.sort_by(|a, b| {
        (a.runs, a.nodes, a.kind, a.abi, &a.name).cmp(&(b.runs, b.nodes, b.kind, b.abi, &b.name))
    });
    out.push_str(
        "<table class=\"coverage\"><tr><th>item</th><th>ABI</th><th>nodes</th>\
         <th>containers</th><th>runs</th></tr>",
    );
    for item in items {
        let thin = item.runs == 1 || (t.nodes > 1 && item.nodes == 1);
        let _ = write!(
            out,
            "<tr{}><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if thin { " class=\"thin\"" } else { "" },
            esc(&item.name),
            item.abi.unwrap_or("capability"),
            item.nodes,
            item.containers,
            item.runs
        );
    }
    out.push_str("</table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::coverage::{CoverageItem, CoverageTotals};

    #[test]
    fn thin_items_come_first_and_are_highlighted() {
        let item = |name: &str, nodes, runs| CoverageItem {
            name: name.to_string(),
            kind: "syscall",
            abi: Some("x86_64"),
            nodes,
            containers: runs,
            runs,
        };
        let c = Coverage {
            items: vec![item("read", 2, 3), item("ptrace", 1, 1)],
            totals: CoverageTotals {
                nodes: 2,
                containers: 3,
                runs: 3,
                single_node: 1,
                single_run: 1,
            },
        };
        let html = table(&c);
        let (ptrace, read) = (html.find("ptrace").unwrap(), html.find(">read<").unwrap());
        assert!(ptrace < read, "{html}");
        assert!(
            html.contains("<tr class=\"thin\"><td><code>ptrace</code>"),
            "{html}"
        );
        assert!(
            html.contains("<b>1</b> of 2 items rest on a single run"),
            "{html}"
        );
        assert!(html.contains("on 2 nodes"), "{html}");
    }
}
