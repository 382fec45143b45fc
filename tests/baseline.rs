//! The runtime baseline is deterministic on a busy machine (root, real dockerd): recording
//! it succeeds every time while the CPUs are hogged, and a profile made from `true` plus the
//! baseline starts every container, many at once, on that busy machine.

mod common;

use std::process::{Child, Command};

use common::{ctrace, docker, path, root_env, run_container, unique, Daemon, IMAGE};

const RECORDINGS: usize = 20;
const STARTS: usize = 48;
const AT_ONCE: usize = 8;

/// Busy loops on every CPU while it lives; ends only the processes it started.
struct CpuHog(Vec<Child>);

impl CpuHog {
    fn start() -> CpuHog {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        CpuHog(
            (0..cpus)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .expect("starting a busy loop")
                })
                .collect(),
        )
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn the_baseline_is_recorded_every_time_and_starts_every_container_on_a_busy_machine() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    let name = unique("true");
    run_container(Some(&name), IMAGE, &["true"]);
    daemon.wait_tracefile_final(&name, |t| t.lines().any(|l| l == "exit_group"));

    let _hog = CpuHog::start();
    let requirements = daemon.dir.path().join("requirements");
    let mut failures = Vec::new();
    for i in 0..RECORDINGS {
        let run = ctrace(&[
            "requirements",
            "--refresh",
            "--db",
            path(&daemon.db()),
            "--output",
            path(&requirements),
        ]);
        if !run.status.success() {
            failures.push(format!(
                "recording {i}: {}",
                String::from_utf8_lossy(&run.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {RECORDINGS} recordings failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The baseline from the store (what the recordings and the daemon saw), with `true`.
    let profile = daemon.dir.path().join("true.json");
    let made = ctrace(&[
        "options",
        "--db",
        path(&daemon.db()),
        "--label",
        &name,
        "--output",
        path(&profile),
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let seccomp = format!("seccomp={}", profile.display());
    let mut failed = Vec::new();
    for round in 0..STARTS / AT_ONCE {
        let starts: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                let seccomp = seccomp.clone();
                std::thread::spawn(move || {
                    docker(&[
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "--cap-drop=ALL",
                        "--security-opt",
                        &seccomp,
                        IMAGE,
                        "true",
                    ])
                })
            })
            .collect();
        for (i, start) in starts.into_iter().enumerate() {
            let out = start.join().unwrap();
            if !out.status.success() {
                failed.push(format!(
                    "round {round} start {i}: {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {STARTS} starts failed under {}:\n{}\nprofile:\n{}",
        failed.len(),
        profile.display(),
        failed.join("\n"),
        std::fs::read_to_string(&profile).unwrap_or_default()
    );
}
