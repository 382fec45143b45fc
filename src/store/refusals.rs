//! What containers' own seccomp filters answered for the calls they refused (table
//! `refusals`, by `containers.seccomp`), added to Tracefiles as their `ERRNO` section, and
//! what each setting allows (`refusals.allowed`), which `ctrace report` compares with.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, params_from_iter, Connection, ToSql};

use crate::abi::Abi;
use crate::refusals::ProbeTarget;
use crate::tracefile::Tracefile;

/// Stores (or replaces) what the probe measured for one seccomp setting: the errnos other
/// than EPERM by name, and the names allowed per ABI.
pub fn save(
    conn: &Connection,
    seccomp: &str,
    errnos: &BTreeMap<String, u32>,
    allowed: &BTreeMap<Abi, BTreeSet<String>>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(errnos).unwrap_or_else(|_| "{}".into());
    let by_abi: BTreeMap<&str, &BTreeSet<String>> =
        allowed.iter().map(|(abi, n)| (abi.name(), n)).collect();
    let allowed = serde_json::to_string(&by_abi).unwrap_or_else(|_| "{}".into());
    conn.execute(
        "INSERT INTO refusals (seccomp, probed_at, errnos, allowed) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (seccomp) DO UPDATE SET probed_at = excluded.probed_at, \
         errnos = excluded.errnos, allowed = excluded.allowed",
        params![seccomp, now_ms, json, allowed],
    )?;
    Ok(())
}

/// The seccomp settings already measured completely: the daemon does not probe them again.
/// Rows from before `refusals.allowed` was kept are probed again once.
pub fn measured(conn: &Connection) -> rusqlite::Result<std::collections::HashSet<String>> {
    let mut stmt = conn.prepare("SELECT seccomp FROM refusals WHERE allowed IS NOT NULL")?;
    let keys = stmt.query_map([], |r| r.get(0))?;
    keys.collect()
}

/// What the engine's default seccomp setting allows, as the errno probe measured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultAllowlist {
    /// Docker's version (`20.10.24+dfsg1`).
    pub engine_version: String,
    /// Unix ms.
    pub probed_at: i64,
    /// Per probed ABI, the syscall names allowed (none for an ABI killed as a whole).
    pub allowed: BTreeMap<Abi, BTreeSet<String>>,
}

/// The newest measurement of the default setting (no security options, no capabilities
/// added or dropped, not privileged) that has `allowed`, whatever the engine version; `None`
/// when there is none, or in a store from before `refusals.allowed` (opened read-only).
pub fn default_allowlist(conn: &Connection) -> rusqlite::Result<Option<DefaultAllowlist>> {
    let kept: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name = 'refusals' AND p.name = 'allowed')",
        [],
        |r| r.get(0),
    )?;
    if !kept {
        return Ok(None);
    }
    let mut stmt = conn.prepare(
        "SELECT seccomp, probed_at, allowed FROM refusals WHERE allowed IS NOT NULL \
         ORDER BY probed_at DESC, rowid DESC",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        let Some(engine) = ProbeTarget::default_setting_engine(&key) else {
            continue;
        };
        let json: String = row.get(2)?;
        // Written by `save` only; a row that does not parse is skipped, not an error.
        let Ok(by_abi) = serde_json::from_str::<BTreeMap<String, BTreeSet<String>>>(&json) else {
            tracing::warn!("refusals.allowed of setting {key} is not valid JSON; skipped");
            continue;
        };
        let allowed = by_abi
            .into_iter()
            .filter_map(|(abi, names)| Some((abi.parse::<Abi>().ok()?, names)))
            .collect();
        return Ok(Some(DefaultAllowlist {
            engine_version: engine.to_string(),
            probed_at: row.get(1)?,
            allowed,
        }));
    }
    Ok(None)
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
        let none = BTreeMap::new();
        save(&conn, "default", &enosys, &none, 1).unwrap();
        save(
            &conn,
            "custom",
            &BTreeMap::from([("mkdirat".to_string(), 95)]),
            &none,
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

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_default_allowlist_is_the_newest_default_setting_with_names() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open_rw(&dir.path().join("s.db")).unwrap();
        assert_eq!(default_allowlist(&conn).unwrap(), None);
        let default = ProbeTarget::default();
        let custom = ProbeTarget {
            security_opt: vec!["no-new-privileges".into()],
            ..ProbeTarget::default()
        };
        let errnos = BTreeMap::new();
        let old = BTreeMap::from([(Abi::X86_64, names(&["read"])), (Abi::I386, names(&[]))]);
        let new = BTreeMap::from([
            (Abi::X86_64, names(&["getpid", "read"])),
            (Abi::I386, names(&["read"])),
        ]);
        save(&conn, &default.setting_key("19.03"), &errnos, &old, 10).unwrap();
        save(&conn, &default.setting_key("20.10"), &errnos, &new, 20).unwrap();
        // Newer, but not the default setting.
        save(&conn, &custom.setting_key("20.10"), &errnos, &old, 30).unwrap();
        // Newer, the default setting, but from before `allowed` was kept.
        conn.execute(
            "INSERT INTO refusals (seccomp, probed_at, errnos) VALUES (?1, 40, '{}')",
            params![default.setting_key("24.0")],
        )
        .unwrap();
        let found = default_allowlist(&conn).unwrap().unwrap();
        assert_eq!(found.engine_version, "20.10");
        assert_eq!(found.probed_at, 20);
        assert_eq!(found.allowed, new);
        // The row without `allowed` is probed again by the daemon; the others are not.
        let measured = measured(&conn).unwrap();
        assert_eq!(measured.len(), 3);
        assert!(!measured.contains(&default.setting_key("24.0")));
        // Stored as sorted JSON arrays by ABI name.
        let json: String = conn
            .query_row(
                "SELECT allowed FROM refusals WHERE probed_at = 20",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(json, r#"{"i386":["read"],"x86_64":["getpid","read"]}"#);
    }
}
