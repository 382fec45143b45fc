//! dockerd restarts under a running `ctrace trace`: the watcher reconnects and the next
//! labelled container is traced. The test starts its own dockerd (own socket, data root and
//! exec root, no bridge, no iptables) so the shared one stays up, and ends only that dockerd,
//! by its PID. Root and a real dockerd binary; in CI a missing environment fails.

mod common;

use std::path::Path;

use common::{root_env, section, unique, Daemon, OwnDockerd};

fn run_traced(dockerd: &OwnDockerd, name: &str, script: &str) {
    let host = dockerd.host();
    common::run_at(
        Some(&host),
        None,
        Some(name),
        common::IMAGE,
        &["sh", "-c", script],
    );
}

#[test]
fn a_restarted_dockerd_is_reconnected_and_its_containers_traced() {
    let Some(_env) = root_env() else { return };
    let work = tempfile::tempdir().unwrap();
    let mut dockerd = OwnDockerd::start(work.path());
    common::import_image_into(
        Some(&dockerd.host()),
        common::IMAGE,
        &[(Path::new("/bin/busybox"), "bin/busybox")],
    );
    let daemon = Daemon::start_with(&[], &[("DOCKER_HOST", &dockerd.host())]);

    let before = unique("before-restart");
    run_traced(&dockerd, &before, "mkdir /a");
    daemon.wait_tracefile(&before, |t| {
        section(t, "SYSCALLS").iter().any(|l| l == "mkdir")
    });

    dockerd.stop();
    let mut dockerd = OwnDockerd::start(work.path());
    let after = unique("after-restart");
    run_traced(&dockerd, &after, "chroot / true");
    daemon.wait_tracefile(&after, |t| {
        section(t, "SYSCALLS").iter().any(|l| l == "chroot")
    });
    let log = daemon.stderr();
    assert!(log.contains("reconnected"), "{log}");
    dockerd.stop();
}
