//! Two real daemons (root, dockerd) record the same label into two stores, one after the
//! other, as two nodes would; each store is copied with `sqlite3 DB ".backup COPY"` while its
//! daemon runs (WAL mode), the copy set to `journal_mode=DELETE` (as the README's "Merging
//! node stores" says), and the copies are merged with `--db DIR`: the union of both, with
//! coverage telling which call one node saw.

mod common;

use std::path::Path;
use std::process::Command;

use common::{code, ctrace, path, root_env, run_named, stderr, stdout, unique, Daemon, IMAGE};

/// `sqlite3 DB ".backup COPY"`, then the copy out of WAL mode (else a reader makes -wal and
/// -shm files beside it); false when sqlite3 is missing (outside CI).
fn backup(db: &Path, copy: &Path) -> bool {
    let backup = format!(".backup '{}'", copy.display());
    let steps: [(&Path, &str); 2] = [(db, &backup), (copy, "PRAGMA journal_mode=DELETE")];
    for (file, command) in steps {
        match Command::new("sqlite3").arg(file).arg(command).output() {
            Ok(out) => assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(_) => return common::missing::<()>("sqlite3 (apt-get install sqlite3)").is_some(),
        }
    }
    true
}

#[test]
fn stores_of_two_daemons_copied_while_they_run_merge_with_coverage() {
    let Some(_env) = root_env() else { return };
    let nodes = tempfile::tempdir().unwrap();
    let label = unique("fleet");
    let scripts = [
        ("node-a", "mkdir /m && echo done"),
        ("node-b", "mkdir /m && rmdir /m && echo done"),
    ];
    for (node, script) in scripts {
        let mut daemon = Daemon::start_in(tempfile::tempdir().unwrap(), &[], &[]);
        let name = unique(node);
        run_named(Some(&name), Some(&label), IMAGE, &["sh", "-c", script]);
        let want_rmdir = script.contains("rmdir");
        daemon.wait_tracefile_final(&label, |t| {
            t.contains("mkdir") && (!want_rmdir || t.contains("rmdir"))
        });
        // The daemon still runs: the copy is taken from its live WAL-mode store.
        if !backup(&daemon.db(), &nodes.path().join(format!("{node}.db"))) {
            return;
        }
        assert!(daemon.stop().success(), "{}", daemon.stderr());
    }
    let profile = nodes.path().join("p.json");
    let out = ctrace(&[
        "options",
        "--db",
        path(nodes.path()),
        "--label",
        &label,
        "--no-requirements",
        "--format",
        "json",
        "-o",
        path(&profile),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let x86: Vec<&str> = v["syscalls"]["x86_64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(x86.contains(&"mkdir") && x86.contains(&"rmdir"), "{x86:?}");
    let coverage = v["coverage"].as_array().unwrap();
    let of = |name: &str| {
        coverage
            .iter()
            .find(|i| i["name"] == name && i["abi"] == "x86_64")
            .unwrap_or_else(|| panic!("{name} in {coverage:?}"))
    };
    assert_eq!(
        (of("mkdir")["nodes"].as_u64(), of("mkdir")["runs"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        (of("rmdir")["nodes"].as_u64(), of("rmdir")["runs"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["coverage_totals"]["nodes"], 2);
    // Nothing was written beside the copies (read-only opening).
    let mut files: Vec<String> = std::fs::read_dir(nodes.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["node-a.db", "node-b.db", "p.json"]);
}
