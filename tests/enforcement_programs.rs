//! Proof by enforcement on real programs (root, real dockerd): a multi-threaded, dynamically
//! linked C program and a Python program using `threading` and `subprocess` are traced under
//! Docker's default seccomp profile; the options `ctrace options` makes from that trace must
//! let the same program run with identical output, and must refuse a call it never made.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use common::enforce::{baseline, options, run_restricted};
use common::programs::{self, THREADS_BIN, WORKLOAD_IN_IMAGE};
use common::{docker, root_env, run_container, section, unique, Daemon};

const THREADS_IMAGE: &str = "ctrace-test/threads";
const PYTHON_IMAGE: &str = "ctrace-test/python";
/// Traced runs of a program, into one Tracefile.
const TRACED_RUNS: usize = 3;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The names the profile allows. Every rule either allows its names or answers them with a
/// fixed errno (`SCMP_ACT_ERRNO` + `errnoRet`, e.g. ENOSYS for clone3); the default refuses.
fn allowed_names(profile: &Path) -> BTreeSet<String> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(profile).unwrap()).unwrap();
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO", "{json}");
    let mut allowed = BTreeSet::new();
    for rule in json["syscalls"].as_array().unwrap() {
        let names = rule["names"].as_array().unwrap().iter();
        let names = names.map(|n| n.as_str().unwrap().to_string());
        match rule["action"].as_str() {
            Some("SCMP_ACT_ALLOW") => allowed.extend(names),
            Some("SCMP_ACT_ERRNO") => assert!(rule["errnoRet"].is_u64(), "errnoRet: {rule}"),
            _ => panic!("unexpected rule {rule}"),
        }
    }
    allowed
}

/// The errno an explicit SCMP_ACT_ERRNO rule of the profile gives `name`.
fn errno_of(profile: &Path, name: &str) -> Option<u64> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(profile).unwrap()).unwrap();
    json["syscalls"].as_array()?.iter().find_map(|rule| {
        let named = rule["names"].as_array()?.iter().any(|n| n == name);
        (named && rule["action"] == "SCMP_ACT_ERRNO").then(|| rule["errnoRet"].as_u64())?
    })
}

fn run_free(image: &str, cmd: &[&str]) -> Output {
    let mut args = vec!["run", "--rm", "--network", "none", image];
    args.extend(cmd);
    docker(&args)
}

/// Traces `cmd` in `image`, makes options from the trace and the runtime baseline, and checks:
/// the restricted run succeeds with the unrestricted run's exact output, and the same program
/// with the extra argument `mkdir` (one `mkdir` more, a call the trace never saw) is refused
/// with EPERM by the profile, where it succeeds unrestricted.
fn enforce(image: &str, cmd: &[&str]) {
    let daemon = Daemon::start(&[]);
    let name = unique("programs");
    // Some calls depend on timing (futex only when a thread must wait for another): as a
    // user would, trace a few runs into one Tracefile.
    let traced_out = run_container(Some(&name), image, cmd);
    for _ in 1..TRACED_RUNS {
        assert_eq!(run_container(Some(&name), image, cmd), traced_out);
    }
    // waitpid (wait4) is among the program's last calls: the child has come and gone. The
    // ERRNO section comes from the daemon's probe of the container's (default) profile.
    let tracefile = daemon.wait_tracefile_final(&name, |t| {
        t.lines().any(|l| l == "wait4") && t.lines().any(|l| l == "clone3 ENOSYS")
    });
    let traced: BTreeSet<String> = section(&tracefile, "SYSCALLS").into_iter().collect();
    for call in ["clone", "execve", "openat", "write", "read", "unlink"] {
        assert!(traced.contains(call), "{call} not traced:\n{tracefile}");
    }
    assert!(
        !traced.contains("mkdir"),
        "the traced run must not mkdir:\n{tracefile}"
    );

    let requirements = baseline(&daemon);
    let profile = daemon.dir.path().join("profile.json");
    let opts = options(&daemon.data().join(&name), &requirements, &profile);
    let allowed = allowed_names(&profile);
    assert!(!allowed.contains("mkdir"), "mkdir allowed: {allowed:?}");
    // glibc creates threads with clone3 and falls back to clone only on ENOSYS.
    assert_eq!(errno_of(&profile, "clone3"), Some(38));

    let free = run_free(image, cmd);
    assert!(free.status.success(), "unrestricted run: {free:?}");
    assert_eq!(text(&free.stdout), traced_out, "deterministic output");

    let restricted = run_restricted(&opts, image, cmd);
    assert!(
        restricted.status.success(),
        "restricted run failed ({}); stderr:\n{}\nstdout:\n{}\nprofile: {}",
        restricted.status,
        text(&restricted.stderr),
        text(&restricted.stdout),
        std::fs::read_to_string(&profile).unwrap()
    );
    assert_eq!(
        text(&restricted.stdout),
        text(&free.stdout),
        "identical output"
    );

    // Negative: one call the trace never saw.
    let with_mkdir: Vec<&str> = cmd.iter().copied().chain(["mkdir"]).collect();
    let free_mkdir = run_free(image, &with_mkdir);
    assert!(free_mkdir.status.success(), "{free_mkdir:?}");
    assert!(
        text(&free_mkdir.stdout).contains("mkdir: ok\n"),
        "{free_mkdir:?}"
    );
    let refused = run_restricted(&opts, image, &with_mkdir);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let expected = text(&free.stdout).replace("done\n", "mkdir: EPERM\n");
    assert_eq!(text(&refused.stdout), expected, "{refused:?}");
}

#[test]
fn threaded_c_program_runs_under_the_profile_of_its_own_trace() {
    let Some(_env) = root_env() else { return };
    programs::build_threads_image(THREADS_IMAGE);
    enforce(THREADS_IMAGE, &[THREADS_BIN]);
}

#[test]
fn python_threads_and_subprocess_run_under_the_profile_of_their_own_trace() {
    let Some(_env) = root_env() else { return };
    programs::build_python_image(PYTHON_IMAGE);
    enforce(PYTHON_IMAGE, &["/usr/bin/python3", WORKLOAD_IN_IMAGE]);
}
