//! Proof by enforcement (root, real dockerd): a profile made from a trace lets the same
//! workload run unchanged, stops anything beyond it, and allows nothing else.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::enforce::{baseline, options, run_restricted};
use common::{docker, root_env, run_container, section, unique, Daemon, IMAGE};
use ctrace::abi::Abi;
use ctrace::profile::seccomp::signal_returns;

const WORKLOAD: &str =
    "echo hello && ls / && chown 0:0 /tmp && cat /etc/hostname >/dev/null && echo done";

/// Traces `cmd` in `image`; returns the Tracefile's path.
fn trace(daemon: &Daemon, image: &str, cmd: &[&str], expect: &str) -> PathBuf {
    let name = unique("enforce");
    run_container(Some(&name), image, cmd);
    daemon.wait_tracefile_final(&name, |t| t.contains(expect));
    daemon.data().join(name)
}

/// What a failed restricted run needs explained: the trace and the profile made from it.
fn evidence(traced: &Path, profile: &Path) -> String {
    format!(
        "Tracefile:\n{}\nprofile:\n{}",
        std::fs::read_to_string(traced).unwrap_or_default(),
        std::fs::read_to_string(profile).unwrap_or_default()
    )
}

fn allowed_names(profile: &Path) -> (BTreeSet<String>, Vec<String>) {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(profile).unwrap()).unwrap();
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
    let mut names = BTreeSet::new();
    for rule in json["syscalls"].as_array().unwrap() {
        // Calls the traced profile refused with another errno keep it (clone3: ENOSYS).
        if rule["action"] == "SCMP_ACT_ERRNO" {
            assert!(rule["errnoRet"].as_u64().is_some_and(|e| e != 1), "{rule}");
            continue;
        }
        assert_eq!(rule["action"], "SCMP_ACT_ALLOW");
        for n in rule["names"].as_array().unwrap() {
            names.insert(n.as_str().unwrap().to_string());
        }
    }
    let mut arches = vec![];
    for m in json["archMap"].as_array().unwrap() {
        arches.push(m["architecture"].as_str().unwrap().to_string());
        for s in m["subArchitectures"].as_array().unwrap() {
            arches.push(s.as_str().unwrap().to_string());
        }
    }
    (names, arches)
}

fn tracefile_names(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut all: BTreeSet<String> = section(&text, "SYSCALLS").into_iter().collect();
    all.extend(section(&text, "SYSCALLS:i386"));
    all
}

#[test]
fn profile_from_a_trace_runs_the_workload_and_nothing_more() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    let traced = trace(&daemon, IMAGE, &["sh", "-c", WORKLOAD], "chown");
    let requirements = baseline(&daemon);
    let profile = daemon.dir.path().join("profile.json");
    let opts = options(&traced, &requirements, &profile);

    let free = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        WORKLOAD,
    ]);
    let restricted = run_restricted(&opts, IMAGE, &["sh", "-c", WORKLOAD]);
    assert!(
        restricted.status.success(),
        "restricted run failed: {}\n{}",
        String::from_utf8_lossy(&restricted.stderr),
        evidence(&traced, &profile)
    );
    assert_eq!(restricted.stdout, free.stdout, "identical output");

    // One extra syscall: refused by the profile.
    let mkdir = run_restricted(
        &opts,
        IMAGE,
        &["sh", "-c", &format!("{WORKLOAD} && mkdir /extra")],
    );
    assert!(!mkdir.status.success());
    assert!(
        String::from_utf8_lossy(&mkdir.stderr).contains("Operation not permitted"),
        "{mkdir:?}"
    );
    let chroot = run_restricted(
        &opts,
        IMAGE,
        &["sh", "-c", &format!("{WORKLOAD} && chroot / true")],
    );
    assert!(!chroot.status.success());
    assert!(
        String::from_utf8_lossy(&chroot.stderr).contains("Operation not permitted"),
        "{chroot:?}"
    );
    // The chown syscall is allowed, but giving a file away needs CAP_CHOWN, which was
    // never used and so is dropped.
    let give_away = run_restricted(
        &opts,
        IMAGE,
        &["sh", "-c", &format!("{WORKLOAD} && chown 1 /tmp")],
    );
    assert!(!give_away.status.success());
    assert!(
        String::from_utf8_lossy(&give_away.stderr).contains("Operation not permitted"),
        "{give_away:?}"
    );

    // Nothing beyond the trace and the runtime baseline.
    let (allowed, arches) = allowed_names(&profile);
    let mut expected = tracefile_names(&traced);
    expected.extend(tracefile_names(&requirements));
    expected.extend(signal_returns(Abi::X86_64).iter().map(|n| n.to_string()));
    assert_eq!(
        allowed, expected,
        "allowed = traced ∪ baseline ∪ signal returns"
    );
    assert_eq!(arches, vec!["SCMP_ARCH_X86_64".to_string()]);
    assert!(
        allowed.len() < 80,
        "a busybox workload needs few calls; got {}",
        allowed.len()
    );
}

