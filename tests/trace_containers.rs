//! What a container's Tracefile holds, against the real kernel and a real dockerd (root):
//! exactly what it did, nothing for unlabelled ones, all of a container that exits at once or
//! started before the daemon, i386 calls under their own ABI, no audit-free capability
//! probes, and none of the runtime's set-up of containers started together.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{
    docker, has_call, root_env, run_container, run_named, section, set, unique, Daemon, IMAGE,
};

#[test]
fn labelled_container_yields_tracefile_with_exactly_what_it_did() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    let busy = unique("busy");
    let idle = unique("idle");
    run_container(
        Some(&busy),
        IMAGE,
        &[
            "sh",
            "-c",
            "mkdir /made && chown 1:1 /made && chroot / true && echo done",
        ],
    );
    run_container(Some(&idle), IMAGE, &["sh", "-c", "echo done"]);

    let busy_file = daemon.wait_tracefile(&busy, |t| t.contains("sys_chroot"));
    let idle_file = daemon.wait_tracefile(&idle, |t| t.contains("write"));
    assert!(
        busy_file.starts_with("ARCH\nx86_64\n\nCAPABILITIES\n"),
        "{busy_file}"
    );

    let busy_caps = set(section(&busy_file, "CAPABILITIES"));
    let busy_calls = set(section(&busy_file, "SYSCALLS"));
    assert!(busy_calls.contains("mkdir"), "{busy_file}");
    assert!(
        busy_calls.contains("chown") || busy_calls.contains("fchownat"),
        "{busy_file}"
    );
    assert!(busy_calls.contains("chroot"), "{busy_file}");
    assert!(
        busy_caps.contains("chown") && busy_caps.contains("sys_chroot"),
        "{busy_file}"
    );

    let idle_caps = set(section(&idle_file, "CAPABILITIES"));
    let idle_calls = set(section(&idle_file, "SYSCALLS"));
    for absent in ["mkdir", "chown", "chroot"] {
        assert!(
            !idle_calls.contains(absent),
            "{absent} in idle trace:\n{idle_file}"
        );
    }
    assert!(
        !idle_caps.contains("chown") && !idle_caps.contains("sys_chroot"),
        "{idle_file}"
    );
    // Runtime set-up (runc init) is flagged and left out by default.
    assert!(!idle_calls.contains("pivot_root"), "{idle_file}");

    let rows = daemon.query(&format!(
        "SELECT name, comm, pid FROM sighting_details WHERE tracefile = '{busy}' \
         AND kind = 'syscall' AND name = 'mkdir' AND init = 0"
    ));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][1], "mkdir");
    let init_rows = daemon.query(&format!(
        "SELECT init, name FROM sighting_details WHERE tracefile = '{busy}' AND init > 0 \
         AND name IN ('pivot_root', 'execve') ORDER BY name"
    ));
    // Runtime set-up is recorded, flagged: pivot_root before the seccomp filter, the
    // entrypoint's execve under it.
    assert_eq!(
        init_rows,
        vec![
            vec!["2".to_string(), "execve".to_string()],
            vec!["1".to_string(), "pivot_root".to_string()]
        ]
    );
}

#[test]
fn unlabelled_container_leaves_nothing() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    let name = unique("unlabelled");
    run_named(
        Some(&name),
        None,
        IMAGE,
        &["sh", "-c", "mkdir /x && echo hi"],
    );
    // Give the pipeline time to have recorded it, were it going to.
    std::thread::sleep(Duration::from_secs(2));
    // Other labelled containers on this host may be recorded; this one must not be.
    let rows = daemon.query(&format!(
        "SELECT count(*) FROM containers WHERE name = '{name}'"
    ));
    assert_eq!(rows, vec![vec!["0".to_string()]]);
    let labels: Vec<String> = daemon
        .query("SELECT label FROM containers")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    for entry in std::fs::read_dir(daemon.data()).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        // The daemon's lock on the data directory (one daemon per directory).
        if file == ".ctrace.lock" {
            continue;
        }
        assert!(
            labels.contains(&file),
            "unexpected file {file} in the data dir"
        );
    }
    let orphans = daemon.query(
        "SELECT count(*) FROM sightings s LEFT JOIN containers c ON c.id = s.container WHERE c.label IS NULL",
    );
    assert_eq!(orphans, vec![vec!["0".to_string()]]);
}

#[test]
fn container_that_exits_at_once_is_recorded_completely() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    let script = "mkdir /q && chown 2 /q && echo q";
    let fast = unique("fast");
    let started = Instant::now();
    run_container(Some(&fast), IMAGE, &["sh", "-c", script]);
    let fast_wall = started.elapsed();
    // The slow run does the same, then lingers; its extra calls come after the script.
    let slow = unique("slow");
    run_container(
        Some(&slow),
        IMAGE,
        &[
            "sh",
            "-c",
            &format!("{script}; read -t 1 x < /dev/zero; true"),
        ],
    );

    // Sightings can reach a Tracefile in several writes; compare only whole records.
    let fast_file = daemon.wait_tracefile_final(&fast, |t| has_call(t, "write"));
    let slow_file = daemon.wait_tracefile_final(&slow, |t| has_call(t, "write"));
    let fast_calls = set(section(&fast_file, "SYSCALLS"));
    let slow_calls = set(section(&slow_file, "SYSCALLS"));
    let missing: Vec<_> = slow_calls.difference(&fast_calls).collect();
    let allowed_extra = [
        "read",
        "nanosleep",
        "clock_nanosleep",
        "poll",
        "ppoll",
        "pselect6",
        "select",
        "openat",
        "open",
        "close",
        "fstat",
        "newfstatat",
        "fcntl",
        "lseek",
        "ioctl",
        "dup2",
        "dup3",
        "rt_sigprocmask",
    ];
    for m in &missing {
        assert!(
            allowed_extra.contains(&m.as_str()),
            "fast run misses {m} (fast took {fast_wall:?})\nfast:\n{fast_file}\nslow:\n{slow_file}"
        );
    }
    assert!(
        fast_calls.is_subset(&slow_calls),
        "fast has calls the slow run lacks:\n{fast_file}\n{slow_file}"
    );
    assert_eq!(
        section(&fast_file, "CAPABILITIES"),
        section(&slow_file, "CAPABILITIES")
    );
}

