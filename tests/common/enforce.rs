//! Enforcement: a profile and `docker run` options made by ctrace, and runs under them.

use std::path::{Path, PathBuf};

use super::cli::{ctrace, path};
use super::daemon::Daemon;
use super::env::docker;

/// `ctrace requirements`: the runtime baseline, recorded from the daemon's store.
pub fn baseline(daemon: &Daemon) -> PathBuf {
    baseline_of(daemon, None)
}

/// `ctrace requirements [--runtime NAME]`: the baseline of the engine's default OCI runtime,
/// or of `runtime`, written to `requirements[-NAME]` in the daemon's directory.
pub fn baseline_of(daemon: &Daemon, runtime: Option<&str>) -> PathBuf {
    let out = match runtime {
        Some(name) => daemon.dir.path().join(format!("requirements-{name}")),
        None => daemon.dir.path().join("requirements"),
    };
    let db = daemon.db();
    let mut args = vec!["requirements", "--db", path(&db)];
    if let Some(name) = runtime {
        args.extend(["--runtime", name]);
    }
    args.extend(["--output", path(&out)]);
    let run = ctrace(&args);
    assert!(
        run.status.success(),
        "requirements {runtime:?}: {}",
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
