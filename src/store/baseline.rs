//! The runtime baseline (`ctrace requirements`) as the store keeps it: table
//! `requirements`, one Tracefile per Docker engine version, plus what the daemon saw the
//! runtime call under a container's filter (`sightings.init = 2`).

use std::path::Path;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};

use crate::abi::Abi;
use crate::names;
use crate::tracefile::parse::parse_str;
use crate::tracefile::Tracefile;

/// The baseline recorded for this engine version, as its Tracefile's text.
pub fn recorded(conn: &Connection, engine_version: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT tracefile FROM requirements WHERE engine_version = ?1",
        params![engine_version],
        |r| r.get(0),
    )
    .optional()
}

/// The key of a baseline recorded under another runtime than the engine's default.
pub fn runtime_key(engine_version: &str, runtime: &str) -> String {
    format!("{engine_version}/{runtime}")
}

/// Stores (or replaces) the baseline of an engine version.
pub fn save(
    conn: &Connection,
    engine_version: &str,
    recorded_at_ms: i64,
    tracefile: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO requirements (engine_version, recorded_at, tracefile) VALUES (?1, ?2, ?3) \
         ON CONFLICT (engine_version) DO UPDATE SET recorded_at = excluded.recorded_at, \
         tracefile = excluded.tracefile",
        params![engine_version, recorded_at_ms, tracefile],
    )?;
    Ok(())
}

/// The runtime baseline cached in the store by `ctrace requirements`.
#[derive(Debug, Clone)]
pub struct StoredBaseline {
    pub engine_version: String,
    /// Unix milliseconds.
    pub recorded_at: i64,
    pub tracefile: Tracefile,
}

/// The most recently recorded baseline of an engine's default runtime in the store, if
/// any (`requirements --runtime` keeps others apart). The stored Tracefile text is parsed
/// as strictly as a file.
pub fn stored_baseline(conn: &Connection) -> anyhow::Result<Option<StoredBaseline>> {
    let row: Option<(String, i64, String)> = conn
        .query_row(
            "SELECT engine_version, recorded_at, tracefile FROM requirements \
             WHERE engine_version NOT LIKE '%/%' ORDER BY recorded_at DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .context("reading the runtime baseline (table `requirements`) from the store")?;
    let Some((engine_version, recorded_at, text)) = row else {
        return Ok(None);
    };
    let source = format!(
        "{}[requirements, engine {engine_version}]",
        conn.path().filter(|p| !p.is_empty()).unwrap_or("store")
    );
    let mut tracefile = parse_str(&text, Path::new(&source))?;
    tracefile.merge(&observed_runtime_calls(conn)?);
    Ok(Some(StoredBaseline {
        engine_version,
        recorded_at,
        tracefile,
    }))
}

/// What the runtime called under a container's own seccomp filter, in every container start
/// the daemon recorded. The `requirements` recording is a sample: the runtime's Go
/// scheduler calls some things only now and then (sched_yield, tgkill), so every start
/// seen since adds to the baseline.
fn observed_runtime_calls(conn: &Connection) -> anyhow::Result<Tracefile> {
    let mut stmt = conn
        .prepare(
            "SELECT DISTINCT abi, name FROM sightings \
             WHERE kind = 'syscall' AND init = 2 AND name IS NOT NULL",
        )
        .context("reading the runtime's recorded calls from the store")?;
    let mut rows = stmt.query([])?;
    let mut observed = Tracefile::default();
    while let Some(row) = rows.next()? {
        let abi: Option<String> = row.get(0)?;
        let name: String = row.get(1)?;
        if let Some(abi) = abi.and_then(|a| a.parse::<Abi>().ok()) {
            if names::syscall_number(abi, &name).is_some() {
                observed.add_syscall(abi, &name);
            }
        }
    }
    Ok(observed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store;

    fn tracefile(conn: &Connection) -> anyhow::Result<Option<Tracefile>> {
        Ok(stored_baseline(conn)?.map(|b| b.tracefile))
    }

    #[test]
    fn baseline_adds_what_the_runtime_was_seen_calling_under_its_filter() {
        let dir = tempfile::tempdir().unwrap();
        let conn = store::open_rw(&dir.path().join("s.db")).unwrap();
        let mut recorded = Tracefile::default();
        recorded.add_syscall(Abi::X86_64, "execve");
        conn.execute(
            "INSERT INTO requirements VALUES ('20.10.24', 1, ?1)",
            [recorded.render()],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO containers (container_id, name, image, label, started_at) \
             VALUES ('c', 'n', 'i', 'l', 0);
             INSERT INTO tracefiles (path) VALUES ('l');
             INSERT INTO sightings (container, tracefile, kind, abi, nr, name, init, first_seen, last_seen) \
             VALUES (1, 1, 'syscall', 'x86_64', 24, 'sched_yield', 2, 0, 0),
                    (1, 1, 'syscall', 'x86_64', 165, 'mount', 1, 0, 0),
                    (1, 1, 'syscall', 'x86_64', 83, 'mkdir', 0, 0, 0);",
        )
        .unwrap();
        let baseline = tracefile(&conn).unwrap().unwrap();
        // Under the filter: added. Before the filter, or the application's: not.
        let native = &baseline.syscalls[&Abi::X86_64];
        assert!(
            native.contains("execve") && native.contains("sched_yield"),
            "{native:?}"
        );
        assert!(
            !native.contains("mount") && !native.contains("mkdir"),
            "{native:?}"
        );
    }

    #[test]
    fn baseline_comes_from_the_newest_requirements_row() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let conn = store::open_rw(&db).unwrap();
        assert!(tracefile(&conn).unwrap().is_none());
        let mut old = Tracefile::default();
        old.add_syscall(Abi::X86_64, "read");
        let mut new = Tracefile::default();
        new.add_syscall(Abi::X86_64, "execve");
        conn.execute(
            "INSERT INTO requirements VALUES ('20.10.23', 1, ?1), ('20.10.24', 2, ?2)",
            [old.render(), new.render()],
        )
        .unwrap();
        assert_eq!(tracefile(&conn).unwrap(), Some(new));
        let b = stored_baseline(&conn).unwrap().unwrap();
        assert_eq!(b.engine_version, "20.10.24");

        conn.execute(
            "INSERT INTO requirements VALUES ('99', 3, 'SYSCALLS\nnope\n')",
            [],
        )
        .unwrap();
        let err = format!("{:#}", tracefile(&conn).unwrap_err());
        assert!(
            err.contains("s.db[requirements, engine 99]:2: unknown"),
            "{err}"
        );
    }
}
