//! Helpers shared by the benchmarks (each bench is its own crate and uses a subset).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Root benchmarks need root and a reachable dockerd. Outside CI they are skipped with a clear
/// message; in CI (`CI` set) a missing environment is a failure, never a silent skip.
pub fn root_and_docker(bench: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let docker = root
        && Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if root && docker {
        return true;
    }
    let why = if root {
        "dockerd is not reachable"
    } else {
        "not running as root"
    };
    if std::env::var_os("CI").is_some() {
        eprintln!("{bench}: FAILED: {why}; CI must run the root benchmarks");
        std::process::exit(1);
    }
    println!("{bench}: SKIPPED ({why}; needs root and a running dockerd)");
    false
}

/// `cargo bench` passes `--bench`; a name filter skips benches that do not match it.
pub fn selected(bench: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| bench.contains(f.as_str()))
}

/// Runs one bench: honours `cargo bench NAME` and, for root benches, the root/Docker check;
/// an error becomes a `FAILED` line and exit code 1.
pub fn run_bench(bench: &str, needs_root: bool, run: impl FnOnce() -> Result<(), String>) {
    if !selected(bench) || (needs_root && !root_and_docker(bench)) {
        return;
    }
    if let Err(e) = run() {
        eprintln!("{bench}: FAILED: {e}");
        std::process::exit(1);
    }
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs docker, returning trimmed stdout; fails with docker's stderr.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("running docker {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Removes, by id, the containers a benchmark created (also on panic).
#[derive(Default)]
pub struct Containers(pub Vec<String>);

impl Containers {
    pub fn remove_all(&mut self) {
        for chunk in self.0.chunks(50) {
            let mut args = vec!["rm", "-f"];
            args.extend(chunk.iter().map(String::as_str));
            let _ = docker(&args);
        }
        self.0.clear();
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// Builds a static binary from C and puts it into an image of its own (no registry here).
pub fn import_static_image(
    c_source: &Path,
    binary: &str,
    image: &str,
    work: &Path,
) -> Result<(), String> {
    let out = work.join(binary);
    let status = Command::new("cc")
        .args(["-O2", "-static", "-o"])
        .arg(&out)
        .arg(c_source)
        .status()
        .map_err(|e| format!("running cc: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cc -static {} failed (needs libc6-dev)",
            c_source.display()
        ));
    }
    let tar = Command::new("tar")
        .arg("-C")
        .arg(work)
        .args(["-cf", "-", binary])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running tar: {e}"))?;
    let mut tar = tar;
    let tar_out = tar.stdout.take().ok_or("tar has no stdout")?;
    let out = Command::new("docker")
        .args(["import", "-", image])
        .stdin(tar_out)
        .output()
        .map_err(|e| format!("docker import: {e}"))?;
    let _ = tar.wait();
    if !out.status.success() {
        return Err(format!(
            "docker import: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The real `ctrace trace` daemon as a child process with its own store and data directory,
/// stopped by its pid with SIGINT (the documented shutdown).
pub struct Ctrace {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far: the writer thread can print a container's line before the
    /// main thread prints that it waits for events.
    seen: Vec<String>,
    pub db: PathBuf,
    pub data: PathBuf,
    pub log: PathBuf,
}

impl Ctrace {
    pub fn start(dir: &Path, extra: &[&str]) -> Result<Ctrace, String> {
        Ctrace::start_on(dir, extra, None)
    }

    /// As `start`, its threads kept to `cpu` if given (away from a loop being timed).
    pub fn start_on(dir: &Path, extra: &[&str], cpu: Option<usize>) -> Result<Ctrace, String> {
        let db = dir.join("t.db");
        let data = dir.join("data");
        let log = dir.join("ctrace.stderr");
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_ctrace"));
        if let Some(cpu) = cpu {
            // SAFETY: between fork and exec only sched_setaffinity runs, which is
            // async-signal-safe; the set lives on the child's stack.
            unsafe {
                command.pre_exec(move || {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(cpu, &mut set);
                    if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                })
            };
        }
        let mut child = command
            .arg("trace")
            .arg("--db")
            .arg(&db)
            .arg("--data")
            .arg(&data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting ctrace: {e}"))?;
        let stdout = child.stdout.take().ok_or("ctrace has no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut ctrace = Ctrace {
            child,
            lines,
            seen: Vec::new(),
            db,
            data,
            log,
        };
        ctrace.wait_for("waiting for Docker events", Duration::from_secs(30))?;
        Ok(ctrace)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line containing `needle` (printed since the start, in any order).
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return Ok(line.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Ok(line);
                    }
                }
                Err(_) => {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    return Err(format!(
                        "ctrace never printed `{needle}`; its stderr:\n{log}"
                    ));
                }
            }
        }
    }

    /// SIGINT, then wait (SIGKILL by pid after `timeout`). Returns how long shutdown took.
    pub fn stop(&mut self, timeout: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(pid, libc::SIGINT) };
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                if !status.success() {
                    return Err(format!("ctrace exited with {status}"));
                }
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!("ctrace did not stop within {timeout:?}; killed"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ctrace {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.stop(Duration::from_secs(20));
        }
    }
}

/// Median of a non-empty sample.
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// Nearest-rank-with-interpolation percentile.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = p / 100.0 * (v.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
}

pub fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Peak resident set size of this process (VmHWM), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

pub fn flush() {
    let _ = std::io::stdout().flush();
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Other `ctrace trace` daemons on this machine (not `mine`): they attach their own syscall
/// program whenever a container appears, which would be counted against ours.
pub fn foreign_daemons(mine: Option<u32>) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| Some(*pid) != mine && *pid != std::process::id())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let mut args = cmd.split(|&b| b == 0);
            let exe = args.next().unwrap_or_default();
            exe.ends_with(b"ctrace") && args.next() == Some(b"trace".as_slice())
        })
        .collect()
}

/// How many BPF links are attached to the sys_enter tracepoint right now (None: no bpftool).
pub fn sys_enter_links() -> Option<usize> {
    let out = Command::new("bpftool")
        .args(["-j", "link", "show"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        links
            .as_array()?
            .iter()
            .filter(|l| l.get("tp_name").and_then(|t| t.as_str()) == Some("sys_enter"))
            .count(),
    )
}

/// Samples `sys_enter_links` in the background until dropped; `max()` is the most seen.
pub struct LinkMonitor {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<Option<usize>>>,
}

impl LinkMonitor {
    pub fn start() -> LinkMonitor {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut max = None;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(n) = sys_enter_links() {
                    max = Some(max.unwrap_or(0).max(n));
                }
                std::thread::sleep(Duration::from_millis(150));
            }
            max
        });
        LinkMonitor {
            stop,
            handle: Some(handle),
        }
    }

    pub fn max(mut self) -> Option<usize> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok()).flatten()
    }
}
