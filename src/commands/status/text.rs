//! The human form of `ctrace status`: a few aligned lines about the daemon, its kernel side,
//! counters and store, then a table of the containers.

use std::fmt::Write as _;

use super::{Container, Kernel, Report};

/// Width of the headings on the left.
const HEAD: usize = 12;
/// Longest name, image or Tracefile shown in the table (longer ones end in `…`).
const CELL_MAX: usize = 28;
/// Where the counters wrap.
const LINE_MAX: usize = 92;

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let mut line = |head: &str, body: &str| {
        let _ = writeln!(out, "{head:<HEAD$}{body}");
    };
    let d = &r.daemon;
    let pid = d.pid.map_or("unknown".into(), |p| p.to_string());
    let version = d
        .version
        .as_deref()
        .map_or(String::new(), |v| format!(", ctrace {v}"));
    if d.running == Some(true) {
        let up = match (d.uptime_s, d.started_at_ms) {
            (Some(up), Some(at)) => format!(", up {} (since {})", duration(up * 1000), time(at)),
            _ => String::new(),
        };
        line("daemon", &format!("running: pid {pid}{version}{up}"));
    } else {
        let why = match &d.unknown {
            Some(why) => format!("cannot tell whether a daemon runs ({why})"),
            None => "no daemon running".to_string(),
        };
        let as_of = r.store.as_of_ms.map_or("unknown".into(), |t| {
            format!("{} ({} ago)", time(t), duration(r.now_ms - t))
        });
        line("daemon", &format!("{why}; from the store as of {as_of}"));
        if d.pid.is_some() {
            let ended = match d.stopped_at_ms {
                Some(at) => format!("stopped cleanly at {}", time(at)),
                None => "did not stop cleanly (killed, or still running elsewhere)".into(),
            };
            let started = d
                .started_at_ms
                .map_or(String::new(), |t| format!(", started {}", time(t)));
            line("", &format!("last daemon: pid {pid}{version}{started},"));
            line("", &ended);
        }
    }
    let kernel = kernel_lines(&r.kernel);
    let prefix = match (d.running, d.facts_current) {
        (Some(true), false) => "(not yet written by this daemon; the last one's) ",
        (Some(true), true) => "",
        _ => "(last daemon) ",
    };
    if kernel.is_empty() {
        line(
            "kernel",
            "(no daemon has written its facts into this store)",
        );
    }
    for (i, k) in kernel.iter().enumerate() {
        let head = if i == 0 { "kernel" } else { "" };
        line(head, &format!("{}{k}", if i == 0 { prefix } else { "" }));
    }
    let counters: Vec<String> = r.counters.iter().map(|(k, v)| format!("{k} {v}")).collect();
    for (i, l) in wrap(&counters, LINE_MAX - HEAD).iter().enumerate() {
        line(if i == 0 { "counters" } else { "" }, l);
    }
    let s = &r.store;
    line(
        "store",
        &format!(
            "{}: {} (db {}, wal {}, shm {})",
            s.path,
            bytes(s.total_bytes),
            bytes(s.db_bytes),
            bytes(s.wal_bytes),
            bytes(s.shm_bytes)
        ),
    );
    let c = &r.containers;
    let shown = if c.shown < c.total {
        format!(" (the {} started last shown; --all for every one)", c.shown)
    } else {
        String::new()
    };
    line("containers", &format!("{} traced{shown}", c.total));
    if !c.list.is_empty() {
        out.push('\n');
        out.push_str(&table(&c.list, r.now_ms));
    }
    out
}

fn kernel_lines(k: &Kernel) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(hook) = &k.capability_hook {
        lines.push(format!("capabilities via {hook}"));
    }
    let mut state = Vec::new();
    match (
        k.cgroup_state.as_deref(),
        k.cgroup_slots,
        k.collision_hash_entries,
    ) {
        (Some("slots"), Some(n), Some(h)) => {
            state.push(format!("cgroup state in {n} slots + collision hash of {h}"))
        }
        (Some("storage"), _, _) => state.push("cgroup state in cgroup local storage".into()),
        (Some(other), _, _) => state.push(format!("cgroup state in {other}")),
        (None, _, _) => {}
    }
    if let Some(on) = k.task_cache {
        state.push(format!("placement cache {}", if on { "on" } else { "off" }));
    }
    if !state.is_empty() {
        lines.push(state.join(", "));
    }
    let mut rest = Vec::new();
    if let Some(on) = k.syscalls_attached {
        rest.push(
            if on {
                "syscall program attached"
            } else {
                "syscall program detached"
            }
            .into(),
        );
    }
    if let Some(b) = k.ringbuf_bytes {
        rest.push(format!("ring buffer {}", bytes(b)));
    }
    if let Some(ms) = k.epoch_ms {
        let epoch = humantime::format_duration(std::time::Duration::from_millis(ms));
        rest.push(format!("epoch {epoch}"));
    }
    if k.runc == Some(true) {
        rest.push("--runc".into());
    }
    if !rest.is_empty() {
        lines.push(rest.join(", "));
    }
    if let Some(dir) = &k.data_dir {
        lines.push(format!("Tracefiles in {dir}"));
    }
    lines
}

