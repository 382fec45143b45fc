//! podman through its Docker-compatible API (issue 13): a labelled podman container is
//! traced from its first call, records what the same workload records under Docker, and its
//! cgroup (`/libpod_parent/libpod-<id>` with the cgroupfs manager) is recognized.

mod common;

use common::{podman_service, root_env, run_container, section, set, unique, Daemon, IMAGE};
use ctrace::runtimes::cgroup_path::{self, RuntimeHint};

/// Files, a directory, a child process and a pause; prints its own cgroup last.
const WORKLOAD: &str = "mkdir /tmp/w && echo hello > /tmp/w/f && cat /tmp/w/f >/dev/null \
     && ls / >/dev/null && rm -r /tmp/w && sleep 0.1 && sh -c true && cat /proc/self/cgroup";

#[test]
fn a_podman_container_is_traced_like_the_same_workload_under_docker() {
    let Some(_env) = root_env() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(mut podman) = podman_service(dir.path()) else {
        return;
    };
    let image = "ctrace-test/podman-busybox";
    podman.import_busybox(image);

    // Under Docker.
    let docker_name = unique("pm-docker");
    let docker_text = {
        let daemon = Daemon::start(&[]);
        run_container(Some(&docker_name), IMAGE, &["sh", "-c", WORKLOAD]);
        daemon.wait_tracefile_final(&docker_name, |t| t.lines().any(|l| l == "wait4"))
    };

    // Under podman, through its API socket.
    let name = unique("pm-podman");
    let daemon = Daemon::start_with(&[], &[("DOCKER_HOST", &podman.host())]);
    let label = format!("ctrace.tracefile={name}");
    let out = podman.podman_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--label",
        &label,
        image,
        "sh",
        "-c",
        WORKLOAD,
    ]);
    let text = daemon.wait_tracefile_final(&name, |t| t.lines().any(|l| l == "wait4"));

    // Its cgroup is podman's and names the container the store holds.
    let cgroup = out
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup2 line in the container's output: {out}"));
    let parsed = cgroup_path::parse(cgroup)
        .unwrap_or_else(|| panic!("podman's cgroup {cgroup} is not recognized"));
    assert_eq!(parsed.runtime, RuntimeHint::Podman, "{cgroup}");
    let rows = daemon.query(&format!(
        "SELECT container_id FROM containers WHERE label = '{name}'"
    ));
    assert_eq!(rows, vec![vec![parsed.id.clone()]], "the store's container");

    // Complete from its first call: the daemon never saw the syscall program detached.
    let log = daemon.stderr();
    assert!(
        !log.contains("syscall program was detached") && log.contains("engine is podman"),
        "{log}"
    );

    // The same application calls as under Docker. Both engines run runc here and the
    // runtime's set-up is left out of Tracefiles, so the sets must be equal.
    let (docker_calls, podman_calls) = (
        set(section(&docker_text, "SYSCALLS")),
        set(section(&text, "SYSCALLS")),
    );
    assert_eq!(
        podman_calls, docker_calls,
        "podman:\n{text}\ndocker:\n{docker_text}"
    );
    // podman's seccomp profile was probed through its API: an ERRNO section.
    assert!(!section(&text, "ERRNO").is_empty(), "{text}\n{log}");
    drop(daemon);
    podman.stop();
}
