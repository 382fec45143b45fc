//! A ring buffer too small for a burst of first sightings (root): the failed reservations are
//! counted and warned about, and every item missed is stored once it is used again.
//!
//! Two daemons trace three labelled containers: one with a 4 KiB ring buffer, one with the
//! default 4 MiB as the reference. Overflow is not left to chance: the small daemon is stopped
//! (SIGSTOP, every thread checked stopped) while the containers run their bursts one after the
//! other, so nothing consumes its ring buffer and at most `TINY_RECORDS` of the bursts' first
//! sightings fit (bitmaps are per cgroup: each container sends its own); the bursts make more
//! than that many (counted by the reference, and checked). The first container's fit, the
//! others' are missed, then sent again when the same work runs again. The containers start
//! before the daemons and run their work only when told through a FIFO, so both daemons see
//! exactly the same calls: no runtime set-up (runc's Go runtime makes some calls only now and
//! then) and no `docker exec` (a runc init in the cgroup) is traced, only the same script.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use common::{docker, root_env, unique, Daemon, IMAGE};

/// `--ringbuf-size` of the small daemon: one page.
const TINY: u32 = 4096;
/// Records of `struct ctrace_event` (48 bytes, bpf/event.h) with their 8-byte headers that
/// fit in `TINY` bytes.
const TINY_RECORDS: usize = TINY as usize / (8 + 48);
/// Runs of the workload after the burst, at most, before the small daemon must hold it all.
const REPEATS: usize = 10;
/// Containers (one label each) whose bursts go into the small buffer together.
const CONTAINERS: usize = 3;

/// The warm-up: a few first sightings, so that both daemons are seen tracking a container.
const WARM: &str = "busybox true\n";

/// The burst: many distinct system calls and capability checks, each applet once.
const WORK: &str = r#"cd /tmp
busybox ls -la / /proc/self/fd; busybox stat / /proc/self/exe; busybox df /; busybox ps
busybox uname -a; busybox id; busybox hostname; busybox hostname traced-host; busybox sync
busybox renice -n 0 -p $$; busybox ionice -c 3 busybox true; busybox ionice -p $$
busybox taskset -p 1; busybox taskset 1 busybox true; busybox nproc; busybox free
busybox uptime; busybox setsid busybox true; busybox sleep 0.01; busybox usleep 1
busybox time busybox true; busybox linux32 busybox true; busybox setpriv --dump
busybox adjtimex; busybox kill -0 1; busybox chroot / busybox true; busybox mkdir -p d/e
busybox mknod n p; busybox mkfifo f; busybox touch a; busybox ln -s a sl; busybox link a hl
busybox mv a b; busybox chmod 600 b; busybox chown 1:1 b; busybox chgrp 2 b
busybox truncate -s 100 b; busybox fallocate -l 4096 fa
busybox dd if=/dev/zero of=dd bs=512 count=4 conv=fsync; busybox shred -n 1 dd
busybox tee t < /proc/version; busybox cp -a b c; busybox readlink -f sl; busybox realpath sl
busybox find /tmp -type f; busybox du -s /tmp; busybox md5sum b; busybox sha256sum b
busybox tar -czf x.tgz b c; busybox tar -xzf x.tgz -C d; busybox bzip2 -k c; busybox mktemp
busybox ip link; busybox ip addr; busybox ifconfig -a; busybox netstat -an; busybox route -n
busybox arp -a; busybox logger hello; busybox wget -q -O - http://127.0.0.1:9/
busybox sysctl kernel.hostname; busybox top -b -n 1; busybox pidof sh; busybox tty
busybox stty -a < /dev/null; busybox rm -rf d sl hl b c n f fa dd t x.tgz c.bz2 tmp.*
"#;

/// The container: waits on a FIFO for the name of a script, runs it, counts the runs.
const LOOP: &str = "n=0; while read what < /x/go; do sh /x/$what.sh > /dev/null 2>&1; \
                    n=$((n + 1)); echo $n >> /x/done; done";

/// A labelled container that runs `WARM` or `WORK` when told; removed when dropped.
struct Workload {
    id: String,
    dir: tempfile::TempDir,
    runs: usize,
}

