//! What `ctrace status` reads from the store: the daemon's facts and counters in `meta`
//! (written by `ctrace trace`: the keys below at start and stop, the counters as they
//! change), and per container its Tracefile, how much it used, and when it last used
//! something for the first time.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection};

/// `meta` keys the daemon writes at start (its facts; a key that does not apply is removed).
pub const DAEMON_PID: &str = "daemon_pid";
pub const DAEMON_VERSION: &str = "daemon_version";
/// Unix ms.
pub const DAEMON_STARTED_AT: &str = "daemon_started_at";
/// Unix ms, written when it stops cleanly, removed when one starts.
pub const DAEMON_STOPPED_AT: &str = "daemon_stopped_at";
/// How capability checks are observed (`CapSource::describe`).
pub const DAEMON_CAPABILITY_HOOK: &str = "daemon_capability_hook";
/// `slots` or `storage` (cgroup local storage).
pub const DAEMON_CGROUP_STATE: &str = "daemon_cgroup_state";
/// Slots in the array, entries in the collision hash (slots backend only).
pub const DAEMON_CGROUP_SLOTS: &str = "daemon_cgroup_slots";
pub const DAEMON_COLLISION_HASH: &str = "daemon_collision_hash";
/// `on` or `off`: the per-CPU placement cache.
pub const DAEMON_TASK_CACHE: &str = "daemon_task_cache";
/// Bytes of the kernel's ring buffer.
pub const DAEMON_RINGBUF_SIZE: &str = "daemon_ringbuf_size";
pub const DAEMON_EPOCH_MS: &str = "daemon_epoch_ms";
/// 1 with `--runc`, else 0.
pub const DAEMON_RUNC: &str = "daemon_runc";
pub const DAEMON_DATA_DIR: &str = "daemon_data_dir";
/// 1 while the syscall program is attached (the reader's occupancy report), else 0.
pub const SYSCALLS_ATTACHED: &str = "syscalls_attached";

/// Every `meta` row.
pub fn meta(conn: &Connection) -> rusqlite::Result<BTreeMap<String, String>> {
    let mut stmt = conn.prepare("SELECT key, value FROM meta")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// One traced container as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRow {
    pub container_id: String,
    pub name: String,
    pub image: String,
    /// The `ctrace.tracefile` label (a pattern).
    pub label: String,
    /// The Tracefile it was last recorded into (None before its first sighting).
    pub tracefile: Option<String>,
    pub started_at: i64,
    pub stopped_at: Option<i64>,
    /// Distinct syscalls (per ABI) and granted capabilities of its application phase.
    pub syscalls: u64,
    pub capabilities: u64,
    /// When it last used something for the first time (Unix ms).
    pub last_first_sighting: Option<i64>,
}

