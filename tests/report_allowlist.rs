//! `ctrace report` against Docker's default allowlist (issue 11), with a real daemon: a
//! container with default settings makes the watcher probe the default setting, and the page
//! then compares with what that setting allows.
//!
//! The oracle is the tracer itself, independent of the errno probe: seccomp acts before the
//! `sys_enter` tracepoint, so every call the Tracefile records got through Docker's default
//! filter (it must be in the probe's allowlist), and a call the program made that the Tracefile
//! lacks was refused by it (it must not be). The program calls `getpid` (allowed) and
//! `kexec_load` and `mount` (refused by Docker's default without CAP_SYS_BOOT/CAP_SYS_ADMIN).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{docker, import_image, root_env, section, unique, Daemon};

const PROGRAM: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    long pid = syscall(SYS_getpid);
    long k = syscall(SYS_kexec_load, 0L, 0L, 0L, 0L);
    int kexec_errno = errno;
    long m = syscall(SYS_mount, "none", "/tmp", "tmpfs", 0L, 0L);
    int mount_errno = errno;
    printf("getpid %ld kexec_load %ld %d mount %ld %d\n", pid, k, kexec_errno, m, mount_errno);
    return 0;
}
"#;
const IMAGE: &str = "ctrace-test/allowlist";
const BINARY: &str = "allowlist";

/// Builds the program statically (as build.rs builds the errno probe) into an image.
fn build_image(dir: &Path) {
    let src = dir.join("allowlist.c");
    let bin = dir.join(BINARY);
    std::fs::write(&src, PROGRAM).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("running the C compiler");
    assert!(
        out.status.success(),
        "{cc} -static failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    import_image(IMAGE, &[(&bin, BINARY)]);
}

/// Waits until the watcher's probe of the default setting is stored; returns its key.
fn wait_default_probe(daemon: &Daemon, container: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let sql = format!(
        "SELECT f.seccomp FROM refusals f JOIN containers c ON c.seccomp = f.seccomp \
         WHERE c.name = '{container}' AND f.allowed IS NOT NULL"
    );
    loop {
        if let Some(row) = daemon.query(&sql).into_iter().next() {
            return row[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no probe of {container}'s setting stored within 20 s; ctrace stderr:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Removes the container when dropped, even when the test fails.
struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

fn one_column(daemon: &Daemon, sql: &str) -> Vec<String> {
    daemon
        .query(sql)
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

#[test]
fn report_compares_with_the_default_allowlist_the_daemon_measured() {
    let Some(_env) = root_env() else { return };
    let dir = tempfile::tempdir().unwrap();
    build_image(dir.path());
    let daemon = Daemon::start_in(tempfile::tempdir().unwrap(), &[], &[]);
    let label = unique("allowlist");
    let name = unique("allowlist-c");
    let label_opt = format!("ctrace.tracefile={label}");
    // Not --rm: the program exits at once, and the watcher reads the container's seccomp
    // settings by inspecting it, which fails once a removed container is gone.
    let _removed = Removed(name.clone());
    let run = docker(&[
        "run",
        "--network",
        "none",
        "--name",
        &name,
        "--label",
        &label_opt,
        IMAGE,
        &format!("/{BINARY}"),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{run:?}");
    // Both refused with EPERM (by the filter: the Tracefile never sees them, below).
    assert!(
        stdout.contains("kexec_load -1 1 mount -1 1"),
        "the program's output: {stdout}"
    );
    let tracefile = daemon.wait_tracefile_final(&label, |t| t.contains("getpid"));
    let recorded: BTreeSet<String> = section(&tracefile, "SYSCALLS").into_iter().collect();
    assert!(recorded.contains("getpid"), "{tracefile}");
    for refused in ["kexec_load", "mount"] {
        assert!(
            !recorded.contains(refused),
            "{refused} passed the filter: {tracefile}"
        );
    }

    let key = wait_default_probe(&daemon, &name);
    let engine = docker(&["version", "--format", "{{.Server.Version}}"]);
    let engine = String::from_utf8_lossy(&engine.stdout).trim().to_string();
    assert!(
        key.starts_with(&format!("engine={engine} ")),
        "the default setting's key: {key}"
    );
    let allowed: BTreeSet<String> = one_column(
        &daemon,
        &format!(
            "SELECT j.value FROM refusals f, json_each(f.allowed, '$.x86_64') j \
             WHERE f.seccomp = '{}'",
            key.replace('\'', "''")
        ),
    )
    .into_iter()
    .collect();
    // The tracer's evidence agrees with the probe's: every recorded call is allowed, the
    // calls the filter kept from the tracer are not.
    let missing: Vec<&String> = recorded.difference(&allowed).collect();
    assert!(
        missing.is_empty(),
        "recorded but not in the allowlist: {missing:?}"
    );
    assert!(!allowed.contains("kexec_load") && !allowed.contains("mount"));
    let m = allowed.len();
    eprintln!("Docker {engine}'s default profile allows {m} x86_64 names");
    // Docker 20.10.24 on Linux 6.18: 294 of the 382 x86_64 names (what it refuses is the
    // calls gated on capabilities it does not grant and those newer than its profile).
    assert!((250..=400).contains(&m), "M = {m}");
    let stored = one_column(
        &daemon,
        "SELECT json_array_length(allowed, '$.x86_64') FROM refusals WHERE allowed IS NOT NULL",
    );
    assert_eq!(
        stored,
        [m.to_string()],
        "one setting probed, M names stored"
    );

    let out = dir.path().join("report.html");
    let report = Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .args(["report", "--db"])
        .arg(daemon.db())
        .args(["--label", &label, "--output"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "ctrace report: {}",
        String::from_utf8_lossy(&report.stderr)
    );
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(!html.contains("not known"), "{html}");
    assert!(
        html.contains(&format!(
            "Docker's default profile (engine {engine}, measured by the errno probe on"
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!("allows <b>{m}</b> x86_64 names")),
        "{html}"
    );
    assert!(
        html.contains("would have refused: <span class=\"muted\">none</span>"),
        "{html}"
    );
    // The page lists what the default refuses: the calls the tracer never saw among them.
    assert!(
        html.contains("chip k-priv\">kexec_load<") && html.contains("chip k-priv\">mount<"),
        "{html}"
    );
    assert!(!html.contains("chip k-priv\">getpid<"), "{html}");
}
