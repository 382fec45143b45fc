//! An independent witness (root, real dockerd, bpftrace): what the store holds for a
//! container is compared, set for set, with the syscall numbers bpftrace counted for the
//! container's cgroup, every phase included. Each iteration starts a fresh daemon, so the
//! container is the first it sees and its syscall program is attached while the container
//! starts: a call made before that is missing from the store, and this test fails.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{root_env, run_named, unique, Daemon, IMAGE};

const ITERATIONS: usize = 10;
const WORKLOAD: &str = "echo hi; ls /; cat /etc/hostname; mkdir /tmp/x";
/// Room for every (cgroup, syscall) pair on the host while the witness runs; a full map
/// drops new keys silently, so a witness whose map filled up is refused (see `finish`).
const MAP_KEYS_MAX: usize = 65536;
/// Counts every syscall entry by cgroup v2 id and number. The line `witness live` is printed
/// when the probe fires for the test's own process (`$1`): the probe is then attached.
const PROGRAM: &str = "tracepoint:raw_syscalls:sys_enter {
    @[cgroup, args->id] = count();
    if (pid == $1 && @live == 0) { @live = 1; printf(\"witness live\\n\"); }
}";

/// bpftrace's counts: cgroup id → syscall number → calls.
type Counts = BTreeMap<u64, BTreeMap<i64, u64>>;

/// The bpftrace this test started; interrupted and reaped when dropped, even on failure.
struct Witness {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Witness {
    fn out(&self) -> PathBuf {
        self.dir.path().join("bpftrace.out")
    }

    fn err(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bpftrace.err")).unwrap_or_default()
    }

    /// Starts bpftrace and returns once its probe has fired (so it is attached).
    fn start() -> Witness {
        ensure_tracefs();
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new("bpftrace")
            .args(["-B", "none", "-e", PROGRAM])
            .arg(std::process::id().to_string())
            .env("BPFTRACE_MAP_KEYS_MAX", MAP_KEYS_MAX.to_string())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("bpftrace.out")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("bpftrace.err")).unwrap())
            .spawn()
            .expect("starting bpftrace");
        let mut witness = Witness {
            child: Some(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = std::fs::read_to_string(witness.out()).unwrap_or_default();
            if out.lines().any(|l| l == "witness live") {
                return witness;
            }
            if let Ok(Some(status)) = witness.child.as_mut().unwrap().try_wait() {
                witness.child = None;
                panic!(
                    "bpftrace exited ({status}) before attaching:\n{out}\n{}",
                    witness.err()
                );
            }
            assert!(
                Instant::now() < deadline,
                "bpftrace did not attach within 60 s:\n{out}\n{}",
                witness.err()
            );
            // The sleep is itself a syscall of this process: it fires the probe once attached.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGINT (to this bpftrace only), waits for it to print its map and exit, parses the map.
    fn finish(mut self) -> Counts {
        let failure = match interrupt_and_reap(self.child.take().unwrap()) {
            Ok(status) if status.success() => None,
            Ok(status) => Some(format!("ended with {status}")),
            Err(blocked) => Some(blocked),
        };
        let out = std::fs::read_to_string(self.out()).unwrap();
        if let Some(failure) = failure {
            panic!(
                "bpftrace {failure}\nits stderr:\n{}its stdout ({} lines) ends:\n{}",
                self.err(),
                out.lines().count(),
                out.lines().rev().take(5).collect::<Vec<_>>().join("\n")
            );
        }
        let mut counts = Counts::new();
        let mut keys = 0;
        for line in out.lines().filter(|l| l.starts_with("@[")) {
            let (cgroup, nr, n) = parse_entry(line)
                .unwrap_or_else(|| panic!("unexpected bpftrace map line {line:?}"));
            counts.entry(cgroup).or_default().insert(nr, n);
            keys += 1;
        }
        assert!(keys > 0, "bpftrace printed no map:\n{out}\n{}", self.err());
        assert!(
            keys < MAP_KEYS_MAX,
            "bpftrace's map filled up ({keys} keys): entries may have been dropped, the witness cannot be trusted"
        );
        counts
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = interrupt_and_reap(child);
        }
    }
}

/// SIGINT to `child` until it exits (30 s at most, it takes well under a second), else what
/// its threads are blocked in, and SIGKILL. Repeated because bpftrace 0.17 loses a SIGINT
/// that lands outside its `epoll_wait`: the handler only sets a flag, which its poll loop
/// reads only when `epoll_wait` fails with EINTR. A later SIGINT is harmless (the handler
/// sets the flag again; printing the maps does not look at it).
fn interrupt_and_reap(mut child: Child) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        for _ in 0..5 {
            if let Ok(Some(status)) = child.try_wait() {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let mut blocked = String::from("no exit 30 s after SIGINT; its threads:");
    let tasks = Path::new("/proc").join(child.id().to_string()).join("task");
    for task in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
        let (stat, stack) = (
            read(task.path().join("stat")),
            read(task.path().join("stack")),
        );
        blocked.push_str(&format!("\n{}\n{stack}", stat.trim()));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(blocked)
}

/// `@[CGROUP, NR]: COUNT`
fn parse_entry(line: &str) -> Option<(u64, i64, u64)> {
    let (key, count) = line.strip_prefix("@[")?.split_once("]: ")?;
    let (cgroup, nr) = key.split_once(", ")?;
    Some((
        cgroup.parse().ok()?,
        nr.parse().ok()?,
        count.trim().parse().ok()?,
    ))
}

/// bpftrace reads tracepoint formats from tracefs.
fn ensure_tracefs() {
    if Path::new("/sys/kernel/tracing/events/raw_syscalls").exists() {
        return;
    }
    let status = Command::new("mount")
        .args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
        .status()
        .expect("running mount");
    assert!(status.success(), "mounting tracefs failed");
}

fn have_bpftrace() -> bool {
    let found = Command::new("bpftrace")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var_os("CI").is_some() {
        panic!("CI requires bpftrace (scripts/setup-host.sh installs it)");
    }
    if !found {
        eprintln!("SKIPPED (not in CI): needs bpftrace");
    }
    found
}

/// One iteration's comparison.
struct Outcome {
    cgroup: u64,
    store: BTreeSet<i64>,
    witness: BTreeMap<i64, u64>,
    /// Store rows of another ABI (busybox is x86_64 only), as `abi nr`.
    other_abis: Vec<String>,
    names: BTreeMap<i64, String>,
}

impl Outcome {
    fn identical(&self) -> bool {
        self.other_abis.is_empty() && self.witness.keys().copied().eq(self.store.iter().copied())
    }

    fn name(&self, nr: i64) -> String {
        let name = self.names.get(&nr).map_or("?", String::as_str);
        format!("{name}({nr})")
    }

    fn report(&self) -> String {
        if self.identical() {
            return format!(
                "identical: {} x86_64 syscalls (cgroup {})",
                self.store.len(),
                self.cgroup
            );
        }
        let missing: Vec<String> = (self.witness.iter())
            .filter(|(nr, _)| !self.store.contains(nr))
            .map(|(&nr, n)| format!("{} x{n}", self.name(nr)))
            .collect();
        let extra: Vec<String> = (self.store.iter())
            .filter(|nr| !self.witness.contains_key(nr))
            .map(|&nr| self.name(nr))
            .collect();
        format!(
            "DIFFERENT (cgroup {}; store {} syscalls, bpftrace {}): store lacks [{}] (bpftrace's \
             call counts); store has, bpftrace did not see: [{}]; store's other ABIs: [{}]",
            self.cgroup,
            self.store.len(),
            self.witness.len(),
            missing.join(", "),
            extra.join(", "),
            self.other_abis.join(", ")
        )
    }
}

/// One fresh daemon, one witness, one container; the store against the witness.
fn iteration() -> Outcome {
    let mut daemon = Daemon::start(&[]);
    let witness = Witness::start();
    let name = unique("witness");
    run_named(Some(&name), Some(&name), IMAGE, &["sh", "-c", WORKLOAD]);
    daemon.wait_tracefile_final(&name, |t| t.lines().any(|l| l == "mkdir"));
    let status = daemon.stop();
    assert!(status.success(), "ctrace: {status}\n{}", daemon.stderr());
    // Every process of the container has exited (`docker run --rm` has returned), so the
    // witness has counted all there will be.
    let counts = witness.finish();

    let rows = daemon.query(&format!(
        "SELECT cgroup_id FROM containers WHERE name = '{name}'"
    ));
    assert_eq!(rows.len(), 1, "containers named {name}: {rows:?}");
    let cgroup: u64 = rows[0][0].parse().expect("cgroup_id");
    let mut store = BTreeSet::new();
    let mut other_abis = Vec::new();
    let sightings = daemon.query(&format!(
        "SELECT DISTINCT s.abi, s.nr FROM sightings s JOIN containers c ON c.id = s.container \
         WHERE c.name = '{name}' AND s.kind = 'syscall' AND s.init IN (0, 1, 2)"
    ));
    for row in sightings {
        match row[0].as_str() {
            "x86_64" => store.insert(row[1].parse().expect("nr")),
            _ => {
                other_abis.push(format!("{} {}", row[0], row[1]));
                true
            }
        };
    }
    let names = daemon
        .query("SELECT nr, name FROM names WHERE space = 'x86_64'")
        .into_iter()
        .map(|r| (r[0].parse().expect("nr"), r[1].clone()))
        .collect();
    // Empty if the ids disagree: then everything stored shows as unseen by bpftrace.
    let witness = counts.get(&cgroup).cloned().unwrap_or_default();
    Outcome {
        cgroup,
        store,
        witness,
        other_abis,
        names,
    }
}

#[test]
fn store_holds_every_syscall_an_independent_witness_saw() {
    let Some(_env) = root_env() else { return };
    if !have_bpftrace() {
        return;
    }
    let mut lines = Vec::new();
    let mut identical = 0;
    for i in 1..=ITERATIONS {
        let outcome = iteration();
        let line = format!("iteration {i}: {}", outcome.report());
        eprintln!("{line}");
        identical += usize::from(outcome.identical());
        lines.push(line);
    }
    eprintln!("{identical} of {ITERATIONS} identical");
    assert_eq!(
        identical,
        ITERATIONS,
        "the store and bpftrace disagree:\n{}",
        lines.join("\n")
    );
}
