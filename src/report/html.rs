//! The page: one self-contained HTML file (inline CSS and SVG, no script, no external
//! resource; a Content-Security-Policy forbids fetching and running anything), every string
//! from the store or a file HTML-escaped: container names, images and labels are chosen by
//! whoever starts containers.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::model::{Report, WindowChange};
use super::parts;

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Unix ms as `2026-11-30 14:05:09 UTC`.
pub fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Unix ms as `2026-11-30 14:05:09.123 UTC`.
pub fn time_text_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

const CSS: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f1f5f9;color:#0f172a}
header{background:#0f172a;color:#f8fafc;padding:20px 32px}
header h1{margin:0 0 6px;font-size:24px}
header p{margin:2px 0;color:#cbd5e1}
main{padding:16px 32px 40px;max-width:1200px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:16px 20px;margin:16px 0}
h2{margin:0 0 8px;font-size:20px}
h3{margin:18px 0 6px;font-size:16px;color:#334155}
.what{font-size:12px;text-transform:uppercase;letter-spacing:.05em;background:#e2e8f0;color:#334155;border-radius:4px;padding:2px 6px;margin-right:8px;vertical-align:middle}
.muted{color:#64748b}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid #e2e8f0}
th{background:#f8fafc;font-weight:600}
code,.chip{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:10px 0}
.card{border:1px solid #e2e8f0;border-radius:8px;padding:8px 14px;min-width:150px;background:#f8fafc}
.card b{display:block;font-size:26px}
.chip{display:inline-block;border-radius:4px;padding:1px 6px;margin:2px;background:#e0e7ff;color:#1e1b4b}
.k-file{background:#dbeafe}.k-desc{background:#e0f2fe}.k-net{background:#fde68a}.k-proc{background:#dcfce7}
.k-mem{background:#ede9fe}.k-sig{background:#fce7f3}.k-ipc{background:#ccfbf1}.k-time{background:#fef3c7}
.k-priv{background:#fecaca;color:#7f1d1d}.k-info{background:#e5e7eb}.k-other{background:#f3f4f6}
.granted{background:#bbf7d0;color:#14532d}.denied{background:#fecaca;color:#7f1d1d}
.added{background:#bbf7d0;color:#14532d}.removed{background:#fecaca;color:#7f1d1d}
.kind{white-space:nowrap}.kind span{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
svg.timeline{width:100%;height:auto;max-width:1000px}
tr.thin td{background:#fef3c7}
svg .axis{font:12px system-ui,sans-serif;fill:#475569}
";

/// The whole page.
pub fn page(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>ctrace report</title><style>{CSS}</style></head><body>"
    );
    let _ = write!(
        out,
        "<header><h1>ctrace report</h1><p>Generated {} from {}.</p><p>Selection: {}</p></header><main>",
        esc(&time_text(report.generated_ms)),
        esc(&report.sources.join(", ")),
        if report.selection.is_empty() {
            "everything recorded".to_string()
        } else {
            report
                .selection
                .iter()
                .map(|s| format!("<code>{}</code>", esc(s)))
                .collect::<Vec<_>>()
                .join(" ")
        },
    );
    out.push_str(&about(report));
    if report.parts.is_empty() {
        out.push_str("<section><p>Nothing recorded matches this selection.</p></section>");
    }
    for part in &report.parts {
        out.push_str(&parts::part(
            part,
            report.baseline.as_ref(),
            report.default_allowlist.as_ref(),
        ));
    }
    out.push_str(&windows(&report.windows));
    out.push_str("</main></body></html>\n");
    out
}

/// What the profile sizes are measured against, said once.
fn about(report: &Report) -> String {
    let baseline = match &report.baseline {
        Some(b) => format!(
            "Each profile size counts the syscall names the profile <code>ctrace options</code> \
             makes would allow: what was recorded plus the runtime baseline ({}, {} syscalls).",
            esc(&b.source),
            b.tracefile.syscall_count()
        ),
        None => {
            "Each profile size counts the syscall names the profile <code>ctrace options</code> \
                 makes would allow from what was recorded; no runtime baseline is known here \
                 (<code>ctrace requirements</code> records one), so the runtime's own calls are \
                 not counted."
                .to_string()
        }
    };
    let x86_64 = crate::names::syscalls(crate::abi::Abi::X86_64).len();
    let default = match &report.default_allowlist {
        Some(d) => {
            let refused: BTreeSet<String> = crate::names::syscalls(crate::abi::Abi::X86_64)
                .into_iter()
                .map(|(_, name)| name.to_string())
                .filter(|name| {
                    !d.allowed
                        .get(&crate::abi::Abi::X86_64)
                        .is_some_and(|a| a.contains(name))
                })
                .collect();
            let per_abi: Vec<String> = d
                .allowed
                .iter()
                .map(|(abi, names)| format!("{} {abi}", names.len()))
                .collect();
            format!(
                "<p>Docker's default seccomp profile (engine {}, measured by the errno probe on \
                 {}) allows {} syscall names; each part's profile size is compared with its {} \
                 x86_64 names. It refuses (or kills) the other {} of the {x86_64} x86_64 \
                 names:</p><details><summary>refused by Docker's default</summary><p>{}</p>\
                 </details>",
                esc(&d.engine_version),
                esc(&time_text(d.probed_at)),
                per_abi.join(" and "),
                parts::default_size(d),
                refused.len(),
                refused
                    .iter()
                    .map(|n| format!("<span class=\"chip k-priv\">{}</span>", esc(n)))
                    .collect::<String>(),
            )
        }
        None => format!(
            "<p>Docker's default seccomp profile has not been measured in this store \
             (<code>ctrace requirements</code> measures it, as does the daemon when it traces a \
             container with default settings), so sizes are given against the {x86_64} system \
             calls of the x86_64 table only.</p>"
        ),
    };
    format!("<section><h2>About the numbers</h2><p>{baseline}</p>{default}</section>")
}

fn windows(windows: &[WindowChange]) -> String {
    let mut out = String::from("<section><h2>Changes between the last two windows</h2>");
    if windows.is_empty() {
        out.push_str(
            "<p class=\"muted\">No label of this selection has two windows yet (a label with a \
             strftime pattern, such as <code>app-%Y%m%d</code>, starts a Tracefile per window).</p>",
        );
    }
    for w in windows {
        let _ = write!(
            out,
            "<h3>Label <code>{}</code>: <code>{}</code> → <code>{}</code></h3>",
            esc(&w.label),
            esc(&w.older),
            esc(&w.newer)
        );
        if w.changes.is_empty() {
            out.push_str("<p>No change.</p>");
            continue;
        }
        out.push_str("<table><tr><th>section</th><th>added</th><th>removed</th></tr>");
        for c in &w.changes {
            let chips = |names: &[String], class: &str| {
                names
                    .iter()
                    .map(|n| format!("<span class=\"chip {class}\">{}</span>", esc(n)))
                    .collect::<String>()
            };
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&c.header),
                chips(&c.added, "added"),
                chips(&c.removed, "removed")
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::Part;
    use crate::store::select::SelectedContainer;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert(1)</script>&\"'"),
            "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;"
        );
    }

    #[test]
    fn hostile_names_are_text_not_markup() {
        let hostile = "<script>alert(1)</script>";
        let mut part = Part {
            what: "Container",
            title: hostile.to_string(),
            ..Part::default()
        };
        part.containers.push(SelectedContainer {
            container_id: format!("\"><img src=x onerror=alert(1)>{hostile}"),
            name: hostile.to_string(),
            image: hostile.to_string(),
            label: hostile.to_string(),
            started_at: 0,
        });
        part.recorded.add_capability(hostile);
        let report = Report {
            sources: vec![hostile.to_string()],
            selection: vec![format!("--name {hostile}")],
            parts: vec![part],
            windows: vec![WindowChange {
                label: hostile.to_string(),
                older: hostile.to_string(),
                newer: hostile.to_string(),
                changes: vec![crate::commands::diff::SectionDiff {
                    header: hostile.to_string(),
                    removed: vec![hostile.to_string()],
                    added: vec![hostile.to_string()],
                }],
            }],
            ..Report::default()
        };
        let html = page(&report);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // The policy forbids scripts even if something slipped through.
        assert!(html.contains("default-src 'none'"));
    }

    #[test]
    fn about_lists_what_the_default_refuses_or_how_to_measure_it() {
        let html = page(&Report::default());
        assert!(html.contains("has not been measured"), "{html}");
        assert!(!html.contains("not known"), "{html}");
        let all = crate::names::syscalls(crate::abi::Abi::X86_64);
        let allowed = all
            .iter()
            .map(|(_, n)| n.to_string())
            .filter(|n| n != "kexec_load" && n != "mount")
            .collect();
        let report = Report {
            default_allowlist: Some(crate::report::model::DefaultAllowlist {
                engine_version: "20.10.24".into(),
                probed_at: 0,
                allowed: std::collections::BTreeMap::from([(crate::abi::Abi::X86_64, allowed)]),
            }),
            ..Report::default()
        };
        let html = page(&report);
        assert!(html.contains(&format!("allows {} x86_64 syscall names", all.len() - 2)));
        assert!(html.contains("the other 2 of the"), "{html}");
        assert!(html.contains(">kexec_load</span><span class=\"chip k-priv\">mount<"));
    }
}
