//! Soak and crash tests against the real kernel and a real dockerd (root): a daemon killed
//! while containers start, and a daemon that sees thousands of short-lived containers and
//! must come back to the occupancy it had before them (`meta`: `tracked_cgroups`,
//! `slots_in_use`, `registry_containers`; its RSS).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{has_call, root_env, run_container, section, unique, Daemon, IMAGE};

/// The containers' script in the crash test; `cat` writes last.
const SCRIPT: &str = "mkdir /s && echo s > /s/f && cat /s/f";
/// The occupancy counters the daemon stores in `meta`, in this order.
const COUNTERS: [&str; 3] = ["tracked_cgroups", "slots_in_use", "registry_containers"];
/// Stopped containers are forgotten by then (the writer's FORGET_AFTER is 10 s, the
/// counters are stored every 5 s).
const QUIET: Duration = Duration::from_secs(15);
/// How much the daemon's RSS may grow over the soak: allocator and SQLite page-cache slack,
/// not per-container state (2,000 containers of a few KiB each would exceed it).
const RSS_MARGIN_KIB: u64 = 10 * 1024;

fn ran_script(tracefile: &str) -> bool {
    has_call(tracefile, "mkdir") && has_call(tracefile, "write")
}

/// Runs `job(0..total)` on `threads` threads, each taking the next index.
fn run_pool(total: usize, threads: usize, job: impl Fn(usize) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    break;
                }
                job(i);
            });
        }
    });
}

/// The counters as the daemon last stored them (None: not stored).
fn counters(daemon: &Daemon) -> Vec<Option<u64>> {
    let rows = daemon.query("SELECT key, value FROM meta");
    COUNTERS
        .iter()
        .map(|key| {
            rows.iter()
                .find(|row| row.first().map(String::as_str) == Some(*key))
                .and_then(|row| row.get(1)?.parse().ok())
        })
        .collect()
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// Waits until the counters are stored and the same in two reads a report apart (other
/// tests' containers may come and go on this dockerd), up to a minute.
fn steady_counters(daemon: &Daemon) -> Vec<Option<u64>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = counters(daemon);
    loop {
        std::thread::sleep(Duration::from_secs(6));
        let now = counters(daemon);
        if (now == last && now.iter().all(Option::is_some)) || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Starts a new daemon on the store and data directory of a killed one, in its place.
fn restart(killed: &mut Daemon) {
    let log = std::fs::read_to_string(&killed.stderr_log).unwrap_or_default();
    std::fs::write(killed.dir.path().join("stderr-killed.log"), log).unwrap();
    let dir = std::mem::replace(&mut killed.dir, tempfile::tempdir().unwrap());
    *killed = Daemon::start_in(dir, &[], &[]);
}

fn assert_intact(daemon: &Daemon, when: &str) {
    let check = daemon.query("PRAGMA integrity_check");
    assert_eq!(check, vec![vec!["ok".to_string()]], "store {when}");
}

fn assert_no_crash(daemon: &Daemon) {
    let log = daemon.stderr();
    assert!(!log.contains("panicked"), "the daemon panicked:\n{log}");
}

#[test]
fn sigkill_while_containers_start_then_a_new_daemon_records_the_rest_completely() {
    let Some(_env) = root_env() else { return };
    let mut daemon = Daemon::start(&[]);
    let base = unique("crash");

    // The reference: the script's calls, from a container traced before any of this.
    let reference = format!("{base}-ref");
    run_container(Some(&reference), IMAGE, &["sh", "-c", SCRIPT]);
    let text = daemon.wait_tracefile_final(&reference, ran_script);
    let expected: BTreeSet<String> = section(&text, "SYSCALLS").into_iter().collect();

    // 50 containers, 10 at a time; the daemon dies once 20 were launched, the threads wait
    // for its successor, and what they launch from then on must be recorded completely.
    const TOTAL: usize = 50;
    let launched = AtomicUsize::new(0);
    let paused = AtomicBool::new(false);
    let restarted = AtomicBool::new(false);
    let after: Mutex<Vec<String>> = Mutex::default();
    let began = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            run_pool(TOTAL, 10, |i| {
                while paused.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let label = format!("{base}-{i}");
                let after_restart = restarted.load(Ordering::SeqCst);
                launched.fetch_add(1, Ordering::SeqCst);
                run_container(Some(&label), IMAGE, &["sh", "-c", SCRIPT]);
                if after_restart {
                    after.lock().unwrap().push(label);
                }
            })
        });
        while launched.load(Ordering::SeqCst) < 20 {
            std::thread::sleep(Duration::from_millis(5));
        }
        paused.store(true, Ordering::SeqCst);
        daemon.kill9();
        let in_flight = launched.load(Ordering::SeqCst);
        eprintln!("SIGKILL after {in_flight} launched ({:?})", began.elapsed());
        assert_intact(&daemon, "as the SIGKILL left it");
        restart(&mut daemon);
        restarted.store(true, Ordering::SeqCst);
        paused.store(false, Ordering::SeqCst);
    });
    eprintln!("50 containers across the crash in {:?}", began.elapsed());

    let after = after.into_inner().unwrap();
    assert!(
        after.len() >= 20,
        "only {} containers started after the restart",
        after.len()
    );
    let texts = daemon.wait_tracefiles_final(&after, ran_script);
    for (label, text) in after.iter().zip(&texts) {
        let calls: BTreeSet<String> = section(text, "SYSCALLS").into_iter().collect();
        assert!(
            calls == expected,
            "{label}, started after the restart, differs from the reference: {:?}\n{text}",
            expected.symmetric_difference(&calls).collect::<Vec<_>>()
        );
    }
    let stopped: BTreeSet<String> = daemon
        .query("SELECT label FROM containers WHERE stopped_at IS NOT NULL")
        .into_iter()
        .filter_map(|row| row.into_iter().next())
        .collect();
    for label in &after {
        assert!(
            stopped.contains(label),
            "{label} has no stopped container row"
        );
    }
    assert_intact(&daemon, "under the new daemon");
    assert_no_crash(&daemon);
    let status = daemon.stop();
    assert!(status.success(), "{status:?}:\n{}", daemon.stderr());
    assert_intact(&daemon, "after the new daemon stopped");
    eprintln!(
        "{} containers after the restart, each with the reference's {} syscalls",
        after.len(),
        expected.len()
    );
}

