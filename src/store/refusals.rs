//! What containers' own seccomp filters answered for the calls they refused (table
//! `refusals`, by `containers.seccomp`), added to Tracefiles as their `ERRNO` section.

use std::collections::BTreeMap;

use rusqlite::{params, params_from_iter, Connection, ToSql};

use crate::tracefile::Tracefile;

/// Stores (or replaces) what the probe measured for one seccomp setting.
pub fn save(
    conn: &Connection,
    seccomp: &str,
    errnos: &BTreeMap<String, u32>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(errnos).unwrap_or_else(|_| "{}".into());
    conn.execute(
        "INSERT INTO refusals (seccomp, probed_at, errnos) VALUES (?1, ?2, ?3) \
         ON CONFLICT (seccomp) DO UPDATE SET probed_at = excluded.probed_at, \
         errnos = excluded.errnos",
        params![seccomp, now_ms, json],
    )?;
    Ok(())
}

/// The seccomp settings already measured: the daemon does not probe them again.
pub fn measured(conn: &Connection) -> rusqlite::Result<std::collections::HashSet<String>> {
    let mut stmt = conn.prepare("SELECT seccomp FROM refusals")?;
    let keys = stmt.query_map([], |r| r.get(0))?;
    keys.collect()
}

/// The Tracefile names with a container that ran under `seccomp`: rewritten once it is known.
pub fn tracefiles_of(conn: &Connection, seccomp: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT t.path FROM tracefiles t JOIN runs r ON r.tracefile = t.id \
         JOIN containers c ON c.id = r.container WHERE c.seccomp = ?1",
    )?;
    let paths = stmt.query_map(params![seccomp], |r| r.get(0))?;
    paths.collect()
}

/// Adds the refusals of the containers `containers_sql` selects (a query of `containers.id`
/// values, with its parameters) to `tracefile`.
pub fn add_for_containers(
    conn: &Connection,
    containers_sql: &str,
    params: &[&dyn ToSql],
    tracefile: &mut Tracefile,
) -> rusqlite::Result<()> {
    // A store written before refusals were kept (schema 1), opened read-only: none to add.
    let kept: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'refusals')",
        [],
        |r| r.get(0),
    )?;
    if !kept {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT DISTINCT f.errnos FROM refusals f JOIN containers c ON c.seccomp = f.seccomp \
         WHERE c.id IN ({containers_sql})"
    ))?;
    let mut rows = stmt.query(params_from_iter(params.iter()))?;
    while let Some(row) = rows.next()? {
        let json: String = row.get(0)?;
        // Written by `save` only; a row that does not parse adds nothing rather than fail.
        let errnos: BTreeMap<String, u32> = serde_json::from_str(&json).unwrap_or_default();
        for (name, errno) in errnos {
            if crate::names::is_syscall_name(&name) {
                tracefile.add_errno(&name, errno);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_reach_the_tracefiles_of_their_containers() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open_rw(&dir.path().join("s.db")).unwrap();
        conn.execute_batch(
            "INSERT INTO containers (id, container_id, name, image, label, started_at, seccomp) \
             VALUES (1, 'a', 'a', 'i', 'l', 0, 'default'), (2, 'b', 'b', 'i', 'l', 0, 'custom'); \
             INSERT INTO tracefiles (id, path) VALUES (1, 'web'), (2, 'db'); \
             INSERT INTO sightings (container, tracefile, kind, abi, nr, init, first_seen, \
             last_seen, epochs) VALUES (1, 1, 'syscall', 'x86_64', 0, 0, 0, 0, 1), \
             (2, 2, 'syscall', 'x86_64', 0, 0, 0, 0, 1);",
        )
        .unwrap();
        let enosys = BTreeMap::from([("clone3".to_string(), 38)]);
        save(&conn, "default", &enosys, 1).unwrap();
        save(
            &conn,
            "custom",
            &BTreeMap::from([("mkdirat".to_string(), 95)]),
            1,
        )
        .unwrap();
        assert_eq!(tracefiles_of(&conn, "default").unwrap(), ["web"]);
        let mut tf = Tracefile::default();
        add_for_containers(&conn, "SELECT 1", &[], &mut tf).unwrap();
        assert_eq!(tf.errnos, enosys);
        let mut both = Tracefile::default();
        add_for_containers(&conn, "SELECT id FROM containers", &[], &mut both).unwrap();
        assert_eq!(both.errnos.len(), 2);
    }
}
