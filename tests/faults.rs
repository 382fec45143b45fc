//! Hostile input and faults: a second daemon on a store or data directory in use, a store
//! file that is not a store, and a daemon started before dockerd (it waits, then traces).
//! Root and a real dockerd (the dockerd test starts one of its own, on its own socket, and
//! stops only that one, by PID); in CI a missing environment fails.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{root_env, section, unique, Daemon, OwnDockerd};

/// A `ctrace` process this test started: stdout lines on a channel, stderr in a file;
/// SIGTERM (by PID) and reaped when dropped.
struct Ctrace {
    child: Option<Child>,
    stdout: mpsc::Receiver<String>,
    stderr_log: PathBuf,
}

impl Ctrace {
    fn spawn(args: &[&Path], env: &[(&str, &str)], stderr_log: PathBuf) -> Ctrace {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ctrace"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("starting ctrace");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                eprintln!("[ctrace] {line}");
                let _ = tx.send(line);
            }
        });
        Ctrace {
            child: Some(child),
            stdout: rx,
            stderr_log,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Its exit status within `limit`; a process still running then is ended and fails the test.
    fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        panic!("ctrace still ran after {limit:?}:\n{}", self.stderr());
    }

    fn wait_stdout(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("no `{needle}` within {limit:?}; stderr:\n{}", self.stderr()),
            }
        }
    }

    fn wait_stderr(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.stderr();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < deadline, "no `{needle}` in:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on the PID of a child this test spawned and has not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().ok()
    }
}

