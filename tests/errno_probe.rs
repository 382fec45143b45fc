//! The errno probe against a real dockerd (root): what Docker's default profile, no profile
//! and custom profiles answer for every x86_64 and i386 number.

mod common;

use std::time::{Duration, Instant};

use ctrace::abi::Abi;
use ctrace::names::syscall_number;
use ctrace::refusals::{run_probe, ProbeTarget, Refusals};
use serde_json::json;

use common::block_on;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const EOPNOTSUPP: u32 = 95;

fn probe(what: &str, target: &ProbeTarget) -> Refusals {
    let started = Instant::now();
    let refusals = common::measure(target);
    eprintln!("probe ({what}) took {:?}", started.elapsed());
    assert_no_probe_container_left();
    refusals
}

/// run_probe removes its container before it returns: none labelled with this process's pid
/// may be left (daemons elsewhere on the host may be probing at the same time).
fn assert_no_probe_container_left() {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // Only this process's: daemons elsewhere on the host may be probing too.
        let mine = format!("label=ctrace.errno-probe={}", std::process::id());
        let ps = common::docker(&["ps", "-aq", "--filter", &mine]);
        assert!(ps.status.success());
        let left = String::from_utf8_lossy(&ps.stdout).trim().to_string();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "probe containers left: {left}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn errno(r: &Refusals, abi: Abi, name: &str) -> Option<u32> {
    let nr = syscall_number(abi, name).unwrap_or_else(|| panic!("{abi} {name}"));
    r.errnos.get(&abi).and_then(|m| m.get(&nr)).copied()
}

fn with_profile(profile: &serde_json::Value) -> ProbeTarget {
    ProbeTarget {
        security_opt: vec![format!("seccomp={profile}")],
        ..Default::default()
    }
}

/// What the probe itself (static glibc, threads) and runc's last steps need.
const PROBE_NEEDS: &[&str] = &[
    "access",
    "dup",
    "dup2",
    "epoll_create1",
    "epoll_wait",
    "faccessat",
    "faccessat2",
    "fchown",
    "fstatfs",
    "getcwd",
    "getegid",
    "geteuid",
    "getgid",
    "getrlimit",
    "getuid",
    "lseek",
    "pipe2",
    "pselect6",
    "statfs",
    "statx",
    "uname",
    "writev",
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "clock_gettime",
    "clock_nanosleep",
    "clone",
    "clone3",
    "close",
    "close_range",
    "dup3",
    "epoll_ctl",
    "epoll_pwait",
    "execve",
    "exit",
    "exit_group",
    "fchdir",
    "fcntl",
    "fstat",
    "futex",
    "getdents64",
    "getpid",
    "getppid",
    "getrandom",
    "gettid",
    "ioctl",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "openat",
    "poll",
    "ppoll",
    "prctl",
    "prlimit64",
    "read",
    "readlink",
    "readlinkat",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_getaffinity",
    "sched_yield",
    "seccomp",
    "set_robust_list",
    "set_tid_address",
    "setgid",
    "setgroups",
    "setuid",
    "sigaltstack",
    "tgkill",
    "write",
];

fn custom_profile(architectures: &[&str], extra: serde_json::Value) -> serde_json::Value {
    let mut rules = vec![
        json!({"names": PROBE_NEEDS, "action": "SCMP_ACT_ALLOW"}),
        json!({"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": EOPNOTSUPP}),
    ];
    if !extra.is_null() {
        rules.push(extra);
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": architectures,
        "syscalls": rules,
    })
}

