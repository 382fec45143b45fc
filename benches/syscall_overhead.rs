//! Hot-path cost: ns per `getppid` in a tight loop inside a container, side by side for
//!
//!   a  no BPF program
//!   b  an empty tp_btf/sys_enter program (the floor any syscall tracer pays)
//!   c  the real `ctrace trace` daemon, the container traced
//!   d  the daemon, the container not traced (another container is, so the program is attached)
//!   e  the original design as a probe (per-task hash, then a hash counter keyed by the 65-byte
//!      container id string and the syscall number), the container in its task hash
//!   f  the daemon with no container traced (the syscall program must be detached)
//!   c′ d′  c and d with ctrace's kernel object driven in-process (no label, no daemon)
//!   c″ c′ with the per-CPU placement cache off (bpf/task_cache.h): ctrace's other syscall
//!      program, the helper path on every call (what kernels without the cache run)
//!   j  (chunk-interleaved only) c′ with the pauses that c's daemon start and stop put around
//!      its chunk: a control for how much of c's spread the method makes
//!
//! For the daemon and c′/d′ it also reports the task-exit program the cache needs: runs per
//! second and ns per run.
//!
//! Variants are interleaved round by round (rotating order). Each run prints the median of
//! its chunks; the summary gives, per variant, the median over rounds and the spread, then the
//! ratios (x − a)/(b − a) for c, d, e and f/a — both from the medians and as the median of the
//! per-round ratios (each round's variants ran side by side). The same loop also runs on the
//! host in every variant (an untraced process: what every other process on the machine pays).
//!
//! Side by side, in the same runs, the kernel's own per-program statistics. The statistics
//! add two clock reads to every program run (on this VM they more than double b − a), so the
//! timed loops run with `kernel.bpf_stats_enabled` = 0, and each variant run then repeats the
//! container loop and the host loop with it set to 1, reading `run_time_ns` and `run_cnt` of the
//! variant's own sys_enter program(s) before and after: mean ns per program run. That is the
//! program body only: the trampoline and dispatch cost common to every variant is not in it
//! (the timed b − a has it). The summary derives the cost above the empty program
//! (prog_x − prog_b), (prog_c − prog_b)/(prog_e − prog_b) and, with the timed floor,
//! 1 + (prog_x − prog_b)/(b − a), a less noisy estimate of (x − a)/(b − a). The sysctl's old
//! value is restored at the end, also on errors. `CTRACE_BENCH_BPF_STATS=0` skips the
//! statistics (and the repeated loops) and leaves the sysctl alone.
//!
//! Quiet chunks (syscall_overhead/quiet.rs): on a shared machine a busy neighbour slows the
//! loop's CPU by about 20% for seconds at a time. The loop also times a fixed userspace spin
//! after every chunk; the ratios are printed again from the chunks whose spin ran within 5% of
//! the fastest, and the bpf_stats estimates use that quiet floor when there is one.
//!
//! Chunk-interleaved (syscall_overhead/paired.rs), after the rounds: c and d (the daemon,
//! started for each chunk), c′, d′, c″, j and e again, each chunk amid two of a and two of b
//! in the same loop container (`a b x b a`), so that the chunks of a ratio are under a second
//! apart instead of a minute; `CTRACE_BENCH_PAIRED_ROUNDS` (default 60, 0 skips it).
//!
//! Needs root and dockerd; `CTRACE_BENCH_ROUNDS` (default 3; 0: only the chunk-interleaved
//! section) sets the rounds, and
//! `CTRACE_BENCH_VARIANTS` (e.g. `cg`) runs fewer variants (a and b always) for more rounds.
//! `CTRACE_BENCH_LOOP=pingpong` times pipe round trips between two processes on one CPU
//! instead: the placement cache's worst case, where every other syscall misses its entry.

#[path = "syscall_overhead/bpf_stats.rs"]
mod bpf_stats;
mod common;
#[path = "syscall_overhead/loop_container.rs"]
mod loop_container;
#[path = "syscall_overhead/loops.rs"]
mod loops;
#[path = "syscall_overhead/measure.rs"]
mod measure;
#[path = "syscall_overhead/paired.rs"]
mod paired;
#[path = "syscall_overhead/quiet.rs"]
mod quiet;
#[path = "syscall_overhead/report.rs"]
mod report;
#[path = "syscall_overhead/report_bpf_stats.rs"]
mod report_bpf_stats;

use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::os::fd::AsFd;

use libbpf_rs::query::{LinkInfo, ProgInfoIter};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags};

use bpf_stats::{
    daemon_progs, link_prog, BpfStatsSysctl, ProgCounters, ProgWindow, StatsOn, WITH_STATS,
};
use loops::{cgroup_of, container_pid, load_kernel, run_container, run_host, EmptyCgroup};
use measure::{measure_clean, Timed};
use report::{quiet_floor, report};
use report_bpf_stats::report_bpf_stats;

