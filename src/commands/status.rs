//! `ctrace status`: is a daemon tracing into this store, with which kernel programs and
//! fallbacks, what it has counted, and which containers it traced. The daemon is found
//! through its lock (`store::lock::holder`: /proc/locks, nothing taken); everything else
//! comes from the store, opened read-only: the daemon's facts in `meta` (written at its start
//! and stop), its counters (written as they change), and the containers' rows.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::store::lock::{self, Holder};
use crate::store::status::{self as keys, ContainerRow};

mod text;

#[derive(Debug, Serialize)]
pub struct Report {
    /// The version of this `ctrace status`.
    pub version: String,
    /// When this report was made (Unix ms).
    pub now_ms: i64,
    pub daemon: Daemon,
    pub kernel: Kernel,
    /// The counters in the store's `meta` (ringbuf_misses, claim_failures, tracked_cgroups,
    /// slots_in_use, registry_containers, ...), numbers where they are numbers.
    pub counters: BTreeMap<String, serde_json::Value>,
    pub store: Store,
    pub containers: Containers,
}

#[derive(Debug, Serialize)]
pub struct Daemon {
    /// Whether a daemon holds the store's lock; null when that cannot be told (see `unknown`).
    pub running: Option<bool>,
    pub unknown: Option<String>,
    /// The running daemon's pid, or the last one's as the store has it.
    pub pid: Option<u32>,
    pub version: Option<String>,
    pub started_at_ms: Option<i64>,
    pub uptime_s: Option<i64>,
    /// When the last daemon stopped cleanly (null while one runs, or if it was killed).
    pub stopped_at_ms: Option<i64>,
    /// The kernel facts and counters were written by the daemon running now; false: they
    /// are the last daemon's (or this one has not written them yet).
    pub facts_current: bool,
}

