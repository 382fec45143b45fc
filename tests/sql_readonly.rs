//! `ctrace sql` writes nothing: statements that would write (in the store or elsewhere) are
//! refused with a clear message and exit 2, reading works, and the output formats (TSV with
//! escapes, `--csv`, `--json`) are exact. Through the real binary, on a store built here.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use common::files_in;

/// A store with one container (whose name needs escaping) and one first sighting.
fn store() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ctrace.db");
    let conn = ctrace::store::open_rw(&db).unwrap();
    conn.execute_batch(
        "INSERT INTO containers (id, container_id, name, image, label, started_at) \
         VALUES (1, 'c0ffee', 'we\tb\nx\\y', 'img, \"quoted\"', 'web', 1700000000000); \
         INSERT INTO tracefiles (id, path) VALUES (1, 'web'); \
         INSERT INTO first_sightings (container, tracefile, kind, abi, items) \
         VALUES (1, 1, 'syscall', 'x86_64', '[[83, 1700000000000, 7, \"app\"]]'); \
         INSERT INTO sightings (container, tracefile, kind, abi, nr, name, first_seen, last_seen) \
         VALUES (1, 1, 'syscall', 'x86_64', 83, 'mkdir', 1700000000000, 1700000000000);",
    )
    .unwrap();
    drop(conn);
    (dir, db)
}

fn sql(db: &Path, extra: &[&str], query: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .arg("sql")
        .arg("--db")
        .arg(db)
        .args(extra)
        .arg(query)
        .output()
        .expect("running ctrace")
}

fn ok(db: &Path, extra: &[&str], query: &str) -> String {
    let out = sql(db, extra, query);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{query}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// The query is refused: exit 2, one message saying `sql` is read-only and what it refused.
fn refused(db: &Path, query: &str, what: &str) {
    let out = sql(db, &[], query);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{query}: {stderr}");
    assert!(
        stderr.starts_with("ctrace: error: `ctrace sql` is read-only: ")
            && stderr.contains(&format!("{what} is refused (query: ")),
        "{query}: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{query}");
}

fn user_version(db: &Path) -> String {
    ok(db, &[], "PRAGMA user_version")
}

#[test]
fn writes_are_refused() {
    let (dir, db) = store();
    // A reader of a WAL store leaves its -wal and -shm files (SQLite's): no more after it.
    user_version(&db);
    let before = files_in(dir.path());
    let bytes = std::fs::read(&db).unwrap();
    let copy = dir.path().join("copy.db");
    let other = dir.path().join("other.db");
    refused(&db, &format!("VACUUM INTO '{}'", copy.display()), "VACUUM");
    refused(&db, "vacuum", "VACUUM");
    refused(&db, &format!("ATTACH '{}' AS o", other.display()), "ATTACH");
    refused(&db, "ATTACH ':memory:' AS m", "ATTACH");
    refused(&db, "DETACH main", "DETACH");
    refused(
        &db,
        "INSERT INTO tracefiles (path) VALUES ('x')",
        "INSERT into tracefiles",
    );
    refused(&db, "DELETE FROM containers", "DELETE from containers");
    refused(
        &db,
        "UPDATE containers SET name = 'x'",
        "UPDATE of containers",
    );
    refused(&db, "CREATE TABLE t (x)", "CREATE TABLE");
    refused(&db, "CREATE TEMP VIEW v AS SELECT 1", "CREATE TEMP VIEW");
    refused(&db, "CREATE INDEX i ON meta (value)", "CREATE INDEX");
    refused(&db, "DROP VIEW container_summary", "DROP VIEW");
    refused(&db, "DROP TABLE meta", "DROP TABLE");
    refused(&db, "ALTER TABLE meta RENAME TO m2", "ALTER TABLE meta");
    refused(&db, "BEGIN", "BEGIN");
    refused(&db, "COMMIT", "COMMIT");
    refused(&db, "ROLLBACK", "ROLLBACK");
    refused(&db, "RELEASE s", "RELEASE");
    refused(&db, "SAVEPOINT s", "SAVEPOINT");
    refused(&db, "ANALYZE", "ANALYZE");
    refused(&db, "REINDEX", "REINDEX");
    let version = user_version(&db);
    refused(&db, "PRAGMA user_version=9", "PRAGMA user_version = 9");
    refused(
        &db,
        "PRAGMA main.user_version = 9",
        "PRAGMA user_version = 9",
    );
    assert_eq!(user_version(&db), version);
    // The daemon migrated the store: a real schema version was read (and left unchanged).
    let number: u32 = version.lines().nth(1).unwrap().parse().unwrap();
    assert!(number >= 3, "{version}");
    refused(
        &db,
        "PRAGMA journal_mode=DELETE",
        "PRAGMA journal_mode = DELETE",
    );
    refused(
        &db,
        "PRAGMA writable_schema=1",
        "PRAGMA writable_schema = 1",
    );
    refused(&db, "PRAGMA writable_schema", "PRAGMA writable_schema");
    refused(&db, "PRAGMA wal_checkpoint", "PRAGMA wal_checkpoint");
    refused(&db, "PRAGMA optimize", "PRAGMA optimize");
    refused(&db, "SELECT * FROM pragma_optimize", "PRAGMA optimize");
    refused(
        &db,
        "SELECT load_extension('x')",
        "function load_extension()",
    );
    refused(
        &db,
        "SELECT name FROM containers WHERE load_extension('/tmp/x.so', 'init') IS NULL",
        "function load_extension()",
    );
    refused(
        &db,
        "WITH d AS (SELECT 1) DELETE FROM meta",
        "DELETE from meta",
    );
    assert_eq!(
        files_in(dir.path()),
        before,
        "a refused statement created a file"
    );
    assert!(std::fs::read(&db).unwrap() == bytes, "the store changed");
    assert!(!copy.exists() && !other.exists());
    // Only the first statement would be run; several at once are an error, not a bypass.
    let out = sql(&db, &[], "SELECT 1; DELETE FROM containers");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        ok(&db, &[], "SELECT count(*) AS n FROM containers"),
        "n\n1\n"
    );
}

