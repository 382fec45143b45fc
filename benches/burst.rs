//! Burst completeness: 200 containers, each labelled `ctrace.tracefile=burst-N` and running the
//! same script, started together under the real `ctrace trace` daemon. They wait at a gate (a
//! file on a read-only bind mount) until all are up, then run the script at once. Every
//! Tracefile must hold the same set as a reference run of the script alone (zero loss), and the
//! time from each container's exit (Docker's FinishedAt) to its complete Tracefile is reported.
//!
//! Needs root and dockerd; `CTRACE_BENCH_BURST` (default 200) sets the number of containers.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

const BENCH: &str = "burst";
const IMAGE: &str = "ctrace-test/busybox";
/// Wait at the gate, then some ordinary work. The first `sleep` is unconditional: a container
/// whose shell reaches the gate after it opened (`docker run -d` returns before the script
/// runs; under a burst, seconds before) would otherwise never call clock_nanosleep, and every
/// container must make the same calls.
const SCRIPT: &str = "sleep 0.2; while [ ! -e /gate/go ]; do sleep 0.2; done; \
    echo burst > /tmp/f; cat /tmp/f; ls -l / >/dev/null; id; uname -a; date; \
    mkdir -p /tmp/d/e; rm -r /tmp/d; wc -l /etc/passwd 2>/dev/null; true";
/// Everything after the gate opens must finish within this.
const DEADLINE: Duration = Duration::from_secs(90);
const STARTERS: usize = 8;

fn main() {
    common::run_bench(BENCH, true, run);
}

/// A Tracefile's content as a set of lines (section headers included, blank lines not).
fn lines(path: &Path) -> Option<BTreeSet<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

fn run_container(label: &str, gate: &Path) -> Result<String, String> {
    common::docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--label",
        &format!("ctrace.tracefile={label}"),
        "-v",
        &format!("{}:/gate:ro", gate.display()),
        IMAGE,
        "sh",
        "-c",
        SCRIPT,
    ])
}

