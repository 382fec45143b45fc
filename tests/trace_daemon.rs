//! The daemon's modes and signals, against the real kernel and a real dockerd (root): its
//! BPF backends and placement cache record the same, slot collisions fall back to the hash,
//! `--runc` records the runtime's set-up, SIGTERM drains and SIGKILL keeps what was committed.

mod common;

use common::{root_env, run_container, section, set, unique, Daemon, IMAGE};

#[test]
fn sigterm_drains_and_sigkill_keeps_committed_batches() {
    let Some(_env) = root_env() else { return };
    let mut daemon = Daemon::start(&[]);
    let name = unique("term");
    run_container(Some(&name), IMAGE, &["sh", "-c", "mkdir /t"]);
    let status = daemon.stop();
    assert!(
        status.success(),
        "exit status {status:?}:\n{}",
        daemon.stderr()
    );
    let text = std::fs::read_to_string(daemon.data().join(&name)).unwrap();
    assert!(text.contains("mkdir"), "{text}");

    let mut killed = Daemon::start(&[]);
    let name = unique("kill");
    run_container(Some(&name), IMAGE, &["sh", "-c", "mkdir /k"]);
    killed.wait_tracefile(&name, |t| t.contains("mkdir"));
    killed.kill9();
    let check = killed.query("PRAGMA integrity_check");
    assert_eq!(check, vec![vec!["ok".to_string()]]);
    let rows = killed.query(&format!(
        "SELECT count(*) FROM sighting_details WHERE tracefile = '{name}' AND name = 'mkdir'"
    ));
    assert_eq!(rows, vec![vec!["1".to_string()]]);
}

/// The script of the backend tests, and what its Tracefile must show.
fn check_backend_trace(daemon: &Daemon, name: &str) {
    let text = daemon.wait_tracefile(name, |t| t.contains("sys_chroot"));
    let calls = set(section(&text, "SYSCALLS"));
    assert!(
        calls.contains("mkdir") && calls.contains("chroot"),
        "{text}"
    );
    assert!(!calls.contains("pivot_root"), "{text}");
    assert!(
        section(&text, "CAPABILITIES").contains(&"chown".to_string()),
        "{text}"
    );
}

const BACKEND_SCRIPT: &str = "mkdir /h && chown 1 /h && chroot / true";

#[test]
fn cgroup_local_storage_backend_records_the_same() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&["--cgroup-state", "storage"]);
    assert!(
        daemon.stderr().contains("cgroup local storage"),
        "{}",
        daemon.stderr()
    );
    let name = unique("storage");
    run_container(Some(&name), IMAGE, &["sh", "-c", BACKEND_SCRIPT]);
    check_backend_trace(&daemon, &name);
}

/// Kernels that cannot have the placement cache load another syscall program
/// (`ctrace_sys_enter_helper`); `--no-task-cache` forces it here, with both state backends.
#[test]
fn without_the_placement_cache_records_the_same() {
    let Some(_env) = root_env() else { return };
    for state in ["slots", "storage"] {
        let daemon = Daemon::start(&["--no-task-cache", "--cgroup-state", state]);
        assert!(
            !daemon.stderr().contains("placement cache"),
            "{}",
            daemon.stderr()
        );
        let name = unique(&format!("nocache-{state}"));
        run_container(Some(&name), IMAGE, &["sh", "-c", BACKEND_SCRIPT]);
        check_backend_trace(&daemon, &name);
    }
}

#[test]
fn slot_collisions_fall_back_to_the_hash() {
    let Some(_env) = root_env() else { return };
    // One slot: while the sleeper holds it, the next container's state goes to the hash.
    let daemon = Daemon::start(&["--cgroup-state", "slots", "--cgroup-slots", "1"]);
    assert!(daemon.stderr().contains("slots"), "{}", daemon.stderr());
    let holder = unique("slot-holder");
    let holding = common::GatedContainer::start(&holder, "mkdir /holder");
    daemon.wait_tracefile(&holder, |t| {
        t.contains("nanosleep") || t.contains("clock_nanosleep")
    });
    let name = unique("overflow");
    run_container(Some(&name), IMAGE, &["sh", "-c", BACKEND_SCRIPT]);
    check_backend_trace(&daemon, &name);
    // The slot holder is still traced, and once both are gone the slot is free again.
    holding.open_and_wait();
    daemon.wait_tracefile(&holder, |t| t.lines().any(|l| l == "mkdir"));
    let again = unique("slot-again");
    run_container(Some(&again), IMAGE, &["sh", "-c", BACKEND_SCRIPT]);
    check_backend_trace(&daemon, &again);
}

#[test]
fn runc_flag_puts_the_runtime_set_up_in_tracefiles() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&["--runc"]);
    let name = unique("runc");
    run_container(Some(&name), IMAGE, &["sh", "-c", "mkdir /r"]);
    let text = daemon.wait_tracefile(&name, |t| t.contains("mkdir"));
    let calls = set(section(&text, "SYSCALLS"));
    for runtime in ["pivot_root", "seccomp", "execve"] {
        assert!(
            calls.contains(runtime),
            "{runtime} missing with --runc:\n{text}"
        );
    }
}