#[test]
fn thousands_of_short_containers_leave_the_daemon_as_they_found_it() {
    let Some(_env) = root_env() else { return };
    let total: usize = std::env::var("CTRACE_SOAK_CONTAINERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    const THREADS: usize = 8;
    const WARM_UP: usize = 24;
    let mut daemon = Daemon::start(&[]);
    let base = unique("soak");
    let labels: Vec<String> = (0..THREADS).map(|t| format!("{base}-{t}")).collect();
    let run = |i: usize| {
        run_container(Some(&labels[i % THREADS]), IMAGE, &["true"]);
    };

    run_pool(WARM_UP, THREADS, run);
    std::thread::sleep(QUIET);
    let start = steady_counters(&daemon);
    let rss_start = rss_kib(daemon.pid());
    eprintln!("start (after {WARM_UP} containers): {COUNTERS:?} = {start:?}, RSS {rss_start} KiB");

    let began = Instant::now();
    run_pool(total, THREADS, run);
    let took = began.elapsed();
    eprintln!(
        "{total} containers, {THREADS} at a time, in {took:?} ({:.1}/s)",
        total as f64 / took.as_secs_f64()
    );
    std::thread::sleep(QUIET);
    let mut end = steady_counters(&daemon);
    let deadline = Instant::now() + Duration::from_secs(60);
    while end != start && Instant::now() < deadline {
        end = steady_counters(&daemon);
    }
    let rss_end = rss_kib(daemon.pid());
    eprintln!(
        "end: {COUNTERS:?} = {end:?}, RSS {rss_end} KiB ({:+} KiB; margin {RSS_MARGIN_KIB} KiB)",
        rss_end as i64 - rss_start as i64
    );

    assert_eq!(end, start, "{COUNTERS:?} did not return to the start's");
    assert!(
        rss_end <= rss_start + RSS_MARGIN_KIB,
        "RSS grew from {rss_start} KiB to {rss_end} KiB"
    );
    let like = format!("{base}-%");
    let recorded = daemon.query(&format!(
        "SELECT count(*), count(stopped_at) FROM containers WHERE label LIKE '{like}'"
    ));
    let want = (total + WARM_UP).to_string();
    assert_eq!(
        recorded,
        vec![vec![want.clone(), want]],
        "containers recorded; daemon stderr:\n{}",
        daemon.stderr()
    );
    assert_no_crash(&daemon);
    let status = daemon.stop();
    assert!(status.success(), "{status:?}:\n{}", daemon.stderr());
    // At shutdown the reader stores its counters once more: still the start's.
    let last = counters(&daemon);
    assert_eq!(last[..2], start[..2], "counters stored at shutdown");
    assert_intact(&daemon, "after the soak");
}