impl Drop for Ctrace {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `ctrace ARGS` that must fail at once: returns its stderr after checking exit code 2.
fn fails(dir: &Path, args: &[&Path]) -> String {
    let started = Instant::now();
    let mut run = Ctrace::spawn(args, &[], dir.join(format!("stderr-{}.log", unique("run"))));
    let status = run.exit_within(Duration::from_secs(20));
    let log = run.stderr();
    assert_eq!(status.code(), Some(2), "{args:?}: {log}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{args:?} took {:?}",
        started.elapsed()
    );
    log
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

#[test]
fn a_second_daemon_on_a_store_or_data_directory_in_use_is_refused() {
    let Some(_env) = root_env() else { return };
    let mut first = Daemon::start(&[]);
    let other = tempfile::tempdir().unwrap();
    let owner = format!(
        "is in use by another ctrace trace (pid {}, started 20",
        first.pid()
    );

    // Same store, another data directory.
    let log = fails(
        other.path(),
        &[
            p("trace"),
            p("--db"),
            &first.db(),
            p("--data"),
            &other.path().join("data"),
        ],
    );
    let expected = format!("ctrace: error: store {} {owner}", first.db().display());
    assert!(log.contains(&expected), "{log}");
    assert!(log.contains("Z); stop it first"), "{log}");

    // Another store, the same data directory.
    let log = fails(
        other.path(),
        &[
            p("trace"),
            p("--db"),
            &other.path().join("other.db"),
            p("--data"),
            &first.data(),
        ],
    );
    let expected = format!(
        "ctrace: error: data directory {} {owner}",
        first.data().display()
    );
    assert!(log.contains(&expected), "{log}");

    // The first one goes on tracing, and stops cleanly.
    let child = first.child.as_mut().unwrap();
    assert!(child.try_wait().unwrap().is_none(), "{}", first.stderr());
    let name = unique("after-refusal");
    common::run_container(Some(&name), common::IMAGE, &["sh", "-c", "mkdir /a"]);
    first.wait_tracefile(&name, |t| {
        section(t, "SYSCALLS").iter().any(|l| l == "mkdir")
    });
    assert!(first.stop().success(), "{}", first.stderr());
    // Its locks went with it: a new daemon takes the store and the data directory.
    let again = Ctrace::spawn(
        &[
            p("trace"),
            p("--db"),
            &first.db(),
            p("--data"),
            &first.data(),
        ],
        &[],
        other.path().join("again.log"),
    );
    again.wait_stdout("waiting for Docker events", Duration::from_secs(30));
}

#[test]
fn a_store_that_is_not_a_store_is_refused_and_left_unchanged() {
    let Some(_env) = root_env() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A real store with its first page damaged after the header.
    let store = dir.path().join("store.db");
    drop(ctrace::store::open_rw(&store).unwrap());
    let mut bytes = std::fs::read(&store).unwrap();
    bytes.truncate(8192);
    bytes[100..4096].fill(0xa5);
    let cases: [(&str, Vec<u8>); 3] = [
        (
            "random.db",
            (0..8192u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
        (
            "tracefile.db",
            b"ARCH\nx86_64\n\nCAPABILITIES\n\nSYSCALLS\nread\n".to_vec(),
        ),
        ("damaged.db", bytes),
    ];
    for (name, bytes) in cases {
        let db = dir.path().join(name);
        std::fs::write(&db, &bytes).unwrap();
        let (output, data) = (dir.path().join("out.json"), dir.path().join("data"));
        let runs: [Vec<&Path>; 3] = [
            vec![p("trace"), p("--db"), &db, p("--data"), &data],
            vec![
                p("options"),
                p("--db"),
                &db,
                p("--since"),
                p("7d"),
                p("--output"),
                &output,
            ],
            vec![p("sql"), p("--db"), &db, p("SELECT 1")],
        ];
        for args in runs {
            let log = fails(dir.path(), &args);
            let expected = format!(
                "ctrace: error: store {} is not a SQLite database (or is corrupt): ",
                db.display()
            );
            assert!(log.contains(&expected), "{args:?}: {log}");
            assert!(log.trim_end().ends_with("; nothing was changed"), "{log}");
            assert!(
                std::fs::read(&db).unwrap() == bytes,
                "{args:?} changed {name}"
            );
            for suffix in ["-wal", "-shm", "-journal"] {
                let side = dir.path().join(format!("{name}{suffix}"));
                assert!(!side.exists(), "{args:?} made {}", side.display());
            }
            assert!(!output.exists(), "{args:?} wrote {}", output.display());
        }
    }
}

#[test]
fn a_daemon_started_before_dockerd_waits_for_it_then_traces() {
    let Some(_env) = root_env() else { return };
    let dir = tempfile::Builder::new()
        .prefix(&format!("ctrace-test-{}-", std::process::id()))
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join("docker.sock");
    let host = format!("unix://{}", socket.display());
    let (db, data) = (dir.path().join("ctrace.db"), dir.path().join("data"));
    let mut daemon = Ctrace::spawn(
        &[p("trace"), p("--db"), &db, p("--data"), &data],
        &[("DOCKER_HOST", &host)],
        dir.path().join("ctrace.log"),
    );
    let waiting = format!("ctrace: waiting for Docker at {host} (retrying every ");
    daemon.wait_stderr(&waiting, Duration::from_secs(30));
    // It stays up, not ready, and says it waits only once.
    std::thread::sleep(Duration::from_secs(3));
    assert!(daemon.running(), "{}", daemon.stderr());
    assert!(daemon.stdout.try_recv().is_err(), "ready without Docker");
    let log = daemon.stderr();
    assert_eq!(log.matches("waiting for Docker").count(), 1, "{log}");
    assert!(!log.contains("Docker unavailable"), "{log}");

    let dockerd = OwnDockerd::start(dir.path());
    daemon.wait_stdout("waiting for Docker events", Duration::from_secs(30));
    common::import_image_into(
        Some(&dockerd.host()),
        common::IMAGE,
        &[(Path::new("/bin/busybox"), "bin/busybox")],
    );
    let name = unique("after-wait");
    let script = ["sh", "-c", "mkdir /a"];
    common::run_at(
        Some(&dockerd.host()),
        None,
        Some(&name),
        common::IMAGE,
        &script,
    );
    let tracefile = data.join(&name);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&tracefile).unwrap_or_default();
        if section(&text, "SYSCALLS").iter().any(|l| l == "mkdir") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} not traced within 10 s:\n{text}\nctrace stderr:\n{}",
            tracefile.display(),
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = daemon.stop();
    assert!(status.is_some_and(|s| s.success()), "{}", daemon.stderr());
    drop(dockerd);
}