#[test]
fn docker_default_profile() {
    let Some(_env) = common::root_env() else {
        return;
    };
    let r = probe("default profile", &ProbeTarget::default());
    for abi in [Abi::X86_64, Abi::I386] {
        assert_eq!(errno(&r, abi, "clone3"), Some(ENOSYS), "{abi} clone3");
        assert_eq!(errno(&r, abi, "reboot"), Some(EPERM), "{abi} reboot");
        assert_eq!(errno(&r, abi, "mount"), Some(EPERM), "{abi} mount");
        for allowed in ["read", "write", "futex", "execve"] {
            assert_eq!(errno(&r, abi, allowed), None, "{abi} {allowed}");
        }
    }
    assert!(r.killed.is_empty() && r.killed_calls.is_empty());

    // runc's stub: numbers above the profile's highest known one get ENOSYS.
    let fchmodat2 = errno(&r, Abi::X86_64, "fchmodat2");
    eprintln!("default profile: fchmodat2 (452) -> {fchmodat2:?}");
    for abi in [Abi::X86_64, Abi::I386] {
        let by_errno = |e: u32| {
            let nrs: Vec<u32> = r.errnos[&abi]
                .iter()
                .filter(|&(_, &x)| x == e)
                .map(|(&nr, _)| nr)
                .collect();
            nrs
        };
        let (eperm, enosys) = (by_errno(EPERM), by_errno(ENOSYS));
        eprintln!(
            "default profile, {abi}: {} refused, {} EPERM, {} ENOSYS {enosys:?}",
            r.errnos[&abi].len(),
            eperm.len(),
            enosys.len()
        );
        assert_eq!(
            eperm.len() + enosys.len(),
            r.errnos[&abi].len(),
            "{abi}: other errnos"
        );
        assert_eq!(
            errno(&r, abi, "fchmodat2"),
            Some(ENOSYS),
            "{abi}: above the highest entry"
        );
        assert_eq!(r.errnos[&abi].get(&511), Some(&ENOSYS), "{abi} 511");
    }
    let names = r.by_name();
    eprintln!("default profile, by name: {names:?}");
    assert_eq!(names.get("clone3"), Some(&ENOSYS));
    assert_eq!(names.get("fchmodat2"), Some(&ENOSYS));
    assert!(!names.contains_key("reboot") && !names.contains_key("read"));
    assert!(names.values().all(|&e| e == ENOSYS));

    // The capabilities are passed through: with CAP_SYS_ADMIN the profile allows mount.
    let sys_admin = ProbeTarget {
        cap_add: vec!["SYS_ADMIN".into()],
        ..Default::default()
    };
    let r = probe("default profile + SYS_ADMIN", &sys_admin);
    assert_eq!(errno(&r, Abi::X86_64, "mount"), None);
    assert_eq!(errno(&r, Abi::X86_64, "reboot"), Some(EPERM));
}

#[test]
fn unconfined_starts_nothing() {
    let Some(_env) = common::root_env() else {
        return;
    };
    // A client that cannot reach any daemon (a plain file, not a socket): any call fails.
    let not_a_socket = tempfile::NamedTempFile::new().unwrap();
    let docker = bollard::Docker::connect_with_unix(
        not_a_socket.path().to_str().unwrap(),
        5,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    let unconfined = [
        ProbeTarget {
            security_opt: vec!["seccomp=unconfined".into()],
            ..Default::default()
        },
        ProbeTarget {
            security_opt: vec!["no-new-privileges".into(), "seccomp:unconfined".into()],
            ..Default::default()
        },
        ProbeTarget {
            privileged: true,
            ..Default::default()
        },
    ];
    for target in unconfined {
        let r = block_on(run_probe(&docker, &target)).unwrap();
        assert_eq!(r, Refusals::default(), "{}", target.key());
        assert!(r.by_name().is_empty());
    }
    // The same client does fail for a confined target.
    assert!(block_on(run_probe(&docker, &ProbeTarget::default())).is_err());
}

#[test]
fn custom_profile_errno() {
    let Some(_env) = common::root_env() else {
        return;
    };
    let all_archs = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
    let r = probe(
        "custom profile",
        &with_profile(&custom_profile(&all_archs, json!(null))),
    );
    for abi in [Abi::X86_64, Abi::I386] {
        assert_eq!(errno(&r, abi, "mkdirat"), Some(EOPNOTSUPP), "{abi} mkdirat");
        assert_eq!(errno(&r, abi, "mkdir"), Some(EPERM), "{abi} mkdir");
        assert_eq!(errno(&r, abi, "write"), None, "{abi} write");
    }
    assert!(r.killed.is_empty() && r.killed_calls.is_empty());
    let names = r.by_name();
    eprintln!("custom profile, by name: {names:?}");
    assert_eq!(names.get("mkdirat"), Some(&EOPNOTSUPP));
    assert!(!names.contains_key("mkdir"));
}

#[test]
fn custom_profile_without_i386_and_with_kill_rules() {
    let Some(_env) = common::root_env() else {
        return;
    };
    // No x86 sub-architecture: every i386 call kills the thread.
    let r = probe(
        "x86_64 only",
        &with_profile(&custom_profile(&["SCMP_ARCH_X86_64"], json!(null))),
    );
    assert_eq!(r.killed, [Abi::I386].into());
    assert!(!r.errnos.contains_key(&Abi::I386));
    assert_eq!(errno(&r, Abi::X86_64, "mkdirat"), Some(EOPNOTSUPP));

    // SCMP_ACT_KILL (the thread) on two calls: the probe resumes after each.
    let kill = json!({"names": ["reboot", "getcpu"], "action": "SCMP_ACT_KILL"});
    let all_archs = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"];
    let r = probe(
        "kill rules",
        &with_profile(&custom_profile(&all_archs, kill)),
    );
    assert!(r.killed.is_empty());
    for abi in [Abi::X86_64, Abi::I386] {
        let expected = ["reboot", "getcpu"].map(|n| syscall_number(abi, n).unwrap());
        assert_eq!(r.killed_calls[&abi], expected.into(), "{abi}");
        assert_eq!(errno(&r, abi, "mkdirat"), Some(EOPNOTSUPP), "{abi}");
    }
    assert!(!r.by_name().contains_key("reboot"));
}
