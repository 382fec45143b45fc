//! dockerd restarts under a running `ctrace trace`: the watcher reconnects and the next
//! labelled container is traced. The test starts its own dockerd (own socket, data root and
//! exec root, no bridge, no iptables) so the shared one stays up, and ends only that dockerd,
//! by its PID. Root and a real dockerd binary; in CI a missing environment fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{root_env, section, unique, Daemon};

/// A dockerd of this test's own; stopped (SIGTERM, by PID) when dropped.
struct OwnDockerd {
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnDockerd {
    fn socket(dir: &Path) -> PathBuf {
        dir.join("docker.sock")
    }

    fn host(&self) -> String {
        format!("unix://{}", Self::socket(&self.dir).display())
    }

    fn start(dir: &Path) -> OwnDockerd {
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--host")
            .arg(format!("unix://{}", Self::socket(dir).display()))
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting a second dockerd (is docker.io installed?)");
        let own = OwnDockerd {
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !own
            .docker(&["info", "--format", "{{.ServerVersion}}"])
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "the test's dockerd did not answer within 60 s:\n{}",
                std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        own
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("--host")
            .arg(self.host())
            .args(args)
            .output()
            .expect("running the docker client")
    }

    /// SIGTERM to the dockerd this test started, then wait for it to exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the PID of a child this test spawned and has not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for OwnDockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

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
