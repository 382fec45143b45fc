//! containerd's own API (`ctr run`, with `trace --containerd`): a labelled container is
//! traced from its first call and records what the same workload records under Docker;
//! one in a Kubernetes-shaped cgroup (`--cgroup /kubepods/besteffort/pod<uid>/<id>`) is
//! stored as the container containerd names, not as the id in its cgroup's name; one whose
//! id is not 64 hex digits (`/<namespace>/<name>`) is traced from its first call too.
//!
//! Each test has a containerd namespace of its own on dockerd's containerd, removed at the
//! end with its images and containers (`common::Namespace`).

mod common;

use common::programs::{build_threads_image, THREADS_BIN};
use common::{
    containerd_namespace, docker_ok, has_call, root_env, section, set, unique, Daemon,
    CONTAINERD_SOCKET, IMAGE,
};
use ctrace::runtimes::cgroup_path;

const THREADS_IMAGE: &str = "ctrace-test/containerd-threads";
/// Files, a directory, a child process and a pause; prints its own cgroup last.
const WORKLOAD: &str = "mkdir /tmp/w && echo hello > /tmp/w/f && cat /tmp/w/f >/dev/null \
     && ls / >/dev/null && rm -r /tmp/w && sleep 0.1 && sh -c true && cat /proc/self/cgroup";

/// 64 hex digits, different on every call.
fn hex_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let n = COUNT.fetch_add(1, Ordering::SeqCst);
    format!(
        "{nanos:016x}{:016x}{n:016x}{:016x}",
        std::process::id(),
        nanos ^ 0x5eed
    )
}

/// The Tracefile of `cmd` in a labelled Docker container of `image` without a seccomp
/// filter (`ctr run` sets none), traced by a daemon watching Docker. Docker also sets
/// `HOSTNAME`, without which busybox's shell calls `uname`: containers compared with this
/// one get it from `ctr run --env`.
fn under_docker(image: &str, cmd: &[&str], done: &str) -> String {
    let daemon = Daemon::start(&[]);
    let name = unique("ctr-reference");
    let label = format!("ctrace.tracefile={name}");
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        "seccomp=unconfined",
        "--label",
        &label,
        image,
    ];
    args.extend(cmd);
    docker_ok(&args);
    daemon.wait_tracefile_final(&name, |t| has_call(t, done))
}

/// A Docker image this test built, removed when dropped (even when the test fails).
struct RemovedAtEnd(&'static str);

impl Drop for RemovedAtEnd {
    fn drop(&mut self) {
        let _ = common::docker(&["rmi", "--force", self.0]);
    }
}

fn stored(daemon: &Daemon, label: &str) -> Vec<Vec<String>> {
    daemon.query(&format!(
        "SELECT container_id, name, image, seccomp FROM containers WHERE label = '{label}'"
    ))
}

#[test]
fn a_ctr_run_container_is_traced_from_its_first_call_like_under_docker() {
    let Some(_env) = root_env() else { return };
    let Some(mut namespace) = containerd_namespace() else {
        return;
    };
    build_threads_image(THREADS_IMAGE);
    let _docker_image = RemovedAtEnd(THREADS_IMAGE);
    let image = namespace.import_from_docker(THREADS_IMAGE);
    let reference = under_docker(THREADS_IMAGE, &[THREADS_BIN], "wait4");

    let daemon = Daemon::start(&["--containerd", CONTAINERD_SOCKET]);
    let (name, id) = (unique("ctr-threads"), hex_id());
    namespace.owns_container(&id);
    namespace.run(&name, &image, &id, &[], &[THREADS_BIN]);
    let text = daemon.wait_tracefile_final(&name, |t| has_call(t, "wait4"));

    // The loader's first calls, the threads, the program's own re-exec and its wait.
    for call in ["brk", "arch_prctl", "mmap", "openat", "execve", "wait4"] {
        assert!(has_call(&text, call), "{call} missing:\n{text}");
    }
    assert!(
        has_call(&text, "clone3") || has_call(&text, "clone"),
        "{text}"
    );
    // Both engines run runc without a filter and the runtime's set-up is left out of
    // Tracefiles: the sets must be equal, but for `futex`, which glibc calls only when its
    // threads happen to contend for a lock.
    let (calls, docker_calls) = (
        set(section(&text, "SYSCALLS")),
        set(section(&reference, "SYSCALLS")),
    );
    let differ: Vec<_> = calls.symmetric_difference(&docker_calls).collect();
    assert!(
        differ.iter().all(|c| *c == "futex"),
        "differ in {differ:?}; containerd:\n{text}\ndocker:\n{reference}"
    );
    let rows = stored(&daemon, &name);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][..3], [id.clone(), id.clone(), image.clone()]);
    assert!(
        rows[0][3].starts_with("engine=containerd-1.") && rows[0][3].contains(r#""none""#),
        "{rows:?}"
    );
    let log = daemon.stderr();
    assert!(
        log.contains("engine is containerd-") && !log.contains("detached"),
        "{log}"
    );
}