#[test]
fn i386_binary_runs_under_the_profile_of_its_own_trace() {
    let Some(_env) = root_env() else { return };
    let image = "ctrace-test/i386-enforce";
    common::build_i386_image(image);
    let daemon = Daemon::start(&[]);
    let traced = trace(&daemon, image, &["/prog32"], "SYSCALLS:i386");
    let requirements = baseline(&daemon);
    let profile = daemon.dir.path().join("profile32.json");
    let opts = options(&traced, &requirements, &profile);
    let run = run_restricted(&opts, image, &["/prog32"]);
    assert!(
        run.status.success(),
        "{run:?}\n{}",
        evidence(&traced, &profile)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), "ok\n");
    let (allowed, arches) = allowed_names(&profile);
    for name in ["mkdir", "write", "exit"] {
        assert!(allowed.contains(name), "{name} missing from {allowed:?}");
    }
    assert!(arches.contains(&"SCMP_ARCH_X86".to_string()), "{arches:?}");
}

const SIGNAL_IMAGE: &str = "ctrace-test/signalled";

/// `docker run -d` under `opts`, USR1 sent during its pause; its exit code and output.
fn signalled_run(opts: &[String]) -> (String, String) {
    let mut args: Vec<&str> = vec!["run", "-d", "--network", "none"];
    args.extend(opts.iter().map(String::as_str));
    args.extend([SIGNAL_IMAGE, "/signalled"]);
    let id = common::docker_ok(&args).trim().to_string();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = docker(&["kill", "--signal", "USR1", &id]);
    let code = common::docker_ok(&["wait", &id]).trim().to_string();
    let logs = docker(&["logs", &id]);
    let _ = docker(&["rm", "--force", &id]);
    (code, String::from_utf8_lossy(&logs.stdout).into_owned())
}

/// A handler's return is the kernel's doing (rt_sigreturn), made only when a signal comes:
/// a trace without one does not hold it, and a profile without it kills the container at
/// its first signal (runc init, which is Go, gets them at random: SIGURG preemption).
#[test]
fn a_signal_the_trace_never_saw_does_not_kill_the_container() {
    let Some(_env) = root_env() else { return };
    common::asm::build_signal_image(SIGNAL_IMAGE);
    let daemon = Daemon::start(&[]);
    let traced = trace(&daemon, SIGNAL_IMAGE, &["/signalled"], "exit_group");
    assert!(
        !tracefile_names(&traced).contains("rt_sigreturn"),
        "the trace saw no signal"
    );
    let requirements = baseline(&daemon);
    let profile = daemon.dir.path().join("profile.json");
    let opts = options(&traced, &requirements, &profile);
    let (code, out) = signalled_run(&opts);
    assert_eq!(
        (code.as_str(), out.as_str()),
        ("0", "signalled\ndone\n"),
        "{}",
        evidence(&traced, &profile)
    );

    // The same profile without the signal returns: the signal kills it (SIGSEGV).
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    let names = json["syscalls"][0]["names"].as_array_mut().unwrap();
    names.retain(|n| !signal_returns(Abi::X86_64).contains(&n.as_str().unwrap()));
    let without = daemon.dir.path().join("without-returns.json");
    std::fs::write(&without, json.to_string()).unwrap();
    let seccomp = format!("seccomp={}", without.display());
    let opts: Vec<String> = opts
        .iter()
        .map(|o| {
            if o.starts_with("seccomp=") {
                seccomp.clone()
            } else {
                o.clone()
            }
        })
        .collect();
    let (code, _) = signalled_run(&opts);
    assert_eq!(code, "139", "died of SIGSEGV at the signal");
}
