//! Fixtures for the file-based commands: Tracefile texts and a store with the real schema.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

/// An application's Tracefile: both ABIs and capabilities.
pub const APP: &str = "\
ARCH
x86_64

CAPABILITIES
net_raw
chown

SYSCALLS
read
write
mkdir

SYSCALLS:i386
_llseek
socketcall
write
";

/// A runtime baseline (`ctrace requirements`).
pub const BASELINE: &str = "\
ARCH
x86_64

CAPABILITIES

SYSCALLS
execve
futex
write
";

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub const DAY: i64 = 24 * 3600 * 1000;

/// kind, abi, nr, name, first_seen, last_seen
type Sighting<'a> = (&'a str, Option<&'a str>, i64, &'a str, i64, i64);

/// A new store at `path` with the first schema only (as an old ctrace made it; opening it
/// for writing migrates it).
fn first_schema_store(path: &Path) -> Connection {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(include_str!("../../migrations/001_initial.sql"))
        .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn
}

/// A store with the real schema: container `web` used read+write 10 days ago, read+mkdir
/// (and i386 write) 2 days ago, and chown; optionally a runtime baseline.
pub fn make_store(path: &Path, baseline: Option<&str>) {
    let conn = first_schema_store(path);
    let now = now_ms();
    conn.execute(
        "INSERT INTO containers (id, container_id, name, image, label, started_at) \
         VALUES (1, ?1, 'web', 'ctrace-test/busybox', 'web-%Y', ?2)",
        rusqlite::params!["a".repeat(64), now - 11 * DAY],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO tracefiles (id, path) VALUES (1, 'web-2026')",
        [],
    )
    .unwrap();
    let rows: [Sighting; 6] = [
        (
            "syscall",
            Some("x86_64"),
            0,
            "read",
            now - 10 * DAY,
            now - 9 * DAY,
        ),
        (
            "syscall",
            Some("x86_64"),
            1,
            "write",
            now - 10 * DAY,
            now - 9 * DAY,
        ),
        (
            "syscall",
            Some("x86_64"),
            0,
            "read",
            now - 2 * DAY,
            now - DAY,
        ),
        (
            "syscall",
            Some("x86_64"),
            83,
            "mkdir",
            now - 2 * DAY,
            now - DAY,
        ),
        (
            "syscall",
            Some("i386"),
            4,
            "write",
            now - 2 * DAY,
            now - DAY,
        ),
        ("cap_granted", None, 0, "chown", now - 2 * DAY, now - DAY),
    ];
    for (kind, abi, nr, name, first, last) in rows {
        conn.execute(
            "INSERT INTO sightings (container, tracefile, kind, abi, nr, name, first_seen, last_seen) \
             VALUES (1, 1, ?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![kind, abi, nr, name, first, last],
        )
        .unwrap();
    }
    if let Some(text) = baseline {
        conn.execute(
            "INSERT INTO requirements VALUES ('20.10.24', ?1, ?2)",
            rusqlite::params![now, text],
        )
        .unwrap();
    }
}

/// One container run of a node store: its `containers.id`, name, label (also its Tracefile)
/// and items as (kind, abi, nr, name), all used from 2 days to 1 day ago.
pub struct NodeRun<'a> {
    pub id: i64,
    pub name: &'a str,
    pub label: &'a str,
    pub items: &'a [(&'a str, Option<&'a str>, i64, &'a str)],
}

/// A node's store with the real (first) schema: the given container runs, an optional
/// runtime baseline as (engine version, Tracefile text) and `meta.node`.
pub fn make_node_store(
    path: &Path,
    runs: &[NodeRun],
    baseline: Option<(&str, &str)>,
    node: Option<&str>,
) {
    let conn = first_schema_store(path);
    let now = now_ms();
    for run in runs {
        conn.execute(
            "INSERT INTO containers (id, container_id, name, image, label, started_at) \
             VALUES (?1, ?2, ?3, 'ctrace-test/busybox', ?4, ?5)",
            rusqlite::params![
                run.id,
                format!("{:064x}", run.id),
                run.name,
                run.label,
                now - 3 * DAY + run.id
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT OR IGNORE INTO tracefiles (path) VALUES (?1)",
            [run.label],
        )
        .unwrap();
        for (kind, abi, nr, name) in run.items {
            conn.execute(
                "INSERT INTO sightings (container, tracefile, kind, abi, nr, name, first_seen, \
                 last_seen) SELECT ?1, id, ?2, ?3, ?4, ?5, ?6, ?7 FROM tracefiles WHERE path = ?8",
                rusqlite::params![
                    run.id,
                    kind,
                    abi,
                    nr,
                    name,
                    now - 2 * DAY,
                    now - DAY,
                    run.label
                ],
            )
            .unwrap();
        }
    }
    if let Some((engine, text)) = baseline {
        conn.execute(
            "INSERT INTO requirements VALUES (?1, ?2, ?3)",
            rusqlite::params![engine, now, text],
        )
        .unwrap();
    }
    if let Some(node) = node {
        conn.execute("INSERT INTO meta VALUES ('node', ?1)", [node])
            .unwrap();
    }
}