impl Workload {
    fn start(label: &str) -> Workload {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("warm.sh"), WARM).unwrap();
        std::fs::write(dir.path().join("work.sh"), WORK).unwrap();
        let fifo =
            std::ffi::CString::new(dir.path().join("go").into_os_string().into_encoded_bytes())
                .unwrap();
        // SAFETY: mkfifo with a valid, NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
        let volume = format!("{}:/x", dir.path().display());
        let label = format!("ctrace.tracefile={label}");
        let out = docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            &label,
            "-v",
            &volume,
            IMAGE,
            "sh",
            "-c",
            LOOP,
        ]);
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let workload = Workload {
            id: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            dir,
            runs: 0,
        };
        workload.wait_idle();
        workload
    }

    /// Waits until the container's shell is blocked opening the FIFO: from then on it makes
    /// no call until it is told to run a script.
    fn wait_idle(&self) {
        let out = docker(&["inspect", "-f", "{{.State.Pid}}", &self.id]);
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let wchan = format!("/proc/{pid}/wchan");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&wchan).unwrap_or_default().trim() != "wait_for_partner" {
            assert!(
                Instant::now() < deadline,
                "the container never waited on its FIFO"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `script` (warm or work) once in the container and waits for it to finish.
    fn run(&mut self, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut go = loop {
            // Non-blocking: fails (ENXIO) until the shell has the FIFO open for reading.
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(self.dir.path().join("go"))
            {
                Ok(go) => break go,
                Err(e) => assert!(Instant::now() < deadline, "telling the container: {e}"),
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        go.write_all(format!("{script}\n").as_bytes()).unwrap();
        drop(go);
        self.runs += 1;
        let done = self.dir.path().join("done");
        while std::fs::read_to_string(&done)
            .unwrap_or_default()
            .lines()
            .count()
            < self.runs
        {
            assert!(
                Instant::now() < deadline,
                "run {} ({script}) did not finish",
                self.runs
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.id]);
    }
}

/// Every thread of the daemon stopped (SIGSTOP) until dropped: nothing reads its ring buffer.
struct Stopped<'a>(&'a Daemon);

impl<'a> Stopped<'a> {
    fn new(daemon: &'a Daemon) -> Stopped<'a> {
        daemon.signal(libc::SIGSTOP);
        let stopped = Stopped(daemon);
        let tasks = format!("/proc/{}/task", daemon.pid());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let states: Vec<String> = std::fs::read_dir(&tasks)
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
                .filter_map(|s| Some(s.rsplit_once(") ")?.1.chars().next()?.to_string()))
                .collect();
            if !states.is_empty() && states.iter().all(|s| s == "T") {
                return stopped;
            }
            assert!(Instant::now() < deadline, "daemon not stopped: {states:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.signal(libc::SIGCONT);
    }
}

/// (label, kind, abi, nr): per label, what the task's query gives,
/// `SELECT DISTINCT kind, abi, nr FROM sightings s JOIN containers c ON c.id = s.container
/// WHERE c.label = '<label>'`.
type Items = BTreeSet<(String, String, String, String)>;

fn items(daemon: &Daemon, labels: &[String]) -> Items {
    let labels: Vec<String> = labels.iter().map(|l| format!("'{l}'")).collect();
    daemon
        .query(&format!(
            "SELECT DISTINCT c.label, kind, abi, nr FROM sightings s JOIN containers c \
             ON c.id = s.container WHERE c.label IN ({})",
            labels.join(", ")
        ))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()))
        .collect()
}

fn of(items: &Items, label: &str) -> usize {
    items.iter().filter(|i| i.0 == label).count()
}

fn misses(daemon: &Daemon) -> u64 {
    let rows = daemon.query("SELECT value FROM meta WHERE key = 'ringbuf_misses'");
    rows.first().and_then(|r| r[0].parse().ok()).unwrap_or(0)
}

/// Polls until `done` holds (true) or `within` has passed (false).
fn wait_for(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

/// A daemon's items once they stopped changing for a second (commits come every 200 ms).
fn settled(daemon: &Daemon, labels: &[String]) -> Items {
    let mut last = items(daemon, labels);
    let (mut since, deadline) = (Instant::now(), Instant::now() + Duration::from_secs(15));
    while since.elapsed() < Duration::from_secs(1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let now = items(daemon, labels);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

#[test]
fn a_full_ring_buffer_is_counted_and_its_items_are_stored_on_their_next_use() {
    let Some(_env) = root_env() else { return };
    let labels: Vec<String> = (0..CONTAINERS)
        .map(|i| unique(&format!("ringbuf{i}")))
        .collect();
    let mut workloads: Vec<Workload> = labels.iter().map(|l| Workload::start(l)).collect();
    let mut reference = Daemon::start(&[]);
    let mut tiny = Daemon::start(&["--ringbuf-size", &TINY.to_string()]);

    // Both daemons track the containers: each stores every warm-up's sightings.
    for workload in &mut workloads {
        workload.run("warm");
    }
    for daemon in [&reference, &tiny] {
        let tracked = || {
            let got = items(daemon, &labels);
            labels.iter().all(|l| of(&got, l) > 0)
        };
        assert!(
            wait_for(Duration::from_secs(15), tracked),
            "untraced:\n{}",
            daemon.stderr()
        );
    }
    let warm = settled(&reference, &labels);

    // The bursts, one container after the other, with nothing reading the small daemon's
    // ring buffer.
    {
        let _stopped = Stopped::new(&tiny);
        for workload in &mut workloads {
            workload.run("work");
        }
    }
    let burst = settled(&reference, &labels);
    let new_in_burst = burst.difference(&warm).count();
    eprintln!(
        "warm-ups: {} items; bursts: {new_in_burst} more ({:?} per container); the small \
         ring buffer holds {TINY_RECORDS} records",
        warm.len(),
        labels
            .iter()
            .map(|l| of(&burst, l) - of(&warm, l))
            .collect::<Vec<_>>()
    );
    assert!(
        new_in_burst > TINY_RECORDS,
        "the bursts made {new_in_burst} first sightings, not more than {TINY_RECORDS}: \
         they cannot be relied on to overflow"
    );
    // The warning comes at the reader's next report (every 5 s; it was stopped past one).
    let warned = || tiny.stderr().contains("ring buffer reservations failed");
    assert!(
        wait_for(Duration::from_secs(15), warned),
        "no warning about ring buffer misses; ctrace stderr:\n{}",
        tiny.stderr()
    );

    // Items missed are sent on their next use: the same work again, until all are stored.
    let mut missing = Items::new();
    for repeat in 0..=REPEATS {
        let want = settled(&reference, &labels);
        wait_for(Duration::from_secs(3), || {
            missing = want.difference(&items(&tiny, &labels)).cloned().collect();
            missing.is_empty()
        });
        let lacking: Vec<usize> = labels.iter().map(|l| of(&missing, l)).collect();
        eprintln!("after {repeat} repeats the small daemon lacks {lacking:?} items");
        if missing.is_empty() || repeat == REPEATS {
            break;
        }
        for (workload, lacks) in workloads.iter_mut().zip(lacking) {
            if lacks > 0 {
                workload.run("work");
            }
        }
    }
    assert!(
        missing.is_empty(),
        "after {REPEATS} repeats, missing: {missing:?}"
    );

    assert!(reference.stop().success());
    assert!(tiny.stop().success());
    let (want, got) = (items(&reference, &labels), items(&tiny, &labels));
    let lacking: Vec<_> = want.difference(&got).collect();
    assert!(
        lacking.is_empty(),
        "the small daemon's store lacks {lacking:?}"
    );
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        extra.is_empty(),
        "only the small daemon's store has {extra:?}"
    );
    let (tiny_misses, reference_misses) = (misses(&tiny), misses(&reference));
    eprintln!("ringbuf_misses: small {tiny_misses}, reference {reference_misses}");
    // Each new item of the bursts was a failed reservation or one of the records that fit.
    assert!(
        tiny_misses >= (new_in_burst - TINY_RECORDS) as u64,
        "{tiny_misses} misses for {new_in_burst} first sightings into {TINY_RECORDS} records"
    );
    assert_eq!(reference_misses, 0, "the 4 MiB buffer overflowed");
}

#[test]
fn ring_buffer_sizes_the_kernel_would_not_take_are_refused() {
    for bad in ["0", "1000", "2048", "5000", "12288", "4294967296", "4k"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ctrace"))
            .args(["trace", "--ringbuf-size", bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("--ringbuf-size")
                && (stderr.contains("power of two") || stderr.contains("not a number")),
            "{bad}: {stderr}"
        );
    }
}
