//! The SQLite store: schema from `migrations/` (embedded, applied on open, version in
//! `PRAGMA user_version`), WAL journal so readers never block the writer.

pub mod select;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{Migrations, M};

static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    Migrations::new(vec![M::up(include_str!(
        "../../migrations/001_initial.sql"
    ))])
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
        assert_eq!(v, 1);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM container_summary", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
