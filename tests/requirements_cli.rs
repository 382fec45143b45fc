//! `ctrace requirements` as scripts meet it: without `--output` the baseline goes to stdout
//! (and into the store's cache); the progress bar is for terminals only.

mod common;

use std::process::Command;

use common::*;

#[test]
fn without_output_the_baseline_goes_to_stdout_and_no_bar_to_a_pipe() {
    let Some(_env) = root_env() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let out = Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .args(["requirements", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("ARCH\nx86_64\n"), "{stdout}");
    assert!(
        section(&stdout, "SYSCALLS").contains(&"execve".to_string()),
        "{stdout}"
    );
    // stderr is a pipe: log lines only, no bar redrawn with escapes or carriage returns.
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    assert!(
        stderr.lines().all(|l| l.starts_with("ctrace: ")),
        "{stderr}"
    );

    // What was printed is what the store caches: `options` builds on exactly this.
    let cached = Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .args(["sql", "--db"])
        .arg(&db)
        .arg("SELECT count(*) FROM requirements")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cached.stdout), "count(*)\n1\n");
    let again = Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .args(["requirements", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout), stdout);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("runtime baseline for Docker"),
        "the second run reads the cache"
    );
}