#[test]
fn a_container_in_a_kubernetes_shaped_cgroup_is_stored_as_containerds_container() {
    let Some(_env) = root_env() else { return };
    let Some(mut namespace) = containerd_namespace() else {
        return;
    };
    let image = namespace.import_from_docker(IMAGE);
    let reference = under_docker(IMAGE, &["sh", "-c", WORKLOAD], "wait4");

    let pid = std::process::id();
    let uid = format!("{pid:08x}-0000-4000-8000-{:012x}", pid);
    for parent in ["kubepods", "kubepods/besteffort"] {
        if !std::path::Path::new("/sys/fs/cgroup/unified")
            .join(parent)
            .exists()
        {
            namespace.owns_cgroup_dir(parent);
        }
    }
    let pod_dir = format!("kubepods/besteffort/pod{uid}");
    namespace.owns_cgroup_dir(&pod_dir);
    // The cgroup's leaf is an id, but not the container's: the store must name the
    // container containerd ran.
    let (name, id, leaf) = (unique("ctr-kubepods"), hex_id(), hex_id());
    let cgroup = format!("/{pod_dir}/{leaf}");
    let daemon = Daemon::start(&["--containerd", CONTAINERD_SOCKET]);
    namespace.owns_container(&id);
    let out = namespace.run(
        &name,
        &image,
        &id,
        &["--cgroup", &cgroup, "--env", "HOSTNAME=ctrace-test"],
        &["sh", "-c", WORKLOAD],
    );
    let text = daemon.wait_tracefile_final(&name, |t| has_call(t, "wait4"));

    let seen = out
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup2 line in the container's output: {out}"));
    assert_eq!(seen, cgroup);
    let parsed = cgroup_path::parse(seen).expect("a kubelet-shaped cgroup is recognized");
    assert_eq!(parsed.pod_uid.as_deref(), Some(uid.as_str()));
    assert_eq!(parsed.id, leaf);
    let rows = stored(&daemon, &name);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], id, "{rows:?}");
    assert_eq!(
        set(section(&text, "SYSCALLS")),
        set(section(&reference, "SYSCALLS")),
        "containerd:\n{text}\ndocker:\n{reference}"
    );
    assert!(!daemon.stderr().contains("detached"), "{}", daemon.stderr());
}

#[test]
fn a_container_whose_id_is_not_hex_is_traced_from_its_first_call_too() {
    let Some(_env) = root_env() else { return };
    let Some(mut namespace) = containerd_namespace() else {
        return;
    };
    let image = namespace.import_from_docker(IMAGE);
    let reference = under_docker(IMAGE, &["sh", "-c", WORKLOAD], "wait4");
    let daemon = Daemon::start(&["--containerd", CONTAINERD_SOCKET]);
    // ctr's usual ids are names: the cgroup `/<namespace>/<name>` is announced to the
    // kernel from containerd's `create`, before the task's cgroup is made.
    let (name, id) = (unique("ctr-plain"), unique("plain"));
    namespace.owns_container(&id);
    namespace.run(
        &name,
        &image,
        &id,
        &["--env", "HOSTNAME=ctrace-test"],
        &["sh", "-c", WORKLOAD],
    );
    let text = daemon.wait_tracefile_final(&name, |t| has_call(t, "wait4"));

    assert_eq!(
        set(section(&text, "SYSCALLS")),
        set(section(&reference, "SYSCALLS")),
        "containerd:\n{text}\ndocker:\n{reference}"
    );
    let rows = stored(&daemon, &name);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][..2], [id.clone(), id.clone()]);
    let log = daemon.stderr();
    assert!(
        !log.contains("detached") && !log.contains("traced from its task"),
        "{log}"
    );
}