pub fn container_count(conn: &Connection) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM containers", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The containers most recently started first; `limit` None for all.
pub fn containers(conn: &Connection, limit: Option<u64>) -> rusqlite::Result<Vec<ContainerRow>> {
    let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare(
        "SELECT id, container_id, name, image, label, started_at, stopped_at FROM containers \
         ORDER BY started_at DESC, id DESC LIMIT ?1",
    )?;
    let rows: Vec<(i64, ContainerRow)> = stmt
        .query_map(params![limit], |r| {
            Ok((
                r.get(0)?,
                ContainerRow {
                    container_id: r.get(1)?,
                    name: r.get(2)?,
                    image: r.get(3)?,
                    label: r.get(4)?,
                    tracefile: None,
                    started_at: r.get(5)?,
                    stopped_at: r.get(6)?,
                    syscalls: 0,
                    capabilities: 0,
                    last_first_sighting: None,
                },
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    // first_sightings has no index by container: one pass finds each one's latest row.
    let latest: HashMap<i64, i64> = conn
        .prepare("SELECT container, max(id) FROM first_sightings GROUP BY container")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|(row_id, mut c)| {
            c.tracefile = last_tracefile(conn, row_id)?;
            (c.syscalls, c.capabilities) = counts(conn, row_id)?;
            if let Some(id) = latest.get(&row_id) {
                c.last_first_sighting = conn.query_row(
                    "SELECT max(json_extract(j.value, '$[1]')) FROM first_sightings f, \
                     json_each(f.items) j WHERE f.id = ?1",
                    params![id],
                    |r| r.get(0),
                )?;
            }
            Ok(c)
        })
        .collect()
}

fn last_tracefile(conn: &Connection, container: i64) -> rusqlite::Result<Option<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.path FROM runs r JOIN tracefiles t ON t.id = r.tracefile \
         WHERE r.container = ?1 ORDER BY r.last_seen DESC LIMIT 1",
    )?;
    let mut rows = stmt.query(params![container])?;
    rows.next()?.map(|r| r.get(0)).transpose()
}

/// Distinct syscalls (ABI and number) and granted capabilities in the application phase:
/// the union of the container's bitmaps, as the `container_summary` view counts them.
fn counts(conn: &Connection, container: i64) -> rusqlite::Result<(u64, u64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind = 'syscall', coalesce(abi, ''), w0, w1, w2, w3, w4, w5, w6, w7 FROM runs \
         WHERE container = ?1 AND init = 0 AND kind IN ('syscall', 'cap_granted')",
    )?;
    let mut sets: BTreeMap<(bool, String), [i64; 8]> = BTreeMap::new();
    let mut rows = stmt.query(params![container])?;
    while let Some(r) = rows.next()? {
        let set = sets.entry((r.get(0)?, r.get(1)?)).or_default();
        for (i, word) in set.iter_mut().enumerate() {
            *word |= r.get::<_, i64>(2 + i)?;
        }
    }
    let (mut syscalls, mut caps) = (0, 0);
    for ((is_syscall, _), set) in sets {
        let n: u64 = set.iter().map(|w| u64::from(w.count_ones())).sum();
        if is_syscall {
            syscalls += n;
        } else {
            caps += n;
        }
    }
    Ok((syscalls, caps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_newest_first_with_their_counts() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open_rw(&dir.path().join("s.db")).unwrap();
        conn.execute_batch(
            "INSERT INTO containers (id, container_id, name, image, label, started_at) VALUES \
             (1, 'aaa', 'old', 'img', 'old', 10), (2, 'bbb', 'new', 'img', 'n-%H', 20); \
             INSERT INTO tracefiles VALUES (1, 'n-01'), (2, 'n-02'); \
             INSERT INTO runs (container, tracefile, kind, abi, init, first_seen, last_seen, w0) \
             VALUES (2, 1, 'syscall', 'x86_64', 0, 1, 5, 7), \
                    (2, 2, 'syscall', 'x86_64', 0, 6, 9, 12), \
                    (2, 2, 'syscall', 'i386', 0, 6, 9, 1), \
                    (2, 2, 'syscall', 'x86_64', 1, 6, 9, 255), \
                    (2, 2, 'cap_granted', NULL, 0, 6, 9, 3); \
             INSERT INTO first_sightings (container, tracefile, kind, abi, items) VALUES \
             (2, 1, 'syscall', 'x86_64', '[[0, 100, 1, \"a\"], [1, 150, 1, \"a\"]]'), \
             (2, 2, 'syscall', 'x86_64', '[[3, 300, 1, \"a\"], [2, 250, 1, \"a\"]]'); \
             INSERT INTO meta VALUES ('ringbuf_misses', '0');",
        )
        .unwrap();
        assert_eq!(container_count(&conn).unwrap(), 2);
        let all = containers(&conn, None).unwrap();
        assert_eq!(all.len(), 2);
        let new = &all[0];
        assert_eq!(new.name, "new");
        assert_eq!(new.tracefile.as_deref(), Some("n-02"));
        // x86_64 {0,1,2} ∪ {2,3} and i386 {0}; the runtime's phase is left out.
        assert_eq!((new.syscalls, new.capabilities), (5, 2));
        assert_eq!(new.last_first_sighting, Some(300));
        assert_eq!(all[1].name, "old");
        assert_eq!((all[1].tracefile.as_ref(), all[1].syscalls), (None, 0));
        assert_eq!(containers(&conn, Some(1)).unwrap().len(), 1);
        assert_eq!(meta(&conn).unwrap()["ringbuf_misses"], "0");
    }
}