#[test]
fn reading_works() {
    let (_dir, db) = store();
    let summary = ok(
        &db,
        &[],
        "SELECT container_id, label, started, syscalls FROM container_summary",
    );
    assert_eq!(
        summary,
        "container_id\tlabel\tstarted\tsyscalls\nc0ffee\tweb\t2023-11-14 22:13:20\t1\n"
    );
    let details = ok(
        &db,
        &[],
        "SELECT container_id, tracefile, name, pid, comm, first_seen FROM sighting_details",
    );
    assert_eq!(
        details,
        "container_id\ttracefile\tname\tpid\tcomm\tfirst_seen\n\
         c0ffee\tweb\tmkdir\t7\tapp\t2023-11-14 22:13:20\n"
    );
    let info = ok(&db, &[], "PRAGMA table_info(containers)");
    assert!(info.starts_with("cid\tname\ttype\tnotnull\tdflt_value\tpk\n0\tid\tINTEGER\t0\t\t1\n"));
    assert!(info.contains("\tcontainer_id\tTEXT\t1\t"), "{info}");
    assert!(ok(&db, &[], "PRAGMA index_list(runs)").contains("runs_by_time"));
    assert!(ok(&db, &[], "SELECT * FROM pragma_table_info('meta')").contains("\tvalue\t"));
    let recursive = ok(
        &db,
        &[],
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) \
         SELECT group_concat(i, '+') AS s, sum(i) AS total FROM n",
    );
    assert_eq!(recursive, "s\ttotal\n1+2+3+4+5\t15\n");
    assert_eq!(
        ok(&db, &[], "SELECT sqlite_version() IS NOT NULL AS v"),
        "v\n1\n"
    );
    assert_eq!(ok(&db, &[], "SELECT 1 AS a WHERE 0"), "a\n");
}

#[test]
fn output_formats() {
    let (_dir, db) = store();
    let query = "SELECT name, image, 42 AS n, 1.5 AS r, NULL AS z, x'0102' AS b FROM containers";
    assert_eq!(
        ok(&db, &[], query),
        "name\timage\tn\tr\tz\tb\nwe\\tb\\nx\\\\y\timg, \"quoted\"\t42\t1.5\t\t<2 bytes>\n"
    );
    assert_eq!(
        ok(&db, &[], "SELECT 'a\rb' AS \"t\tab\""),
        "t\\tab\na\\rb\n"
    );
    assert_eq!(
        ok(&db, &["--csv"], query),
        "name,image,n,r,z,b\r\n\"we\tb\nx\\y\",\"img, \"\"quoted\"\"\",42,1.5,,<2 bytes>\r\n"
    );
    let json = ok(&db, &["--json"], query);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        parsed,
        serde_json::json!([{
            "name": "we\tb\nx\\y", "image": "img, \"quoted\"", "n": 42, "r": 1.5,
            "z": null, "b": "<2 bytes>"
        }])
    );
    // Columns keep the query's order.
    assert!(json.find("\"name\"").unwrap() < json.find("\"b\"").unwrap());
    assert_eq!(ok(&db, &["--json"], "SELECT 1 AS a WHERE 0"), "[]\n");
    let two = ok(&db, &["--json"], "SELECT 1 AS a UNION ALL SELECT 2");
    assert_eq!(two, "[\n{\"a\":1},\n{\"a\":2}\n]\n");
    let both = sql(&db, &["--json", "--csv"], "SELECT 1");
    assert_eq!(both.status.code(), Some(2));
}
