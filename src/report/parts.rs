//! One part of the report (a Tracefile, a container or a Tracefile file): its containers,
//! counts, timeline, syscalls by kind and ABI, and capabilities.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::html::{esc, time_text};
use super::kinds::{kind_of, Kind};
use super::model::{beyond_default, Baseline, DefaultAllowlist, Part};
use super::svg;
use crate::abi::Abi;

fn chips<'a>(names: impl IntoIterator<Item = &'a String>, class: &str) -> String {
    let mut out = String::new();
    for n in names {
        let _ = write!(out, "<span class=\"chip {class}\">{}</span>", esc(n));
    }
    out
}

fn card(value: impl std::fmt::Display, label: &str) -> String {
    format!("<div class=\"card\"><b>{value}</b>{label}</div>")
}

/// The first `n` characters (ids are shown short).
fn short(text: &str, n: usize) -> &str {
    text.char_indices().nth(n).map_or(text, |(i, _)| &text[..i])
}

pub fn part(
    part: &Part,
    baseline: Option<&Baseline>,
    default: Option<&DefaultAllowlist>,
) -> String {
    let mut out = String::from("<section class=\"part\">");
    let _ = write!(
        out,
        "<h2><span class=\"what\">{}</span>{}</h2>",
        esc(part.what),
        esc(&part.title)
    );
    out.push_str(&containers(part));

    let x86_64 = crate::names::syscalls(Abi::X86_64).len();
    let recorded = part.recorded.syscall_count();
    let default_card = default
        .map(|d| {
            card(
                format!("{}%", percent(part.profile_allowed, default_size(d))),
                "of what Docker's default profile allows (x86_64)",
            )
        })
        .unwrap_or_default();
    let _ = write!(
        out,
        "<div class=\"cards\">{}{}{}{}{default_card}</div>",
        card(recorded, "syscalls recorded (all ABIs)"),
        card(part.recorded.capabilities.len(), "capabilities granted"),
        card(part.denied.len(), "capabilities denied"),
        card(
            format!("{} / {x86_64}", part.profile_allowed),
            "syscall names the generated profile allows"
        ),
    );
    let _ = write!(
        out,
        "<p>The profile <code>ctrace options</code> makes from this allows <b>{}</b> syscall names \
         ({}% of the {x86_64} x86_64 calls){}.</p>",
        part.profile_allowed,
        percent(part.profile_allowed, x86_64),
        match baseline {
            Some(b) => format!(
                ": {recorded} recorded plus the runtime baseline ({})",
                esc(&b.source)
            ),
            None => " (no runtime baseline known)".to_string(),
        }
    );
    out.push_str(&against_default(part, default));

    out.push_str("<h3>First sightings</h3>");
    match &part.sightings {
        Some(s) => out.push_str(&svg::timeline(s)),
        None => out.push_str("<p class=\"muted\">A Tracefile file keeps no times.</p>"),
    }
    out.push_str(&by_kind(part));
    out.push_str("<h3>Capabilities</h3><table><tr><th>granted</th><th>denied</th></tr><tr><td>");
    out.push_str(&chips(&part.recorded.capabilities, "granted"));
    if part.recorded.capabilities.is_empty() {
        out.push_str("<span class=\"muted\">none</span>");
    }
    out.push_str("</td><td>");
    out.push_str(&chips(&part.denied, "denied"));
    if part.denied.is_empty() {
        out.push_str("<span class=\"muted\">none</span>");
    }
    out.push_str("</td></tr></table>");
    if let Some(coverage) = &part.coverage {
        out.push_str(&super::coverage::table(coverage));
    }
    let errnos = part.recorded.errno_entries();
    if !errnos.is_empty() {
        let _ = write!(
            out,
            "<h3>Refused with another errno than EPERM</h3><p>{}</p>",
            chips(&errnos, "k-other")
        );
    }
    out.push_str("</section>");
    out
}

fn percent(n: usize, of: usize) -> usize {
    n * 100 / of.max(1)
}

/// The x86_64 names Docker's default profile allows (the report's yardstick).
pub fn default_size(default: &DefaultAllowlist) -> usize {
    default.allowed.get(&Abi::X86_64).map_or(0, BTreeSet::len)
}

/// The part's profile size against Docker's default allowlist, and the recorded calls the
/// default would have refused; or how to measure the default.
fn against_default(part: &Part, default: Option<&DefaultAllowlist>) -> String {
    let Some(d) = default else {
        return "<p class=\"muted\">Docker's default profile has not been measured in this \
                store, so there is no comparison with it: <code>ctrace requirements</code> \
                measures it with the errno probe (<code>--refresh</code> if a baseline is \
                already cached), as does the daemon when it traces a container with default \
                settings.</p>"
            .to_string();
    };
    let m = default_size(d);
    let mut out = format!(
        "<p>Docker's default profile (engine {}, measured by the errno probe on {}) allows \
         <b>{m}</b> x86_64 names: {} / {m} = <b>{}%</b>.</p>",
        esc(&d.engine_version),
        esc(&time_text(d.probed_at)),
        part.profile_allowed,
        percent(part.profile_allowed, m),
    );
    let beyond = beyond_default(&part.recorded, d);
    if beyond.is_empty() {
        out.push_str(
            "<p>Recorded calls Docker's default profile would have refused: \
             <span class=\"muted\">none</span>.</p>",
        );
    } else {
        out.push_str(
            "<h3>Recorded calls Docker's default profile would have refused</h3>\
             <p>What this needs beyond the default (it ran under another setting):</p>",
        );
        for (abi, names) in &beyond {
            let _ = write!(out, "<p>{abi}: {}</p>", chips(names, "k-priv"));
        }
    }
    out
}