/// The kernel programs and fallbacks the daemon uses (or the last one used).
#[derive(Debug, Default, Serialize)]
pub struct Kernel {
    pub capability_hook: Option<String>,
    /// `slots` (an array by cgroup id, with a collision hash) or `storage` (cgroup local
    /// storage).
    pub cgroup_state: Option<String>,
    pub cgroup_slots: Option<u64>,
    pub collision_hash_entries: Option<u64>,
    /// The per-CPU placement cache (else a helper call per syscall).
    pub task_cache: Option<bool>,
    /// Whether the syscall program is attached (only while labelled containers exist); null
    /// without a running daemon.
    pub syscalls_attached: Option<bool>,
    pub ringbuf_bytes: Option<u64>,
    pub epoch_ms: Option<u64>,
    pub runc: Option<bool>,
    pub data_dir: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Store {
    pub path: String,
    pub db_bytes: u64,
    pub wal_bytes: u64,
    pub shm_bytes: u64,
    pub total_bytes: u64,
    /// The last change to the store's files (Unix ms): what a report without a daemon is as
    /// of.
    pub as_of_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Containers {
    pub total: u64,
    pub shown: u64,
    pub list: Vec<Container>,
}

#[derive(Debug, Serialize)]
pub struct Container {
    pub name: String,
    pub id: String,
    pub short_id: String,
    pub image: String,
    /// The `ctrace.tracefile` label, and the Tracefile it was last recorded into.
    pub label: String,
    pub tracefile: Option<String>,
    pub syscalls: u64,
    pub capabilities: u64,
    pub last_first_sighting_ms: Option<i64>,
    pub started_at_ms: i64,
    pub stopped_at_ms: Option<i64>,
    /// `running`, `stopped`, or `unknown` (not seen stopping, and no daemon is watching).
    pub state: &'static str,
}

pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let report = gather(&args)?;
    if args.json {
        let json = serde_json::to_string_pretty(&report).context("writing the JSON")?;
        println!("{json}");
    } else {
        print!("{}", text::render(&report));
    }
    let ready = report.daemon.running == Some(true) && report.daemon.facts_current;
    if args.check && !ready {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gather(args: &StatusArgs) -> anyhow::Result<Report> {
    // The lock first: a daemon that stops meanwhile then shows as running with its facts,
    // not as stopped with the facts of a daemon that looked alive.
    let holder = lock::holder(&args.db);
    let conn = crate::store::open_ro(&args.db)?;
    let reading =
        |e| anyhow::Error::new(e).context(format!("reading store `{}`", args.db.display()));
    let meta = keys::meta(&conn).map_err(reading)?;
    let total = keys::container_count(&conn).map_err(reading)?;
    let rows = keys::containers(&conn, (!args.all).then_some(args.limit)).map_err(reading)?;
    drop(conn);
    let now_ms = crate::store::now_ms();
    let daemon = daemon(&holder, &meta, now_ms);
    let live = daemon.running == Some(true);
    let list: Vec<Container> = rows.into_iter().map(|r| container(r, live)).collect();
    let mut kernel = kernel(&meta);
    if !live {
        // A state of the moment: the last daemon's is not this one's.
        kernel.syscalls_attached = None;
    }
    Ok(Report {
        version: env!("CARGO_PKG_VERSION").to_string(),
        now_ms,
        kernel,
        counters: counters(&meta),
        store: store(&args.db),
        containers: Containers {
            total,
            shown: list.len() as u64,
            list,
        },
        daemon,
    })
}

fn number<T: std::str::FromStr>(meta: &BTreeMap<String, String>, key: &str) -> Option<T> {
    meta.get(key).and_then(|v| v.trim().parse().ok())
}

fn daemon(holder: &Holder, meta: &BTreeMap<String, String>, now_ms: i64) -> Daemon {
    let stored_pid: Option<u32> = number(meta, keys::DAEMON_PID);
    let (running, unknown, pid) = match holder {
        Holder::Held { pid, .. } => (Some(true), None, Some(*pid)),
        Holder::Free => (Some(false), None, stored_pid),
        Holder::Unknown(why) => (None, Some(why.clone()), stored_pid),
    };
    // The facts are this daemon's if it wrote its pid; without a daemon, the last one's.
    let facts_current = running == Some(true) && stored_pid == pid;
    let ours = running != Some(true) || facts_current;
    let mut started_at_ms = number(meta, keys::DAEMON_STARTED_AT).filter(|_| ours);
    if let (Holder::Held { started, .. }, None) = (holder, started_at_ms) {
        started_at_ms = started
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis());
    }
    Daemon {
        running,
        unknown,
        pid,
        version: meta.get(keys::DAEMON_VERSION).filter(|_| ours).cloned(),
        started_at_ms,
        uptime_s: started_at_ms
            .filter(|_| running == Some(true))
            .map(|t| (now_ms - t).max(0) / 1000),
        stopped_at_ms: number(meta, keys::DAEMON_STOPPED_AT).filter(|_| running != Some(true)),
        facts_current,
    }
}

fn kernel(meta: &BTreeMap<String, String>) -> Kernel {
    let flag = |key: &str| meta.get(key).map(|v| v == "on" || v == "1");
    Kernel {
        capability_hook: meta.get(keys::DAEMON_CAPABILITY_HOOK).cloned(),
        cgroup_state: meta.get(keys::DAEMON_CGROUP_STATE).cloned(),
        cgroup_slots: number(meta, keys::DAEMON_CGROUP_SLOTS),
        collision_hash_entries: number(meta, keys::DAEMON_COLLISION_HASH),
        task_cache: flag(keys::DAEMON_TASK_CACHE),
        syscalls_attached: flag(keys::SYSCALLS_ATTACHED),
        ringbuf_bytes: number(meta, keys::DAEMON_RINGBUF_SIZE),
        epoch_ms: number(meta, keys::DAEMON_EPOCH_MS),
        runc: flag(keys::DAEMON_RUNC),
        data_dir: meta.get(keys::DAEMON_DATA_DIR).cloned(),
    }
}

/// Every `meta` row that is not a daemon fact: the counters.
fn counters(meta: &BTreeMap<String, String>) -> BTreeMap<String, serde_json::Value> {
    meta.iter()
        .filter(|(k, _)| !k.starts_with("daemon_") && k.as_str() != keys::SYSCALLS_ATTACHED)
        .map(|(k, v)| {
            let value = v.parse::<i64>().map_or_else(
                |_| serde_json::Value::from(v.as_str()),
                serde_json::Value::from,
            );
            (k.clone(), value)
        })
        .collect()
}

fn store(db: &Path) -> Store {
    let side = |suffix: &str| {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        std::fs::metadata(name).ok()
    };
    let files = [side(""), side("-wal"), side("-shm")];
    let bytes = |i: usize| files[i].as_ref().map_or(0, |m| m.len());
    let as_of_ms = files[..2]
        .iter()
        .flatten()
        .filter_map(|m| m.modified().ok())
        .max()
        .map(|t| chrono::DateTime::<chrono::Utc>::from(t).timestamp_millis());
    Store {
        path: db.display().to_string(),
        db_bytes: bytes(0),
        wal_bytes: bytes(1),
        shm_bytes: bytes(2),
        total_bytes: bytes(0) + bytes(1) + bytes(2),
        as_of_ms,
    }
}

fn container(row: ContainerRow, live: bool) -> Container {
    let state = match (row.stopped_at, live) {
        (Some(_), _) => "stopped",
        (None, true) => "running",
        (None, false) => "unknown",
    };
    Container {
        short_id: row.container_id.chars().take(12).collect(),
        id: row.container_id,
        name: row.name,
        image: row.image,
        label: row.label,
        tracefile: row.tracefile,
        syscalls: row.syscalls,
        capabilities: row.capabilities,
        last_first_sighting_ms: row.last_first_sighting,
        started_at_ms: row.started_at,
        stopped_at_ms: row.stopped_at,
        state,
    }
}