#[test]
fn container_started_before_the_daemon_is_traced() {
    let Some(_env) = root_env() else { return };
    let name = unique("early");
    let early = common::GatedContainer::start(&name, "mkdir /late && chown 3 /late && echo ok");
    let daemon = Daemon::start(&[]);
    std::thread::sleep(Duration::from_millis(500));
    early.open_and_wait();
    let text = daemon.wait_tracefile(&name, |t| {
        t.lines().any(|l| l == "mkdir") && t.contains("chown")
    });
    assert!(
        section(&text, "CAPABILITIES").contains(&"chown".to_string()),
        "{text}"
    );
}

/// Then the same i386 calls after native calls with the same numbers (getpid/mkdir 39,
/// stat/write 4, write/exit 1), in one task: the syscall program's fast path must test the
/// table of the call's own ABI, or they are not first sightings.
#[test]
fn i386_binary_is_recorded_under_its_own_abi() {
    let Some(_env) = root_env() else { return };
    common::build_i386_image("ctrace-test/i386");
    let daemon = Daemon::start(&[]);
    let i386_set = || set(vec!["mkdir".into(), "write".into(), "exit".into()]);
    // Runs `program` in the i386 image; its Tracefile once its last call, the i386 exit, is
    // there (or never, if lost) and the file has settled.
    let run_i386 = |label: &str, program: &str| {
        let name = unique(label);
        assert_eq!(
            run_container(Some(&name), "ctrace-test/i386", &[program]),
            "ok\n"
        );
        let text = daemon.wait_tracefile_final(&name, |t| {
            section(t, "SYSCALLS:i386").iter().any(|c| c == "exit")
        });
        (name, text)
    };
    let (name, text) = run_i386("i386", "/prog32");
    assert_eq!(set(section(&text, "SYSCALLS:i386")), i386_set(), "{text}");
    // The entrypoint's execve belongs to the runtime; the program made no native call.
    assert!(section(&text, "SYSCALLS").is_empty(), "{text}");
    let rows = daemon.query(&format!(
        "SELECT abi, nr FROM sighting_details WHERE tracefile = '{name}' AND name = 'mkdir' AND init = 0"
    ));
    assert_eq!(rows, vec![vec!["i386".to_string(), "39".to_string()]]);

    let (_, text) = run_i386("native-then-i386", "/native-then-i386");
    let native = set(section(&text, "SYSCALLS"));
    for call in ["getpid", "stat", "write", "execve"] {
        assert!(native.contains(call), "{call}: {text}");
    }
    assert_eq!(set(section(&text, "SYSCALLS:i386")), i386_set(), "{text}");
}

#[test]
fn audit_free_capability_probes_are_not_uses() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    // Every brk/mmap asks for CAP_SYS_ADMIN without auditing (memory accounting); a
    // container holding it but never mounting must not be told it needs it.
    let idle = unique("sysadmin-idle");
    let mounts = unique("sysadmin-mount");
    let run = |label: &str, script: &str| {
        let l = format!("ctrace.tracefile={label}");
        let out = docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--cap-add",
            "SYS_ADMIN",
            "--label",
            &l,
            IMAGE,
            "sh",
            "-c",
            script,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&idle, "echo hi && ls / >/dev/null");
    run(&mounts, "mkdir /m && mount -t tmpfs none /m");
    let idle_file = daemon.wait_tracefile(&idle, |t| t.contains("write"));
    let mount_file = daemon.wait_tracefile(&mounts, |t| t.contains("mount"));
    assert!(
        !section(&idle_file, "CAPABILITIES").contains(&"sys_admin".to_string()),
        "{idle_file}"
    );
    assert!(
        section(&mount_file, "CAPABILITIES").contains(&"sys_admin".to_string()),
        "{mount_file}"
    );
}

#[test]
fn containers_started_together_keep_the_runtime_out_of_their_tracefiles() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    let base = unique("crowd");
    let runs: Vec<_> = (0..24)
        .map(|i| {
            let label = format!("{base}-{i}");
            std::thread::spawn(move || {
                run_container(Some(&label), IMAGE, &["sh", "-c", "mkdir /c && echo c"]);
                label
            })
        })
        .collect();
    let labels: Vec<String> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    let mut first: Option<BTreeSet<String>> = None;
    // `echo c` is the script's last call; before it a Tracefile may hold a part.
    let texts =
        daemon.wait_tracefiles_final(&labels, |t| has_call(t, "mkdir") && has_call(t, "write"));
    for (label, text) in labels.iter().zip(texts) {
        let calls = set(section(&text, "SYSCALLS"));
        for runtime_only in ["pivot_root", "sethostname", "mount", "unshare", "seccomp"] {
            assert!(
                !calls.contains(runtime_only),
                "{runtime_only} in {label}:\n{text}"
            );
        }
        assert!(
            section(&text, "CAPABILITIES").is_empty(),
            "{label}:\n{text}"
        );
        match &first {
            None => first = Some(calls),
            // The application's calls only: the same script, the same set, every time.
            Some(f) => assert!(
                *f == calls,
                "{label} differs: {:?}",
                f.symmetric_difference(&calls).collect::<Vec<_>>()
            ),
        }
    }
}