fn containers(part: &Part) -> String {
    if part.containers.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<table class=\"containers\"><tr><th>container</th><th>image</th><th>id</th>\
         <th>label</th><th>started</th></tr>",
    );
    for c in &part.containers {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.image),
            esc(short(&c.container_id, 12)),
            esc(&c.label),
            esc(&time_text(c.started_at)),
        );
    }
    out.push_str("</table>");
    out
}

/// Syscalls grouped by kind (rows) and ABI (columns).
fn by_kind(part: &Part) -> String {
    let abis: Vec<Abi> = Abi::ALL
        .into_iter()
        .filter(|abi| {
            part.recorded
                .syscalls
                .get(abi)
                .is_some_and(|s| !s.is_empty())
        })
        .collect();
    let mut out = String::from("<h3>System calls by kind and ABI</h3>");
    if abis.is_empty() {
        out.push_str("<p class=\"muted\">No system calls recorded.</p>");
        return out;
    }
    let mut grid: BTreeMap<Kind, BTreeMap<Abi, BTreeSet<String>>> = BTreeMap::new();
    for abi in &abis {
        for name in &part.recorded.syscalls[abi] {
            grid.entry(kind_of(name))
                .or_default()
                .entry(*abi)
                .or_default()
                .insert(name.clone());
        }
    }
    out.push_str("<table class=\"kinds\"><tr><th>kind</th>");
    for abi in &abis {
        let _ = write!(
            out,
            "<th>{abi} ({})</th>",
            part.recorded.syscalls[abi].len()
        );
    }
    out.push_str("</tr>");
    for kind in Kind::ALL {
        let Some(row) = grid.get(&kind) else { continue };
        let total: usize = row.values().map(BTreeSet::len).sum();
        let _ = write!(
            out,
            "<tr><td class=\"kind\"><span class=\"{}\"></span>{} ({total})</td>",
            kind.css(),
            esc(kind.title())
        );
        for abi in &abis {
            let _ = write!(
                out,
                "<td>{}</td>",
                row.get(abi)
                    .map(|n| chips(n, kind.css()))
                    .unwrap_or_default()
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_kind_and_abi() {
        let mut p = Part {
            what: "Tracefile",
            title: "web".into(),
            ..Part::default()
        };
        for n in ["openat", "read", "connect"] {
            p.recorded.add_syscall(Abi::X86_64, n);
        }
        p.recorded.add_syscall(Abi::I386, "socketcall");
        p.denied.insert("sys_admin".into());
        let html = part(&p, None, None);
        assert!(
            html.contains("x86_64 (3)") && html.contains("i386 (1)"),
            "{html}"
        );
        assert!(html.contains("Network (2)"), "{html}");
        assert!(html.contains("chip denied\">sys_admin"), "{html}");
        assert_eq!(short("0123456789abcdef", 12), "0123456789ab");
        assert_eq!(short("ab", 12), "ab");
    }

    #[test]
    fn compares_with_the_default_allowlist_and_names_what_it_refuses() {
        let mut p = Part {
            what: "Container",
            title: "web".into(),
            profile_allowed: 150,
            ..Part::default()
        };
        for n in ["read", "getpid", "mount"] {
            p.recorded.add_syscall(Abi::X86_64, n);
        }
        p.recorded.add_syscall(Abi::X32, "read");
        let unmeasured = part(&p, None, None);
        assert!(unmeasured.contains("ctrace requirements"), "{unmeasured}");
        let allowed = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        let d = DefaultAllowlist {
            engine_version: "20.10.24".into(),
            probed_at: 0,
            allowed: BTreeMap::from([
                (Abi::X86_64, allowed(&["read", "getpid", "write"])),
                (Abi::I386, allowed(&[])),
            ]),
        };
        let html = part(&p, None, Some(&d));
        assert!(html.contains("engine 20.10.24"), "{html}");
        assert!(html.contains("1970-01-01"), "{html}");
        assert!(html.contains("150 / 3 = <b>5000%</b>"), "{html}");
        assert!(
            html.contains("x86_64: <span class=\"chip k-priv\">mount</span>"),
            "{html}"
        );
        assert!(!html.contains("x32:"), "x32 is not measured: {html}");
        p.recorded = Default::default();
        p.recorded.add_syscall(Abi::X86_64, "read");
        let html = part(&p, None, Some(&d));
        assert!(
            html.contains("would have refused: <span class=\"muted\">none"),
            "{html}"
        );
    }
}