#[allow(clippy::all, dead_code, non_camel_case_types, unused_imports)]
mod floor {
    include!(concat!(env!("OUT_DIR"), "/bench_floor.skel.rs"));
}
#[allow(clippy::all, dead_code, non_camel_case_types, unused_imports)]
mod original {
    include!(concat!(env!("OUT_DIR"), "/bench_original.skel.rs"));
}

const BENCH: &str = "syscall_overhead";
const IMAGE: &str = "ctrace-bench/getppid-loop";
const SLEEPER_IMAGE: &str = "ctrace-test/busybox";
const LABEL: &str = "ctrace.tracefile=bench-overhead";
/// The loop sleeps this long first: the daemon drops an unlabelled container's cgroup (and
/// detaches the syscall program when nothing is left) within it.
const WARMUP_MS: &str = "700";
const CHUNKS: &str = "25";

/// What the loop times: `CTRACE_BENCH_LOOP=pingpong` swaps the getppid loop for pipe round
/// trips with a child on the same CPU (two tasks taking turns: the placement cache's worst
/// case, every other syscall a miss).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Getppid,
    PingPong,
}

impl Workload {
    fn get() -> Workload {
        match std::env::var("CTRACE_BENCH_LOOP").as_deref() {
            Ok("pingpong") => Workload::PingPong,
            _ => Workload::Getppid,
        }
    }

    /// The loop program's mode argument.
    fn arg(self) -> &'static str {
        match self {
            Workload::Getppid => "getppid",
            Workload::PingPong => "pingpong",
        }
    }

    fn iterations(self) -> &'static str {
        match self {
            Workload::Getppid => "100000",
            Workload::PingPong => "5000",
        }
    }

    /// What one iteration is, for the output.
    fn unit(self) -> &'static str {
        match self {
            Workload::Getppid => "getppid",
            Workload::PingPong => "round trip (4 syscalls, 2 switches)",
        }
    }
}
/// Container and host loop pinned to one CPU: fewer migrations, less noise on 2 cores.
const CPU: &str = "1";
/// How long to wait for other ctrace daemons on this machine to go away before starting.
const FOREIGN_WAIT: Duration = Duration::from_secs(20);
/// The sysctl that makes the kernel count run time and runs per BPF program.
const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";
/// ctrace's syscall program as the kernel names it (`ctrace_sys_enter`, cut to 15 characters).
const CTRACE_PROG: &str = "ctrace_sys_ent";
/// ctrace's task-exit program, which keeps the placement cache correct (bpf/task_cache.h).
const CTRACE_EXIT_PROG: &str = "ctrace_exited";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    A,
    B,
    C,
    D,
    E,
    F,
    /// c driven in-process: ctrace's kernel programs (`ctrace::kernel::Kernel`) without the
    /// daemon, so no Docker label is involved (another daemon on the machine stays out).
    G,
    /// d driven in-process likewise: another (empty) cgroup tracked.
    H,
    /// c' without the per-CPU placement cache (the design before it): every traced syscall
    /// finds its task with a helper call.
    I,
    /// c′ with the pauses a daemon's start and stop put around c's chunk (chunk-interleaved
    /// only): how much of c's spread is the method's.
    J,
}

const ALL: [Variant; 9] = [
    Variant::A,
    Variant::B,
    Variant::C,
    Variant::D,
    Variant::E,
    Variant::F,
    Variant::G,
    Variant::H,
    Variant::I,
];

impl Variant {
    fn describe(self) -> &'static str {
        match self {
            Variant::A => "a  no BPF",
            Variant::B => "b  empty tp_btf/sys_enter (floor)",
            Variant::C => "c  ctrace, container traced",
            Variant::D => "d  ctrace, container not traced",
            Variant::E => "e  original design probe",
            Variant::F => "f  ctrace, nothing traced",
            Variant::G => "c' ctrace kernel in-process, traced",
            Variant::H => "d' ctrace kernel in-process, not traced",
            Variant::I => "c\" c' without the placement cache",
            Variant::J => "c' with the daemon's pauses",
        }
    }
}

#[derive(Default)]
struct Samples {
    container: Vec<f64>,
    host: Vec<f64>,
    /// Every run's chunks, for the quiet figures (quiet.rs).
    container_chunks: Vec<Vec<quiet::Chunk>>,
    host_chunks: Vec<Vec<quiet::Chunk>>,
    /// bpf_stats over the container loop's window and over the host loop, one per round.
    prog_container: Vec<ProgWindow>,
    prog_host: Vec<ProgWindow>,
    /// bpf_stats of the variant's task-exit program over the container loop's window.
    task_exit: Vec<ProgWindow>,
    /// Runs kept although something else was attached (after 3 tries).
    flagged: usize,
}

fn main() {
    common::run_bench(BENCH, true, run);
}

