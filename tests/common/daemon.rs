//! A `ctrace trace` daemon for a test: started, queried, signalled, stopped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
                Ok(line) if line.contains("waiting for Docker events") => break,
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
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() && done(&text) {
                return text;
            }
            if Instant::now() > deadline {
                panic!(
                    "Tracefile {} not as expected within 10 s; it holds:\n{text}\nctrace stderr:\n{}",
                    path.display(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// As `wait_tracefile`, then until the Tracefile has not changed for a second: one
    /// container's sightings can reach it in more than one write.
    pub fn wait_tracefile_settled(&self, name: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_tracefiles_settled(&[name.to_string()], done)
            .remove(0)
    }

    /// `wait_tracefile_settled` for several Tracefiles, settling them together.
    pub fn wait_tracefiles_settled(
        &self,
        names: &[String],
        done: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut texts: Vec<String> = names
            .iter()
            .map(|name| self.wait_tracefile(name, &done))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut since = Instant::now();
        while since.elapsed() < Duration::from_secs(1) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            for (name, text) in names.iter().zip(texts.iter_mut()) {
                let now = std::fs::read_to_string(self.data().join(name)).unwrap_or_default();
                if now != *text {
                    *text = now;
                    since = Instant::now();
                }
            }
        }
        texts
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
