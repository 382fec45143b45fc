//! The SQLite store: schema from `migrations/` (embedded, applied on open, version in
//! `PRAGMA user_version`), WAL journal so readers never block the writer. What containers use
//! is stored as sets (`bits`, `record`) and read back as Tracefiles (`materialize`, `select`).

pub mod bits;
pub mod containers;
pub mod materialize;
pub mod record;
pub mod refusals;
pub mod select;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{Migrations, M};

static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/001_initial.sql")),
        M::up(include_str!("../../migrations/002_refusals.sql")),
    ])
});

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store `{path}`: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("store `{path}`: migrating the schema: {source}")]
    Migration {
        path: PathBuf,
        source: rusqlite_migration::Error,
    },
    #[error("store `{0}` does not exist (run `ctrace trace --db {0}` first)")]
    Missing(PathBuf),
    #[error("creating the directory of store `{path}`: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens (creating if needed) the store for writing and brings its schema up to date.
pub fn open_rw(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(sqlite(path))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sqlite(path))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite(path))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sqlite(path))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite(path))?;
    MIGRATIONS
        .to_latest(&mut conn)
        .map_err(|source| StoreError::Migration {
            path: path.to_path_buf(),
            source,
        })?;
    bits::store_names(&conn).map_err(sqlite(path))?;
    Ok(conn)
}

/// Opens an existing store for queries; it is never created or migrated here.
pub fn open_ro(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing(path.to_path_buf()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(path))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite(path))?;
    Ok(conn)
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid_and_idempotent() {
        MIGRATIONS.validate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        drop(open_rw(&db).unwrap());
        let conn = open_rw(&db).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM container_summary", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    /// Sets extend while all their items come back, and a missing item ends its own run.
    #[test]
    fn sets_coalesce_over_epochs() {
        use crate::abi::Abi;
        use crate::kernel::event::{Item, Phase, Sighting};
        const E: i64 = 3_600_000;
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_rw(&dir.path().join("s.db")).unwrap();
        conn.execute_batch(
            "INSERT INTO containers (id, container_id, name, image, label, started_at) \
             VALUES (1, 'c', 'web', 'i', 'web', 0); INSERT INTO tracefiles VALUES (1, 'web')",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        let mut sheet = record::Sheet::load(&tx, 1, 1, E, 100 * E).unwrap();
        let sight = |nr| Sighting {
            cgroup_id: 9,
            item: Item::Syscall {
                abi: Abi::X86_64,
                nr,
            },
            phase: Phase::App,
            boot_ns: 0,
            pid: 7,
            comm: "app".into(),
        };
        // read+write in epochs 100..=103, mkdir (83) only in 100; 104 still open.
        for e in 100..=104 {
            for nr in [0, 1] {
                sheet.record(&tx, &sight(nr), e * E + 10).unwrap();
            }
            if e == 100 {
                sheet.record(&tx, &sight(83), e * E + 20).unwrap();
            }
            sheet.flush(&tx).unwrap();
        }
        tx.commit().unwrap();
        let rows: Vec<(String, i64, i64, i64)> = conn
            .prepare("SELECT name, first_seen, last_seen, epochs FROM sightings ORDER BY name, first_seen")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let (t, m) = (|e: i64| e * E + 10, 100 * E + 20);
        assert_eq!(
            rows,
            [
                ("mkdir".into(), 100 * E + 10, m, 1),
                ("read".into(), 100 * E + 10, m, 1),
                ("read".into(), t(101), t(103), 3),
                ("read".into(), t(104), t(104), 1),
                ("write".into(), 100 * E + 10, m, 1),
                ("write".into(), t(101), t(103), 3),
                ("write".into(), t(104), t(104), 1),
            ]
        );
        let firsts: Vec<(String, i64, String)> = conn
            .prepare("SELECT name, pid, comm FROM sighting_details ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(firsts.len(), 3, "{firsts:?}");
        assert_eq!(firsts[0], ("mkdir".into(), 7, "app".into()));
    }
}
