//! The daemon under docker-compose (root, real dockerd, docker-compose), the whole round
//! trip a user makes: `scripts/compose-up.sh` builds the image without a registry and starts
//! it, a labelled container's Tracefile appears in the data directory (with the `ERRNO`
//! section, so the errno probe ran from inside the daemon's container), `docker-compose
//! down` drains and stops the daemon, and the store it leaves is intact and holds the
//! container.
//!
//! The image is made from this test's own binary (`CTRACE_BIN`), not a release build: the
//! binary under test, and no second, slow build in CI. A fixed tag with the binary's hash
//! as a label lets a second run skip the import.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{docker, root_env, run_container, section, unique, IMAGE};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const COMPOSE_IMAGE: &str = "ctrace-test/compose";

/// One compose project: its name, its data directory; `docker-compose down` when dropped,
/// so a failing test leaves no daemon behind.
struct Project {
    name: String,
    data: tempfile::TempDir,
    down: bool,
}

impl Project {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(REPO)
            .env("COMPOSE_PROJECT_NAME", &self.name)
            .env("CTRACE_IMAGE", COMPOSE_IMAGE)
            .env("CTRACE_DATA_DIR", self.data.path())
            .env("CTRACE_BIN", env!("CARGO_BIN_EXE_ctrace"));
        cmd
    }

    fn compose(&self, args: &[&str]) -> Output {
        self.command("docker-compose")
            .args(args)
            .output()
            .expect("running docker-compose")
    }

    /// Every container of the project, running or not.
    fn containers(&self) -> Vec<String> {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        let out = docker(&["ps", "-aq", "--filter", &filter]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if !self.down {
            let _ = self.compose(&["down", "--timeout", "60"]);
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn compose_up_traces_and_down_leaves_an_intact_store() {
    let Some(_env) = root_env() else { return };
    let has_compose = Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_compose && common::missing::<()>("docker-compose").is_none() {
        return;
    }
    let started = Instant::now();
    let mut project = Project {
        name: unique("ctrace-compose"),
        data: tempfile::tempdir().expect("tempdir"),
        down: false,
    };

    let up = project
        .command("bash")
        .arg("scripts/compose-up.sh")
        .stdin(Stdio::null())
        .output()
        .expect("running scripts/compose-up.sh");
    assert!(up.status.success(), "compose-up.sh failed:\n{}", text(&up));
    eprintln!(
        "compose-up.sh took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let ids = project.containers();
    assert_eq!(ids.len(), 1, "one daemon container: {ids:?}");
    let id = ids[0].clone();
    let logs = || text(&docker(&["logs", &id]));
    // The script returns once the daemon is ready; check that it said so.
    assert!(
        logs().contains("waiting for Docker events (store /var/lib/ctrace/ctrace.db"),
        "{}",
        logs()
    );

    let label = unique("compose");
    run_container(
        Some(&label),
        IMAGE,
        &["sh", "-c", "mkdir /compose-dir; echo ok"],
    );
    let tracefile = project.data.path().join(&label);
    let deadline = Instant::now() + Duration::from_secs(20);
    let traced = loop {
        let t = std::fs::read_to_string(&tracefile).unwrap_or_default();
        let syscalls = section(&t, "SYSCALLS");
        if syscalls.iter().any(|l| l == "mkdir")
            && syscalls.iter().any(|l| l == "write")
            && section(&t, "ERRNO").iter().any(|l| l == "clone3 ENOSYS")
        {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "Tracefile {} not complete within 20 s:\n{t}\ndaemon log:\n{}",
            tracefile.display(),
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("traced:\n{traced}");

    // Follow the daemon to its end: `down` removes the container and its log.
    let follow = Command::new("docker")
        .args(["logs", "--follow", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker logs --follow");
    let waiter = Command::new("docker")
        .args(["wait", &id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker wait");
    // Both attach before the container goes (its removal would leave them nothing).
    std::thread::sleep(Duration::from_millis(500));
    let down_started = Instant::now();
    let down = project.compose(&["down"]);
    project.down = true;
    assert!(
        down.status.success(),
        "docker-compose down:\n{}",
        text(&down)
    );
    eprintln!(
        "docker-compose down took {:.1} s",
        down_started.elapsed().as_secs_f64()
    );
    let exit = waiter.wait_with_output().expect("docker wait");
    let log = text(&follow.wait_with_output().expect("docker logs --follow"));
    assert_eq!(
        String::from_utf8_lossy(&exit.stdout).trim(),
        "0",
        "the daemon's exit status; its log:\n{log}"
    );
    assert!(
        log.contains("ctrace: stopping: draining") && log.contains("ctrace: stopped"),
        "{log}"
    );
    assert!(
        project.containers().is_empty(),
        "the daemon's container is gone"
    );

    // The store: intact, checkpointed (a clean close leaves no WAL), holding the container.
    let db = project.data.path().join("ctrace.db");
    assert!(
        !Path::new(&format!("{}-wal", db.display())).exists(),
        "a clean shutdown checkpoints the WAL"
    );
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("opening the store");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let (stopped, mkdir): (Option<i64>, i64) = conn
        .query_row(
            "SELECT c.stopped_at, (SELECT count(*) FROM sightings s \
             WHERE s.container = c.id AND s.name = 'mkdir' AND s.init = 0) \
             FROM containers c WHERE c.label = ?1",
            [&label],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the container is in the store");
    assert!(stopped.is_some(), "its stop is recorded");
    assert_eq!(mkdir, 1, "its mkdir is recorded");
    eprintln!("round trip in {:.1} s", started.elapsed().as_secs_f64());
}