fn table(list: &[Container], now_ms: i64) -> String {
    let mut rows = vec![[
        "NAME",
        "ID",
        "IMAGE",
        "TRACEFILE",
        "SYSCALLS",
        "CAPS",
        "LAST NEW",
        "STATE",
    ]
    .map(String::from)];
    for c in list {
        rows.push([
            cell(&c.name),
            c.short_id.clone(),
            cell(&c.image),
            cell(c.tracefile.as_deref().unwrap_or(&c.label)),
            c.syscalls.to_string(),
            c.capabilities.to_string(),
            c.last_first_sighting_ms
                .map_or("-".into(), |t| format!("{} ago", duration(now_ms - t))),
            c.state.to_string(),
        ]);
    }
    let mut widths = [0; 8];
    for row in &rows {
        for (w, text) in widths.iter_mut().zip(row) {
            *w = (*w).max(text.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut l = String::new();
        for (i, (text, w)) in row.iter().zip(widths).enumerate() {
            // Numbers right-aligned, the rest left; two spaces between columns.
            if i == 4 || i == 5 {
                let _ = write!(l, "{text:>w$}  ");
            } else {
                let _ = write!(l, "{text:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    }
    out
}

fn cell(text: &str) -> String {
    if text.chars().count() <= CELL_MAX {
        return text.to_string();
    }
    let mut short: String = text.chars().take(CELL_MAX - 1).collect();
    short.push('…');
    short
}

/// Items joined with ", " into lines of at most `max` characters.
fn wrap(items: &[String], max: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for item in items {
        match lines.last_mut() {
            Some(l) if l.len() + 2 + item.len() <= max => {
                l.push_str(", ");
                l.push_str(item);
            }
            Some(l) => {
                l.push(',');
                lines.push(item.clone());
            }
            None => lines.push(item.clone()),
        }
    }
    lines
}

/// "2026-11-29 17:40:00 UTC".
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// "45s", "3m 20s", "5h 2m", "3d 4h".
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// "512 B", "4.0 KiB", "1.2 MiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(4096), "4.0 KiB");
        assert_eq!(bytes(4 << 20), "4.0 MiB");
        assert_eq!(duration(45_000), "45s");
        assert_eq!(duration(200_000), "3m 20s");
        assert_eq!(duration(5 * 3_600_000 + 120_000), "5h 2m");
        assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
        assert_eq!(duration(-5), "0s");
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(cell(&"x".repeat(40)).chars().count(), CELL_MAX);
    }

    #[test]
    fn a_report_without_a_daemon_says_so_and_aligns_its_table() {
        use super::super::{Containers, Daemon, Store};
        let now = 1_800_000_000_000;
        let container = |name: &str, syscalls| Container {
            name: name.into(),
            id: "0123456789abcdef".into(),
            short_id: "0123456789ab".into(),
            image: "img".into(),
            label: "web-%H".into(),
            tracefile: Some("web-17".into()),
            syscalls,
            capabilities: 2,
            last_first_sighting_ms: Some(now - 65_000),
            started_at_ms: now - 100_000,
            stopped_at_ms: None,
            state: "unknown",
        };
        let report = Report {
            version: "0.1.0".into(),
            now_ms: now,
            daemon: Daemon {
                running: Some(false),
                unknown: None,
                pid: Some(42),
                version: Some("0.1.0".into()),
                started_at_ms: Some(now - 3_600_000),
                uptime_s: None,
                stopped_at_ms: None,
                facts_current: false,
            },
            kernel: Kernel::default(),
            counters: [("ringbuf_misses".to_string(), 3.into())].into(),
            store: Store {
                path: "s.db".into(),
                db_bytes: 4096,
                wal_bytes: 0,
                shm_bytes: 0,
                total_bytes: 4096,
                as_of_ms: Some(now - 5_000),
            },
            containers: Containers {
                total: 3,
                shown: 2,
                list: vec![container("web", 7), container("a-longer-name", 120)],
            },
        };
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "daemon      no daemon running; from the store as of 2027-01-15 07:59:55 UTC (5s ago)"
        );
        assert_eq!(
            lines[2],
            "            did not stop cleanly (killed, or still running elsewhere)"
        );
        assert!(text.contains("\ncounters    ringbuf_misses 3\n"), "{text}");
        assert!(
            text.contains("containers  3 traced (the 2 started last shown;"),
            "{text}"
        );
        let table = &lines[lines.len() - 3..];
        assert_eq!(
            table[0],
            "NAME           ID            IMAGE  TRACEFILE  SYSCALLS  CAPS  LAST NEW   STATE"
        );
        assert_eq!(
            table[1],
            "web            0123456789ab  img    web-17            7     2  1m 5s ago  unknown"
        );
        // Numbers end in one column.
        assert_eq!(
            table[2].find("120  ").map(|i| i + 2),
            table[1].find("  7  ").map(|i| i + 2)
        );
    }

    #[test]
    fn counters_wrap_between_items() {
        let items: Vec<String> = (0..6).map(|i| format!("counter_{i} {i}")).collect();
        let lines = wrap(&items, 40);
        assert_eq!(lines[0], "counter_0 0, counter_1 1, counter_2 2,");
        assert!(lines.iter().all(|l| l.len() <= 40), "{lines:?}");
        assert_eq!(lines.join(" ").matches("counter_").count(), 6);
    }
}
