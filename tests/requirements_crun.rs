//! A second OCI runtime (root, real dockerd with crun registered, as scripts/setup-host.sh
//! starts it): `requirements --runtime crun` records crun's own needs apart from runc's, and
//! a profile made from a crun container's trace and that baseline runs the container under
//! crun, where the same program with one call more is refused.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::enforce::{baseline, baseline_of, options, run_restricted};
use common::programs::{self, THREADS_BIN};
use common::{docker, docker_ok, missing, root_env, section, unique, Daemon};

const IMAGE: &str = "ctrace-test/threads-crun";

fn calls(tracefile: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(tracefile).unwrap();
    section(&text, "SYSCALLS").into_iter().collect()
}

fn run_under_crun(opts: &[String], cmd: &[&str]) -> std::process::Output {
    let mut with_runtime = vec!["--runtime".to_string(), "crun".to_string()];
    with_runtime.extend_from_slice(opts);
    run_restricted(&with_runtime, IMAGE, cmd)
}

#[test]
fn crun_has_a_baseline_of_its_own_and_its_profile_runs_under_crun() {
    let Some(_env) = root_env() else { return };
    let runtimes = docker_ok(&["info", "--format", "{{json .Runtimes}}"]);
    if !runtimes.contains("\"crun\"") {
        return missing(
            "dockerd with the crun runtime (scripts/setup-host.sh starts it with \
             --add-runtime crun=/usr/bin/crun)",
        )
        .unwrap_or(());
    }
    programs::build_threads_image(IMAGE);
    let daemon = Daemon::start(&[]);

    // Both runtimes' baselines, kept apart in one store.
    let runc = baseline(&daemon);
    let crun = baseline_of(&daemon, Some("crun"));
    let (runc_calls, crun_calls) = (calls(&runc), calls(&crun));
    // Both end in the entrypoint's execve, under the container's filter.
    for calls in [&runc_calls, &crun_calls] {
        assert!(calls.contains("execve"), "{calls:?}");
    }
    // runc init is Go, crun is C: runc's scheduler calls what crun never does.
    assert_ne!(runc_calls, crun_calls, "one baseline for two runtimes");
    let keys = daemon.query("SELECT engine_version FROM requirements ORDER BY engine_version");
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[1][0].ends_with("/crun"), "{keys:?}");

    // A real multi-threaded program traced under crun.
    let name = unique("crun");
    let traced = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--runtime",
        "crun",
        "--label",
        &format!("ctrace.tracefile={name}"),
        IMAGE,
        THREADS_BIN,
    ]);
    assert!(traced.status.success(), "{traced:?}");
    daemon.wait_tracefile_final(&name, |t| t.lines().any(|l| l == "wait4"));
    let profile = daemon.dir.path().join("profile.json");
    let opts = options(&daemon.data().join(&name), &crun, &profile);

    let restricted = run_under_crun(&opts, &[THREADS_BIN]);
    assert!(
        restricted.status.success(),
        "restricted run under crun failed: {}\nprofile:\n{}",
        String::from_utf8_lossy(&restricted.stderr),
        std::fs::read_to_string(&profile).unwrap_or_default()
    );
    assert_eq!(restricted.stdout, traced.stdout, "identical output");
    let extra = run_under_crun(&opts, &[THREADS_BIN, "mkdir"]);
    assert_eq!(
        extra.status.code(),
        Some(3),
        "mkdir must be refused: {extra:?}"
    );
}
