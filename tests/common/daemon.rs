//! A `ctrace trace` daemon for a test: started, queried, signalled, stopped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tracefiles::section;

/// How long a wait gives the daemon before the test fails. Generous: a wait ends as soon as
/// what it waits for is true, so only a failing test pays it, and a loaded machine (CI, two
/// CPUs, several daemons and dockerd busy at once) must not fail a correct daemon.
const PATIENCE: Duration = Duration::from_secs(60);

/// A `ctrace trace` daemon with its own store and data directory.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub stderr_log: PathBuf,
}

impl Daemon {
    pub fn start(extra: &[&str]) -> Daemon {
        Daemon::start_with(extra, &[])
    }

    /// As `start`, with environment variables for the daemon (DOCKER_HOST, ...).
    pub fn start_with(extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::start_in(tempfile::tempdir().expect("tempdir"), extra, env)
    }

    /// As `start_with`, with its store and data directory in `dir` (which it keeps).
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let stderr_log = dir.path().join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ctrace"))
            .arg("trace")
            .arg("--db")
            .arg(dir.path().join("ctrace.db"))
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("starting ctrace trace");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("[ctrace] {line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line)
                    if line.starts_with("ctrace: waiting for ") && line.contains(" events") =>
                {
                    break
                }
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(&stderr_log).unwrap_or_default();
                    panic!("ctrace trace did not start within 30 s:\n{log}");
                }
            }
        }
        Daemon {
            child: Some(child),
            dir,
            stderr_log,
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("ctrace.db")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// Sends a signal to the daemon (only ever the process this harness started).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the PID of our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGTERM, then waits; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        self.child.take().unwrap().wait().unwrap()
    }

    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.take().unwrap().wait();
    }

    /// Waits until the Tracefile exists and `done` accepts it; returns its text.
    pub fn wait_tracefile(&self, name: &str, done: impl Fn(&str) -> bool) -> String {
        let path = self.data().join(name);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() && done(&text) {
                return text;
            }
            if Instant::now() > deadline {
                panic!(
                    "Tracefile {} not as expected within {PATIENCE:?}; it holds:\n{text}\nctrace stderr:\n{}",
                    path.display(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// For containers that have exited: `wait_tracefile_final` for several Tracefiles.
    pub fn wait_tracefiles_final(
        &self,
        names: &[String],
        done: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        let mut texts = Vec::new();
        for name in names {
            let mut text = self.wait_tracefile(name, &done);
            while let Some(why) = self.not_final(name, &text) {
                if Instant::now() > deadline {
                    panic!(
                        "Tracefile {name} not final within {PATIENCE:?}: {why}; it holds:\n\
                         {text}\nctrace stderr:\n{}",
                        self.stderr()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
                text = std::fs::read_to_string(self.data().join(name)).unwrap_or_default();
            }
            texts.push(text);
        }
        texts
    }

    /// For containers that have exited: waits until `done` accepts the Tracefile, the store
    /// has every container feeding it stopped (the daemon marks a stop only once the
    /// container's last sightings are in), and the Tracefile lists all the store holds for
    /// it. Unlike a quiet period, this does not depend on the machine's speed.
    pub fn wait_tracefile_final(&self, name: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_tracefiles_final(&[name.to_string()], done)
            .remove(0)
    }

    /// Why the Tracefile `name`, holding `text`, is not final yet; None once it is.
    fn not_final(&self, name: &str, text: &str) -> Option<String> {
        let quoted = name.replace('\'', "''");
        let feeding = format!(
            "(c.label = '{quoted}' OR c.id IN (SELECT r.container FROM runs r \
             JOIN tracefiles t ON t.id = r.tracefile WHERE t.path = '{quoted}'))"
        );
        let count = |condition: &str| -> String {
            let sql = format!("SELECT count(*) FROM containers c WHERE {condition} AND {feeding}");
            self.query(&sql)[0][0].clone()
        };
        let running = count("c.stopped_at IS NULL");
        if running != "0" {
            return Some(format!(
                "{running} of its containers not stopped in the store"
            ));
        }
        // The errno probe of a container's seccomp setting (the ERRNO section) runs beside
        // the trace and may end after it.
        let unprobed =
            count("c.seccomp IS NOT NULL AND c.seccomp NOT IN (SELECT seccomp FROM refusals)");
        if unprobed != "0" {
            return Some(format!(
                "{unprobed} of its containers' seccomp settings not probed yet"
            ));
        }
        let refused = self.query(&format!(
            "SELECT DISTINCT r.name FROM container_refusals r \
             JOIN containers c ON c.container_id = r.container_id WHERE {feeding}"
        ));
        let errno = section(text, "ERRNO");
        for row in refused {
            if !errno
                .iter()
                .any(|l| l.split_whitespace().next() == Some(row[0].as_str()))
            {
                return Some(format!(
                    "the store's refusal of {} is not in its ERRNO yet",
                    row[0]
                ));
            }
        }
        let stored = self.query(&format!(
            "SELECT DISTINCT s.kind, s.abi, s.name FROM sightings s \
             JOIN tracefiles t ON t.id = s.tracefile \
             WHERE t.path = '{quoted}' AND s.init = 0 AND s.kind != 'cap_denied'"
        ));
        for row in stored {
            let header = match (row[0].as_str(), row[1].as_str()) {
                ("cap_granted", _) => "CAPABILITIES".to_string(),
                (_, "x86_64") => "SYSCALLS".to_string(),
                (_, abi) => format!("SYSCALLS:{abi}"),
            };
            if !section(text, &header).contains(&row[2]) {
                return Some(format!("the store's {} is not in its {header} yet", row[2]));
            }
        }
        None
    }

    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let out = Command::new(env!("CARGO_BIN_EXE_ctrace"))
            .args(["sql", "--db"])
            .arg(self.db())
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctrace sql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the PID of our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}