fn run() -> Result<(), String> {
    let rounds = common::env_usize("CTRACE_BENCH_ROUNDS", 3);
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let source = common::manifest_dir().join("benches/loop/getppid_loop.c");
    common::import_static_image(&source, "getppid_loop", IMAGE, work.path())?;
    let host_loop = work.path().join("getppid_loop");
    let mut containers = common::Containers::default();
    // Dropped at the end of run(), error or not: the old value comes back.
    let _sysctl = if std::env::var("CTRACE_BENCH_BPF_STATS").as_deref() == Ok("0") {
        println!(
            "{BENCH}: CTRACE_BENCH_BPF_STATS=0: no bpf_stats, kernel.bpf_stats_enabled untouched"
        );
        None
    } else {
        let sysctl = BpfStatsSysctl::take()?;
        WITH_STATS.store(true, Ordering::Relaxed);
        println!(
            "{BENCH}: kernel.bpf_stats_enabled was {}; 0 for the timed loops, 1 for a second \
             container and host loop per variant run (restored at the end)",
            sysctl.old
        );
        Some(sysctl)
    };

    // Another ctrace daemon attaches its own syscall program whenever a container starts (and
    // traces our labelled ones): its cost would be billed to the variants.
    let waited = std::time::Instant::now();
    while !common::foreign_daemons(None).is_empty() && waited.elapsed() < FOREIGN_WAIT {
        std::thread::sleep(Duration::from_secs(1));
    }
    let foreign = common::foreign_daemons(None);
    if !foreign.is_empty() {
        println!(
            "{BENCH}: WARNING: other `ctrace trace` daemons are running (pids {foreign:?}); \
             they attach their syscall program for our containers, so runs are flagged *"
        );
    }
    println!(
        "{BENCH}: {rounds} rounds × {} variants; each run = median of {CHUNKS} chunks of \
         {} × {}, pinned to CPU {CPU}",
        selected_variants()?.len(),
        Workload::get().iterations(),
        Workload::get().unit()
    );
    let mut samples: BTreeMap<Variant, Samples> = BTreeMap::new();
    let variants = selected_variants()?;
    for round in 0..rounds {
        let mut order = variants.clone();
        order.rotate_left(round % variants.len());
        if round % 2 == 1 {
            order.reverse();
        }
        let mut line = format!("round {}:", round + 1);
        for v in order {
            let dir = work.path().join(format!("r{round}-{v:?}"));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let (run, clean) = measure_clean(v, &dir, &host_loop, &mut containers)?;
            let flag = if clean {
                String::new()
            } else {
                format!("*{}", run.links.unwrap_or(0))
            };
            let prog = run
                .prog_container
                .mean()
                .map(|m| format!("[{m:.1}]"))
                .unwrap_or_default();
            line.push_str(&format!(
                " {v:?}={:.1}/{:.1}{prog}{flag}",
                quiet::median_ns(&run.container_chunks),
                quiet::median_ns(&run.host_chunks)
            ));
            let s = samples.entry(v).or_default();
            s.container.push(quiet::median_ns(&run.container_chunks));
            s.host.push(quiet::median_ns(&run.host_chunks));
            s.container_chunks.push(run.container_chunks);
            s.host_chunks.push(run.host_chunks);
            s.prog_container.push(run.prog_container);
            s.prog_host.push(run.prog_host);
            s.task_exit.push(run.task_exit);
            s.flagged += usize::from(!clean);
        }
        println!(
            "{line}   (container/host ns per call; [bpf_stats ns per program run, second \
             container loop]; *N = N sys_enter programs were attached)"
        );
        common::flush();
    }
    containers.remove_all();
    if rounds > 0 {
        report(&samples);
    }
    let paired_rounds = common::env_usize("CTRACE_BENCH_PAIRED_ROUNDS", 60);
    let paired = if paired_rounds > 0 && Workload::get() == Workload::Getppid {
        paired::run(
            &work.path().join("paired"),
            paired_rounds,
            Workload::Getppid.iterations(),
        )
    } else {
        Ok(())
    };
    let _ = common::docker(&["rmi", IMAGE]);
    paired
}

/// `CTRACE_BENCH_VARIANTS` (letters, e.g. `abcg`; g, h, i are c′, d′, c″): fewer variants
/// for more rounds of a comparison. a and b are always run (every ratio needs them).
fn selected_variants() -> Result<Vec<Variant>, String> {
    let Ok(letters) = std::env::var("CTRACE_BENCH_VARIANTS") else {
        return Ok(ALL.to_vec());
    };
    let mut chosen = vec![Variant::A, Variant::B];
    for c in letters.chars().filter(|c| c.is_ascii_alphabetic()) {
        let v = ALL
            .iter()
            .copied()
            .find(|v| format!("{v:?}").eq_ignore_ascii_case(&c.to_string()))
            .ok_or_else(|| format!("CTRACE_BENCH_VARIANTS: no variant `{c}` (a to i)"))?;
        if !chosen.contains(&v) {
            chosen.push(v);
        }
    }
    Ok(chosen)
}
