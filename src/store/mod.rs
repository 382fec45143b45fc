//! The SQLite store: schema from `migrations/` (embedded, applied on open, version in
//! `PRAGMA user_version`), WAL journal so readers never block the writer. What containers use
//! is stored as sets (`bits`, `record`) and read back as Tracefiles (`materialize`, `select`).

pub mod baseline;
pub mod bits;
pub mod containers;
pub mod coverage;
pub mod fleet;
pub mod lock;
pub mod materialize;
pub mod record;
pub mod refusals;
pub mod select;
pub mod status;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{Migrations, M};

static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/001_initial.sql")),
        M::up(include_str!("../../migrations/002_refusals.sql")),
        M::up(include_str!("../../migrations/003_sightings_received.sql")),
        M::up(include_str!("../../migrations/004_allowed.sql")),
        M::up(include_str!("../../migrations/005_pods.sql")),
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
    #[error("store {path} is not a SQLite database (or is corrupt): {why}; nothing was changed")]
    NotSqlite { path: PathBuf, why: String },
    #[error(
        "store {path} is a SQLite database but not a ctrace store ({why}); nothing was changed"
    )]
    NotCtrace { path: PathBuf, why: &'static str },
    #[error(
        "store `{path}` has schema version {version}, newer than this build knows ({known}); \
         read it with a newer ctrace"
    )]
    Newer {
        path: PathBuf,
        version: i64,
        known: i64,
    },
}

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

fn not_sqlite(path: &Path, why: impl std::fmt::Display) -> StoreError {
    StoreError::NotSqlite {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Refuses a file that is not empty and does not start with the SQLite header, before SQLite
/// opens it (opening for writing could otherwise recover a "hot journal" into it).
fn check_header(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(not_sqlite(path, format_args!("reading it: {e}"))),
    };
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    (&mut file)
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)
        .map_err(|e| not_sqlite(path, format_args!("reading it: {e}")))?;
    if header.is_empty() || header == SQLITE_HEADER {
        return Ok(());
    }
    Err(not_sqlite(
        path,
        format_args!(
            "it does not start with the SQLite header (it starts \"{}\")",
            header.escape_ascii()
        ),
    ))
}

/// SQLite's verdict on the file before anything is written: `PRAGMA quick_check` when
/// `thorough`, else reading the schema (which finds a damaged first page); then the schema
/// version (`PRAGMA user_version`), which a ctrace store has, or a refusal. Without a -wal
/// beside it no connection is using the file, so it is read as immutable: SQLite then
/// creates no -wal or -shm beside a file it refuses.
fn check_file(path: &Path, thorough: bool) -> Result<i64, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    let conn = if Path::new(&wal).exists() {
        Connection::open_with_flags(path, flags)
    } else {
        Connection::open_with_flags(format!("{}?immutable=1", file_uri(path)), flags)
    }
    .map_err(sqlite(path))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite(path))?;
    if thorough {
        let verdict: Result<Vec<String>, rusqlite::Error> = conn
            .prepare("PRAGMA quick_check(5)")
            .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect());
        match verdict {
            Ok(lines) if lines.len() == 1 && lines[0] == "ok" => {}
            Ok(lines) => {
                let why = format!("quick_check: {}", lines.join("; "));
                return Err(not_sqlite(path, why));
            }
            Err(e) => return Err(damaged(path, e)),
        }
    }
    let (version, tables): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), \
             (SELECT count(*) FROM sqlite_schema WHERE type = 'table')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| damaged(path, e))?;
    if version == 0 && tables > 0 {
        return Err(StoreError::NotCtrace {
            path: path.to_path_buf(),
            why: "it has tables and no schema version",
        });
    }
    Ok(version)
}

/// `file:` URI of a path, every byte but unreserved ones and `/` percent-encoded.
fn file_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

/// SQLite's "not a database" and "malformed" are the file's fault; anything else (busy,
/// permissions) is reported as it is.
fn damaged(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match e.sqlite_error_code() {
        Some(NotADatabase | DatabaseCorrupt) => not_sqlite(path, e),
        _ => sqlite(path)(e),
    }
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
    check_header(path)?;
    if path.exists() {
        check_file(path, true)?;
    }
    let mut conn = Connection::open(path).map_err(sqlite(path))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite(path))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sqlite(path))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite(path))?;
    conn.pragma_update(None, "foreign_keys", "ON")
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

/// Refuses a store whose schema is newer than this build's (a newer ctrace wrote it): its
/// tables may mean what this build cannot read. For commands that interpret the rows
/// (`options`, `diff`, `report`, `coverage`); `sql` and `status` read any version.
pub fn check_known_schema(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    // Negative: more migrations applied than this build has (a store of a newer ctrace).
    let pending = MIGRATIONS
        .pending_migrations(conn)
        .map_err(|source| StoreError::Migration {
            path: path.to_path_buf(),
            source,
        })?;
    if pending < 0 {
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sqlite(path))?;
        return Err(StoreError::Newer {
            path: path.to_path_buf(),
            version,
            known: version + i64::from(pending),
        });
    }
    Ok(())
}

/// Opens an existing store for queries; it is never created or migrated here.
pub fn open_ro(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing(path.to_path_buf()));
    }
    check_header(path)?;
    if check_file(path, false)? == 0 {
        return Err(StoreError::NotCtrace {
            path: path.to_path_buf(),
            why: "it has no ctrace schema; `ctrace trace` makes one",
        });
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
mod tests;
