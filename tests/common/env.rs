//! The environment the root tests need: root, a running dockerd, one daemon at a time.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// One daemon at a time: every daemon sees every labelled container.
static SERIAL: Mutex<()> = Mutex::new(());

pub struct Env {
    _serial: MutexGuard<'static, ()>,
}

pub fn missing<T>(what: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("CI requires {what}; run the README's test command (it installs and starts what is needed)");
    }
    eprintln!("SKIPPED (not in CI): needs {what}");
    None
}

/// Debian's `chromium` (headless screenshots), or `None` (a printed skip) outside CI.
pub fn chromium() -> Option<PathBuf> {
    let found = Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Some(PathBuf::from("chromium"))
    } else {
        missing("chromium (apt-get install chromium)")
    }
}

/// Root, dockerd and the test image, or `None` (a printed skip) outside CI.
pub fn root_env() -> Option<Env> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return missing("root");
    }
    if !docker(&["info", "--format", "{{.ServerVersion}}"])
        .status
        .success()
    {
        return missing("a running dockerd");
    }
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    super::images::ensure_image();
    Some(Env { _serial: serial })
}

pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("running the docker client")
}

/// `docker ARGS`; returns stdout, panics on failure.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `answers()` holds, for a service the test started (its own dockerd, a podman
/// service); fails with the service's log after `timeout`.
pub fn wait_until_it_answers(
    what: &str,
    log: &std::path::Path,
    timeout: std::time::Duration,
    answers: impl Fn() -> bool,
) {
    let deadline = std::time::Instant::now() + timeout;
    while !answers() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not answer within {timeout:?}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
