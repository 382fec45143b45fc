//! The store's own tests: migrations, refusing what is not a ctrace store.

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
    // One schema version per file in migrations/: none forgotten in MIGRATIONS.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
        .count();
    assert_eq!(v, files as i64);
    let n: i64 = conn
        .query_row("SELECT count(*) FROM container_summary", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

/// Random bytes, a damaged database and another program's database are refused before
/// anything is written: same bytes, no -wal or -shm beside them.
#[test]
fn what_is_not_a_store_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.db");
    drop(open_rw(&good).unwrap());
    let mut damaged = std::fs::read(&good).unwrap();
    damaged.truncate(damaged.len().min(4096) + 100);
    damaged[100..].fill(0xa5);
    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        (
            "random.db",
            (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
        ("damaged.db", damaged),
        ("foreign.db", std::fs::read(&foreign).unwrap()),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        for err in [open_rw(&path).unwrap_err(), open_ro(&path).unwrap_err()] {
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("store {} is ", path.display()))
                    && text.ends_with("; nothing was changed"),
                "{text}"
            );
        }
        assert!(std::fs::read(&path).unwrap() == bytes, "{name} changed");
        for suffix in ["-wal", "-shm", "-journal"] {
            let side = dir.path().join(format!("{name}{suffix}"));
            assert!(!side.exists(), "{} was created", side.display());
        }
    }
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
        .prepare(
            "SELECT name, first_seen, last_seen, epochs FROM sightings ORDER BY name, first_seen",
        )
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
