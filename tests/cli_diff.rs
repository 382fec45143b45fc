//! `ctrace diff` through the real binary (no root, no dockerd): of Tracefiles, and of
//! selections from a store built here.

mod common;

use common::fixtures::{make_store, APP};
use common::{code, ctrace, path, stderr, stdout, write};

#[test]
fn diff_of_tracefiles() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a", APP);
    let b = write(
        dir.path(),
        "b",
        &APP.replace("chown\n", "")
            .replace("mkdir\n", "mkdir\nopenat\n")
            .replace("socketcall\n", ""),
    );
    let out = ctrace(&["diff", path(&a), path(&a)]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, ""));
    let out = ctrace(&["diff", path(&a), path(&b)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "CAPABILITIES\n-chown\n\nSYSCALLS\n+openat\n\nSYSCALLS:i386\n-socketcall\n"
    );
    let out = ctrace(&["diff", "--color", "always", path(&b), path(&a)]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("\x1b[32m+chown\x1b[0m"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("\x1b[31m-openat\x1b[0m"));
    // Not a terminal: no colour by default.
    assert!(!stdout(&ctrace(&["diff", path(&a), path(&b)])).contains('\x1b'));

    let bad = write(dir.path(), "bad", "SYSCALLS\nnope\n");
    let out = ctrace(&["diff", path(&a), path(&bad)]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains(&format!("{}:2:", bad.display())));
    assert_eq!(code(&ctrace(&["diff", path(&a)])), 2);
    assert_eq!(
        code(&ctrace(&[
            "diff",
            path(&a),
            path(&dir.path().join("missing"))
        ])),
        2
    );
}

#[test]
fn diff_of_store_selections() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    make_store(&db, None);
    let out = ctrace(&[
        "diff",
        "--db",
        path(&db),
        "--a-since",
        "14d",
        "--a-until",
        "7d",
        "--b-since",
        "7d",
        "--b-name",
        "web",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "CAPABILITIES\n+chown\n\nSYSCALLS\n-write\n+mkdir\n\nSYSCALLS:i386\n+write\n"
    );
    let out = ctrace(&[
        "diff",
        "--db",
        path(&db),
        "--a-since",
        "7d",
        "--b-since",
        "3d",
    ]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, ""),
        "{}",
        stderr(&out)
    );
    // Selections without a store, or a missing store: errors.
    assert_eq!(
        code(&ctrace(&["diff", "--a-since", "7d", "--b-since", "3d"])),
        2
    );
    let out = ctrace(&[
        "diff",
        "--db",
        path(&dir.path().join("none.db")),
        "--a-since",
        "1d",
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("none.db"));
}