fn run() -> Result<(), String> {
    let n = common::env_usize("CTRACE_BENCH_BURST", 200);
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let gate = work.path().join("gate");
    std::fs::create_dir_all(&gate).map_err(|e| e.to_string())?;
    let mut containers = common::Containers::default();
    let mut ctrace = common::Ctrace::start(&work.path().join("daemon"), &[])?;
    let data = ctrace.data.clone();

    // Reference: the script alone, through the gate like the others.
    let id = run_container("burst-reference", &gate)?;
    containers.0.push(id.clone());
    std::thread::sleep(Duration::from_millis(700));
    std::fs::write(gate.join("go"), b"").map_err(|e| e.to_string())?;
    common::docker(&["wait", &id])?;
    let reference_path = data.join("burst-reference");
    let started = Instant::now();
    let reference = loop {
        // The writer commits within 1 s; give it a little more, then take what is there.
        if started.elapsed() > Duration::from_secs(3) {
            break lines(&reference_path).ok_or_else(|| {
                format!("no reference Tracefile at {}", reference_path.display())
            })?;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::fs::remove_file(gate.join("go")).map_err(|e| e.to_string())?;
    println!(
        "{BENCH}: reference Tracefile (script alone): {} lines; starting {n} containers \
         ({STARTERS} docker clients in parallel)",
        reference.len()
    );
    common::flush();

    // Start them all; they wait at the gate.
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let ids = Mutex::new(vec![String::new(); n]);
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..STARTERS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                match run_container(&format!("burst-{i}"), &gate) {
                    Ok(id) => ids.lock().unwrap_or_else(|e| e.into_inner())[i] = id,
                    Err(e) => errors.lock().unwrap_or_else(|e| e.into_inner()).push(e),
                }
            });
        }
    });
    let ids = ids.into_inner().unwrap_or_else(|e| e.into_inner());
    containers
        .0
        .extend(ids.iter().filter(|i| !i.is_empty()).cloned());
    let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = errors.first() {
        return Err(format!(
            "{} containers failed to start, e.g.: {e}",
            errors.len()
        ));
    }
    println!(
        "  all {n} started in {:.1} s; opening the gate",
        started.elapsed().as_secs_f64()
    );
    common::flush();

    // Open the gate; poll Tracefiles until each holds the reference set.
    std::fs::write(gate.join("go"), b"").map_err(|e| e.to_string())?;
    let opened = Instant::now();
    let mut complete: Vec<Option<SystemTime>> = vec![None; n];
    while complete.iter().any(Option::is_none) && opened.elapsed() < DEADLINE {
        for (i, done) in complete.iter_mut().enumerate().filter(|(_, d)| d.is_none()) {
            if lines(&data.join(format!("burst-{i}"))).is_some_and(|l| l.is_superset(&reference)) {
                *done = Some(SystemTime::now());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let all_done = opened.elapsed();
    // Exit times, as Docker recorded them (once Docker has finished with every container).
    for chunk in ids.chunks(50) {
        let mut args = vec!["wait"];
        args.extend(chunk.iter().map(String::as_str));
        common::docker(&args)?;
    }
    let mut finished: Vec<Option<SystemTime>> = Vec::with_capacity(n);
    for chunk in ids.chunks(50) {
        let mut args = vec!["inspect", "-f", "{{.State.Status}} {{.State.FinishedAt}}"];
        args.extend(chunk.iter().map(String::as_str));
        for line in common::docker(&args)?.lines() {
            let mut it = line.split_whitespace();
            let (status, at) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            finished.push(
                (status == "exited")
                    .then(|| humantime::parse_rfc3339_weak(at).ok())
                    .flatten(),
            );
        }
    }

    let shutdown = ctrace.stop(Duration::from_secs(60))?;
    // After a clean shutdown (drain, commit, rewrite): the final Tracefiles.
    let mut lost = Vec::new();
    let mut extra = Vec::new();
    for i in 0..n {
        match lines(&data.join(format!("burst-{i}"))) {
            Some(l) if l == reference => {}
            Some(l) if l.is_superset(&reference) => {
                extra.push((i, l.difference(&reference).cloned().collect::<Vec<_>>()))
            }
            Some(l) => lost.push((i, reference.difference(&l).cloned().collect::<Vec<_>>())),
            None => lost.push((i, vec!["(no Tracefile)".into()])),
        }
    }
    let misses = ringbuf_misses(&ctrace.db);
    containers.remove_all();

    let latencies: Vec<f64> = complete
        .iter()
        .zip(&finished)
        .filter_map(|(c, f)| {
            let (c, f) = ((*c)?, (*f)?);
            Some(match c.duration_since(f) {
                Ok(d) => d.as_secs_f64() * 1000.0,
                Err(e) => -e.duration().as_secs_f64() * 1000.0,
            })
        })
        .collect();
    let exited = finished.iter().filter(|f| f.is_some()).count();
    println!(
        "  {exited}/{n} exited; {}/{n} Tracefiles complete {:.1} s after the gate opened",
        complete.iter().filter(|c| c.is_some()).count(),
        all_done.as_secs_f64()
    );
    if !latencies.is_empty() {
        let (lo, hi) = common::min_max(&latencies);
        println!(
            "  container exit → complete Tracefile: median {:.0} ms, p95 {:.0} ms, max {hi:.0} ms \
             (min {lo:.0} ms; negative = complete before Docker recorded the exit)",
            common::median(&latencies),
            common::percentile(&latencies, 95.0)
        );
    }
    println!(
        "  after shutdown ({:.1} s): {} identical to the reference, {} with extra lines, {} \
         missing lines (loss); ring buffer misses {misses}",
        shutdown.as_secs_f64(),
        n - lost.len() - extra.len(),
        extra.len(),
        lost.len()
    );
    for (i, d) in extra.iter().take(3) {
        println!("    burst-{i} extra: {d:?}");
    }
    for (i, d) in lost.iter().take(5) {
        println!("    burst-{i} MISSING: {d:?}");
    }
    if lost.is_empty() && exited == n {
        println!("  zero loss: every Tracefile holds the whole reference set");
    } else {
        return Err(format!("{} of {n} Tracefiles lost sightings", lost.len()));
    }
    Ok(())
}

fn ringbuf_misses(db: &Path) -> String {
    rusqlite::Connection::open(db)
        .and_then(|c| {
            c.query_row(
                "SELECT value FROM meta WHERE key = 'ringbuf_misses'",
                [],
                |r| r.get(0),
            )
        })
        .unwrap_or_else(|_| "0".to_string())
}
