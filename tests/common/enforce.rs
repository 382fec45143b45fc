//! Enforcement: a profile and `docker run` options made by ctrace, and runs under them.

use std::path::{Path, PathBuf};

use super::cli::{ctrace, path};
use super::daemon::Daemon;
use super::env::docker;

/// `ctrace requirements`: the runtime baseline, recorded from the daemon's store.
pub fn baseline(daemon: &Daemon) -> PathBuf {
    let out = daemon.dir.path().join("requirements");
    let run = ctrace(&[
        "requirements",
        "--db",
        path(&daemon.db()),
        "--output",
        path(&out),
    ]);
    assert!(
        run.status.success(),
        "requirements: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// `ctrace options` → the `docker run` options it printed.
pub fn options(tracefile: &Path, requirements: &Path, profile: &Path) -> Vec<String> {
    let run = ctrace(&[
        "options",
        "--output",
        path(profile),
        "--requirements",
        path(requirements),
        path(tracefile),
    ]);
    assert!(
        run.status.success(),
        "options: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let printed = String::from_utf8_lossy(&run.stdout).trim().to_string();
    assert!(printed.starts_with("--cap-drop=ALL"), "{printed}");
    assert!(
        printed.contains(&format!("--security-opt seccomp={}", profile.display())),
        "{printed}"
    );
    // `--security-opt seccomp=FILE` is two words for docker's argv.
    printed.split_whitespace().map(str::to_string).collect()
}

/// `docker run --rm --network none OPTS IMAGE CMD`.
pub fn run_restricted(opts: &[String], image: &str, cmd: &[&str]) -> std::process::Output {
    let mut args: Vec<&str> = vec!["run", "--rm", "--network", "none"];
    args.extend(opts.iter().map(String::as_str));
    args.push(image);
    args.extend(cmd);
    docker(&args)
}
