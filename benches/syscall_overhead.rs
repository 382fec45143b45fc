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

mod common;
#[path = "syscall_overhead/loop_container.rs"]
mod loop_container;
#[path = "syscall_overhead/paired.rs"]
mod paired;
#[path = "syscall_overhead/quiet.rs"]
mod quiet;

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

/// Whether the bpf_stats loops run (set once in `run`).
static WITH_STATS: AtomicBool = AtomicBool::new(false);

/// Owns `kernel.bpf_stats_enabled` for the bench: sets it to 0 for the timed loops (the
/// statistics' clock reads would be timed too) and puts the old value back on drop, so also
/// when the bench fails or panics.
struct BpfStatsSysctl {
    old: String,
}

impl BpfStatsSysctl {
    fn take() -> Result<BpfStatsSysctl, String> {
        let old = std::fs::read_to_string(BPF_STATS)
            .map_err(|e| format!("{BPF_STATS}: {e}"))?
            .trim()
            .to_string();
        set_bpf_stats(false)?;
        Ok(BpfStatsSysctl { old })
    }
}

impl Drop for BpfStatsSysctl {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(BPF_STATS, &self.old) {
            eprintln!(
                "{BENCH}: could not restore {BPF_STATS} to {}: {e}",
                self.old
            );
        }
    }
}

fn set_bpf_stats(on: bool) -> Result<(), String> {
    std::fs::write(BPF_STATS, if on { "1" } else { "0" }).map_err(|e| format!("{BPF_STATS}: {e}"))
}

/// The statistics on while this lives (off again on drop, also on errors).
struct StatsOn;

impl StatsOn {
    fn new() -> Result<StatsOn, String> {
        set_bpf_stats(true)?;
        Ok(StatsOn)
    }
}

impl Drop for StatsOn {
    fn drop(&mut self) {
        let _ = set_bpf_stats(false);
    }
}

/// The summed bpf_stats counters of some programs at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct ProgCounters {
    run_time_ns: u64,
    run_cnt: u64,
    /// How many of the programs asked for were found.
    found: usize,
    at: Option<std::time::Instant>,
}

impl ProgCounters {
    fn read(ids: &[u32]) -> ProgCounters {
        if ids.is_empty() {
            return ProgCounters::default();
        }
        ProgInfoIter::default()
            .filter(|p| ids.contains(&p.id))
            .fold(ProgCounters::default(), |acc, p| ProgCounters {
                run_time_ns: acc.run_time_ns + p.run_time_ns,
                run_cnt: acc.run_cnt + p.run_cnt,
                found: acc.found + 1,
                at: Some(std::time::Instant::now()),
            })
    }

    /// What the programs did between `before` and now.
    fn since(before: ProgCounters, ids: &[u32]) -> ProgWindow {
        let after = ProgCounters::read(ids);
        ProgWindow {
            run_time_ns: after.run_time_ns.saturating_sub(before.run_time_ns),
            run_cnt: after.run_cnt.saturating_sub(before.run_cnt),
            programs: after.found,
            secs: match (before.at, after.at) {
                (Some(b), Some(a)) => a.duration_since(b).as_secs_f64(),
                _ => 0.0,
            },
        }
    }
}

/// bpf_stats deltas over one measuring window.
#[derive(Debug, Clone, Copy, Default)]
struct ProgWindow {
    run_time_ns: u64,
    run_cnt: u64,
    /// The sys_enter programs counted (0: the variant has none).
    programs: usize,
    /// The window's length.
    secs: f64,
}

impl ProgWindow {
    /// Mean ns per program run (None: the window missed part of the loop's calls, so the
    /// loop does not dominate it, or nothing ran).
    fn mean(&self) -> Option<f64> {
        (self.run_cnt >= loop_calls()).then(|| self.run_time_ns as f64 / self.run_cnt as f64)
    }

    /// Ran, but fewer times than the loop calls: the window missed part of the loop.
    fn short(&self) -> bool {
        self.run_cnt > 0 && self.run_cnt < loop_calls()
    }
}

/// Iterations per loop run: at least one syscall each.
fn loop_calls() -> u64 {
    CHUNKS.parse::<u64>().unwrap_or(0) * Workload::get().iterations().parse::<u64>().unwrap_or(0)
}

/// The id of the program behind a link.
fn link_prog(link: &Link) -> Vec<u32> {
    LinkInfo::from_fd(link.as_fd())
        .map(|info| vec![info.prog_id])
        .unwrap_or_default()
}

/// ctrace's programs called `name` held by the daemon `pid`: the program ids in its fdinfo,
/// found by name. Another daemon's program of the same name is left out.
fn daemon_progs(pid: u32, name: &str) -> Vec<u32> {
    let mut held = Vec::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) {
        for entry in dir.filter_map(Result::ok) {
            let info = std::fs::read_to_string(entry.path()).unwrap_or_default();
            held.extend(info.lines().filter_map(|l| {
                l.strip_prefix("prog_id:")
                    .and_then(|v| v.trim().parse::<u32>().ok())
            }));
        }
    }
    ProgInfoIter::default()
        .filter(|p| held.contains(&p.id) && p.name.to_string_lossy().starts_with(name))
        .map(|p| p.id)
        .collect()
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

/// One run of a variant: ns per call in the container and on the host, and what else was
/// attached meanwhile.
struct Run {
    container_chunks: Vec<quiet::Chunk>,
    host_chunks: Vec<quiet::Chunk>,
    /// bpf_stats of the variant's own sys_enter program(s), over a second container loop and
    /// a second host loop run with the statistics on.
    prog_container: ProgWindow,
    prog_host: ProgWindow,
    /// bpf_stats of the variant's task-exit program over the container loop's window.
    task_exit: ProgWindow,
    /// Most sys_enter links seen while the loops ran (None: no bpftool to ask).
    links: Option<usize>,
    /// Other `ctrace trace` daemons alive meanwhile.
    foreign: Vec<u32>,
}

impl Run {
    /// `progs`: the variant's sys_enter program ids, whose bpf_stats are read.
    fn of(timed: Timed, host_loop: &Path, mine: Option<u32>, progs: &[u32]) -> Result<Run, String> {
        let host = run_host(host_loop);
        let prog_host = if WITH_STATS.load(Ordering::Relaxed) && !progs.is_empty() {
            let _on = StatsOn::new()?;
            let before = ProgCounters::read(progs);
            run_host(host_loop)?;
            ProgCounters::since(before, progs)
        } else {
            ProgWindow::default()
        };
        let links = timed.monitor.max();
        Ok(Run {
            container_chunks: timed.chunks,
            host_chunks: host?,
            prog_container: timed.prog,
            prog_host,
            task_exit: timed.task_exit,
            links,
            foreign: common::foreign_daemons(mine),
        })
    }
}

/// The container loop's result.
struct Timed {
    chunks: Vec<quiet::Chunk>,
    monitor: common::LinkMonitor,
    /// bpf_stats of the variant's programs over a second loop, from its start to its exit.
    prog: ProgWindow,
    /// The same for its task-exit program.
    task_exit: ProgWindow,
}

/// Runs a variant until nothing else was attached beside it (at most 3 tries; the last is
/// kept and flagged).
fn measure_clean(
    v: Variant,
    dir: &Path,
    host_loop: &Path,
    containers: &mut common::Containers,
) -> Result<(Run, bool), String> {
    let expected = match v {
        Variant::A | Variant::F => 0,
        _ => 1,
    };
    for attempt in 1..=3 {
        let run = measure(v, dir, host_loop, containers)?;
        let clean = run.links.is_none_or(|n| n <= expected)
            && (run.foreign.is_empty() || matches!(v, Variant::G | Variant::H | Variant::I));
        // Another daemon stays: rerunning would not help, the run is kept and flagged.
        if clean || attempt == 3 || !run.foreign.is_empty() {
            return Ok((run, clean));
        }
        println!(
            "  rerunning {v:?}: {} sys_enter program(s) attached (expected {expected})",
            run.links.unwrap_or(0)
        );
    }
    unreachable!("the last attempt returns")
}

/// Ns per call in a container and on the host, under one variant.
fn measure(
    v: Variant,
    dir: &Path,
    host_loop: &Path,
    containers: &mut common::Containers,
) -> Result<Run, String> {
    match v {
        Variant::A => Run::of(
            run_container(None, containers, &[], &[], |_| Ok(()))?,
            host_loop,
            None,
            &[],
        ),
        Variant::B => {
            let mut obj = MaybeUninit::uninit();
            let mut open = floor::FloorSkelBuilder::default()
                .open(&mut obj)
                .map_err(|e| e.to_string())?;
            open.progs.floor_raw_tp.set_autoload(false);
            let skel = open
                .load()
                .map_err(|e| format!("loading the floor program: {e}"))?;
            let link = skel
                .progs
                .floor_tp_btf
                .attach()
                .map_err(|e| e.to_string())?;
            let progs = link_prog(&link);
            Run::of(
                run_container(None, containers, &progs, &[], |_| Ok(()))?,
                host_loop,
                None,
                &progs,
            )
        }
        Variant::E => {
            let mut obj = MaybeUninit::uninit();
            let open = original::OriginalSkelBuilder::default()
                .open(&mut obj)
                .map_err(|e| e.to_string())?;
            let skel = open
                .load()
                .map_err(|e| format!("loading the original-design probe: {e}"))?;
            let link = skel
                .progs
                .original_sys_enter
                .attach()
                .map_err(|e| e.to_string())?;
            let progs = link_prog(&link);
            let tasks = &skel.maps.tasks;
            let c = run_container(None, containers, &progs, &[], |id| {
                // The original filled its task hash from cgroup_attach_task and fork events;
                // here the container's init (the loop itself) is entered by hand.
                let pid = container_pid(id)?;
                let mut value = [0u8; 65];
                value[..64].copy_from_slice(&id.as_bytes()[..64]);
                tasks
                    .update(&pid.to_ne_bytes(), &value, MapFlags::ANY)
                    .map_err(|e| format!("task hash: {e}"))
            })?;
            Run::of(c, host_loop, None, &progs)
        }
        Variant::C | Variant::D => {
            let mut ctrace = common::Ctrace::start(dir, &[])?;
            // A labelled sleeper keeps the syscall program attached (d: the loop is not it).
            let sleeper = common::docker(&[
                "run",
                "-d",
                "--network",
                "none",
                "--label",
                LABEL,
                SLEEPER_IMAGE,
                "sleep",
                "3600",
            ])?;
            containers.0.push(sleeper.clone());
            ctrace.wait_for(&sleeper[..12], Duration::from_secs(20))?;
            let label = (v == Variant::C).then_some(LABEL);
            let progs = daemon_progs(ctrace.pid(), CTRACE_PROG);
            let exit = daemon_progs(ctrace.pid(), CTRACE_EXIT_PROG);
            let run = Run::of(
                run_container(label, containers, &progs, &exit, |_| Ok(()))?,
                host_loop,
                Some(ctrace.pid()),
                &progs,
            );
            let _ = common::docker(&["rm", "-f", &sleeper]);
            ctrace.stop(Duration::from_secs(20))?;
            run
        }
        Variant::J => Err("j is timed in the chunk-interleaved section only".into()),
        Variant::G | Variant::H | Variant::I => {
            let kernel = load_kernel(v != Variant::I)?;
            // d': something else is tracked, so the program stays attached.
            let other = EmptyCgroup::create("ctrace-bench")?;
            kernel.track(&other.handle).map_err(|e| e.to_string())?;
            let link = kernel.attach_syscalls().map_err(|e| e.to_string())?;
            let progs = link_prog(link.sys_enter());
            let exit = link.task_exit().map(link_prog).unwrap_or_default();
            let run = run_container(None, containers, &progs, &exit, |id| {
                let cg = cgroup_of(container_pid(id)?)?;
                // The cgroup_mkdir program already tracks every new container cgroup.
                if v != Variant::H {
                    kernel.track(&cg).map_err(|e| e.to_string())
                } else {
                    kernel.untrack(cg.id, Some(&cg));
                    Ok(())
                }
            });
            run.and_then(|r| Run::of(r, host_loop, None, &progs))
        }
        Variant::F => {
            let mut ctrace = common::Ctrace::start(dir, &[])?;
            // Counted too: with nothing traced the program must not run at all.
            let progs = daemon_progs(ctrace.pid(), CTRACE_PROG);
            let exit = daemon_progs(ctrace.pid(), CTRACE_EXIT_PROG);
            let run = Run::of(
                run_container(None, containers, &progs, &exit, |_| Ok(()))?,
                host_loop,
                Some(ctrace.pid()),
                &progs,
            );
            ctrace.stop(Duration::from_secs(20))?;
            run
        }
    }
}

/// ctrace's kernel programs, loaded in-process as the daemon loads them (c′, d′, c″).
fn load_kernel(task_cache: bool) -> Result<ctrace::kernel::Kernel, String> {
    ctrace::kernel::Kernel::load(ctrace::kernel::KernelConfig {
        task_cache,
        ..Default::default()
    })
    .map_err(|e| format!("loading ctrace's kernel programs: {e}"))
}

/// The pid of a container's init (`container`: its id or name).
fn container_pid(container: &str) -> Result<u32, String> {
    common::docker(&["inspect", "-f", "{{.State.Pid}}", container])?
        .parse()
        .map_err(|e| format!("container pid: {e}"))
}

/// The default-hierarchy cgroup of `pid`, to track or untrack in-process.
fn cgroup_of(pid: u32) -> Result<ctrace::kernel::CgroupHandle, String> {
    let root = ctrace::docker::cgroup::cgroup2_mount().map_err(|e| e.to_string())?;
    let rel = ctrace::docker::cgroup::cgroup_of_pid(pid).map_err(|e| e.to_string())?;
    let path = root.join(rel.trim_start_matches('/'));
    ctrace::kernel::CgroupHandle::open(path.clone()).map_err(|e| format!("{}: {e}", path.display()))
}

/// A cgroup of the bench's own that nothing runs in (d′ tracks it), removed on drop, errors
/// included.
struct EmptyCgroup {
    handle: ctrace::kernel::CgroupHandle,
    path: std::path::PathBuf,
}

impl EmptyCgroup {
    /// `prefix`-PID under the cgroup2 mount.
    fn create(prefix: &str) -> Result<EmptyCgroup, String> {
        let root = ctrace::docker::cgroup::cgroup2_mount().map_err(|e| e.to_string())?;
        let path = root.join(format!("{prefix}-{}", std::process::id()));
        let _ = std::fs::create_dir(&path);
        let handle = ctrace::kernel::CgroupHandle::open(path.clone())
            .map_err(|e| format!("{}: {e}", path.display()));
        match handle {
            Ok(handle) => Ok(EmptyCgroup { handle, path }),
            Err(e) => {
                let _ = std::fs::remove_dir(&path);
                Err(e)
            }
        }
    }
}

impl Drop for EmptyCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Runs the loop in a container (timed, statistics off), then, unless the statistics are
/// skipped, a second one with them on for the bpf_stats of `progs` (the variant's sys_enter
/// programs). `started` runs for each container once it exists.
fn run_container(
    label: Option<&str>,
    containers: &mut common::Containers,
    progs: &[u32],
    exit: &[u32],
    started: impl Fn(&str) -> Result<(), String>,
) -> Result<Timed, String> {
    let (chunks, monitor) = container_loop(label, containers, &started, true, |wait| {
        // Sample attached sys_enter programs only once the loop measures.
        let monitor = common::LinkMonitor::start();
        wait().map(|()| monitor)
    })?;
    let (prog, task_exit) = if WITH_STATS.load(Ordering::Relaxed) && !progs.is_empty() {
        // From right after the start: a late `docker run` could otherwise miss the chunks.
        container_loop(label, containers, &started, false, |wait| {
            let _on = StatsOn::new()?;
            let before = (ProgCounters::read(progs), ProgCounters::read(exit));
            wait()?;
            Ok((
                ProgCounters::since(before.0, progs),
                ProgCounters::since(before.1, exit),
            ))
        })?
        .1
    } else {
        Default::default()
    };
    Ok(Timed {
        chunks,
        monitor,
        prog,
        task_exit,
    })
}

/// One loop container: `during` runs around `wait` (until the loop exits), after most of the
/// warm-up if `settle`, else as soon as the container runs.
fn container_loop<T>(
    label: Option<&str>,
    containers: &mut common::Containers,
    started: &impl Fn(&str) -> Result<(), String>,
    settle: bool,
    during: impl FnOnce(&dyn Fn() -> Result<(), String>) -> Result<T, String>,
) -> Result<(Vec<quiet::Chunk>, T), String> {
    let mut args = vec!["run", "-d", "--network", "none", "--cpuset-cpus", CPU];
    if let Some(l) = label {
        args.extend(["--label", l]);
    }
    let w = Workload::get();
    args.extend([
        IMAGE,
        "/getppid_loop",
        WARMUP_MS,
        CHUNKS,
        w.iterations(),
        w.arg(),
    ]);
    let id = common::docker(&args)?;
    containers.0.push(id.clone());
    started(&id)?;
    if settle {
        // Most of the warm-up: the loop's timed chunks start a little later.
        std::thread::sleep(Duration::from_millis(
            WARMUP_MS.parse::<u64>().unwrap_or(0) * 8 / 10,
        ));
    }
    let code = std::cell::RefCell::new(None);
    let during = during(&|| {
        *code.borrow_mut() = Some(common::docker(&["wait", &id])?);
        Ok(())
    });
    let code = code.into_inner();
    let out = common::docker(&["logs", &id]);
    let _ = common::docker(&["rm", "-f", &id]);
    containers.0.retain(|c| c != &id);
    let during = during?;
    let out = out?;
    if code.as_deref() != Some("0") {
        return Err(format!("loop container exited with {code:?}: {out}"));
    }
    Ok((quiet::parse(&out)?, during))
}

fn run_host(host_loop: &Path) -> Result<Vec<quiet::Chunk>, String> {
    let out = Command::new("taskset")
        .args(["-c", CPU])
        .arg(host_loop)
        .args([
            "0",
            CHUNKS,
            Workload::get().iterations(),
            Workload::get().arg(),
        ])
        .output()
        .map_err(|e| format!("running the host loop: {e}"))?;
    quiet::parse(&String::from_utf8_lossy(&out.stdout))
}

fn report(samples: &BTreeMap<Variant, Samples>) {
    println!(
        "\n{BENCH}: ns per {} (median over rounds; [min – max]; spread = (max−min)/median)",
        Workload::get().unit()
    );
    for where_ in ["container", "host"] {
        println!("  {where_}:");
        for (v, s) in samples {
            let x = if where_ == "container" {
                &s.container
            } else {
                &s.host
            };
            let (lo, hi) = common::min_max(x);
            let m = common::median(x);
            println!(
                "    {:<38} {m:7.1} ns  [{lo:6.1} – {hi:6.1}]  spread {:4.1}%{}",
                v.describe(),
                (hi - lo) / m * 100.0,
                if s.flagged > 0 {
                    format!("  ({} disturbed runs kept)", s.flagged)
                } else {
                    String::new()
                }
            );
        }
    }
    if Workload::get() == Workload::PingPong {
        println!(
            "  no ratios: a round trip's two context switches vary by a microsecond, which hides \
             the tens of ns a program adds; read the bpf_stats per run below"
        );
        report_bpf_stats(samples);
        return;
    }
    for host in [false, true] {
        print_ratios(
            if host {
                "host loop"
            } else {
                "in the container"
            },
            |v| {
                samples.get(&v).map(|s| {
                    let x = if host { &s.host } else { &s.container };
                    x.iter().copied().map(Some).collect()
                })
            },
        );
    }
    report_quiet(samples);
    report_bpf_stats(samples);
}

/// The kernel's per-program statistics beside the timings: mean ns per program run, the cost
/// above the empty program, and the timed ratios estimated from them.
/// The target ratios from per-round figures (`get`: one per round, None where a round has
/// none). Medians over the figures there are; per-round ratios over the rounds that have all
/// the figures involved.
fn print_ratios(title: &str, get: impl Fn(Variant) -> Option<Vec<Option<f64>>>) {
    let med = |x: &[Option<f64>]| {
        let v: Vec<f64> = x.iter().flatten().copied().collect();
        (!v.is_empty()).then(|| common::median(&v))
    };
    let (Some(a), Some(b)) = (get(Variant::A), get(Variant::B)) else {
        return;
    };
    let (Some(ma), Some(mb)) = (med(&a), med(&b)) else {
        return;
    };
    let per_round = |x: &[Option<f64>], f: &dyn Fn(f64, f64, f64) -> f64| {
        let r: Vec<f64> = x
            .iter()
            .zip(a.iter().zip(&b))
            .filter_map(|(x, (a, b))| Some(f((*x)?, (*a)?, (*b)?)))
            .collect();
        if r.is_empty() {
            "  n/a".to_string()
        } else {
            format!("{:5.2}", common::median(&r))
        }
    };
    println!("  ratios, {title} (floor b − a = {:.1} ns):", mb - ma);
    for (v, target) in [
        (Variant::C, "target ≤ 1.2"),
        (Variant::D, "target ≤ 1.2"),
        (Variant::G, "c' target ≤ 1.2"),
        (Variant::H, "d' target ≤ 1.2"),
        (Variant::I, "c' without the placement cache, for comparison"),
        (Variant::E, "c should be ≤ 0.5 × this"),
    ] {
        let Some(x) = get(v) else { continue };
        let Some(mx) = med(&x) else { continue };
        println!(
            "    ({v:?} − a)/(b − a) = {:5.2} from medians, {} median per round   ({target})",
            (mx - ma) / (mb - ma),
            per_round(&x, &|x, a, b| (x - a) / (b - a))
        );
    }
    for (v, name) in [(Variant::C, "c"), (Variant::G, "c'")] {
        if let (Some(mc), Some(me)) = (
            get(v).and_then(|c| med(&c)),
            get(Variant::E).and_then(|e| med(&e)),
        ) {
            println!(
                "    ({name} − a)/(e − a) = {:5.2}   (target ≤ 0.5)",
                (mc - ma) / (me - ma)
            );
        }
    }
    if let Some(f) = get(Variant::F) {
        if let Some(mf) = med(&f) {
            println!(
                "    f / a = {:5.3} from medians, {} median per round   (target ≤ 1.02)",
                mf / ma,
                per_round(&f, &|f, a, _| f / a)
            );
        }
    }
}

/// The container loop's floor b − a from quiet chunks (medians over rounds), if a and b have
/// quiet figures.
fn quiet_floor(samples: &BTreeMap<Variant, Samples>) -> Option<f64> {
    let all = samples
        .values()
        .flat_map(|s| s.container_chunks.iter().chain(&s.host_chunks));
    let fastest = quiet::fastest_spin(all)?;
    let quiet_median = |v: Variant| {
        let (m, _, _) = quiet::quiet_medians(&samples.get(&v)?.container_chunks, fastest);
        let m: Vec<f64> = m.into_iter().flatten().collect();
        (!m.is_empty()).then(|| common::median(&m))
    };
    Some(quiet_median(Variant::B)? - quiet_median(Variant::A)?)
}

/// The ratios again from quiet chunks only (quiet.rs): chunks whose userspace spin ran within
/// a few percent of the fastest seen, so that a busy neighbour cannot decide a ratio.
fn report_quiet(samples: &BTreeMap<Variant, Samples>) {
    let all = samples
        .values()
        .flat_map(|s| s.container_chunks.iter().chain(&s.host_chunks));
    let Some(fastest) = quiet::fastest_spin(all) else {
        return;
    };
    for host in [false, true] {
        let (mut quiet_chunks, mut chunks) = (0, 0);
        let medians: BTreeMap<Variant, Vec<Option<f64>>> = samples
            .iter()
            .map(|(v, s)| {
                let runs = if host {
                    &s.host_chunks
                } else {
                    &s.container_chunks
                };
                let (m, q, n) = quiet::quiet_medians(runs, fastest);
                quiet_chunks += q;
                chunks += n;
                (*v, m)
            })
            .collect();
        println!(
            "  quiet chunks only, {}: {quiet_chunks} of {chunks} chunks had their spin within \
             {:.0}% of the fastest ({fastest:.3} ns per step); a run needs {} of them",
            if host {
                "host loop"
            } else {
                "in the container"
            },
            (quiet::QUIET_MARGIN - 1.0) * 100.0,
            quiet::MIN_QUIET
        );
        print_ratios(
            if host {
                "quiet chunks, host loop"
            } else {
                "quiet chunks, in the container"
            },
            |v| medians.get(&v).cloned(),
        );
    }
}

fn report_bpf_stats(samples: &BTreeMap<Variant, Samples>) {
    // Per variant and window: each round's mean ns per run (None: nothing ran, or too little).
    let rounds = |v: Variant, host: bool| -> Vec<Option<f64>> {
        samples
            .get(&v)
            .map(|s| {
                if host {
                    &s.prog_host
                } else {
                    &s.prog_container
                }
            })
            .map(|w| w.iter().map(ProgWindow::mean).collect())
            .unwrap_or_default()
    };
    let means =
        |v: Variant, host: bool| -> Vec<f64> { rounds(v, host).into_iter().flatten().collect() };
    if means(Variant::B, false).is_empty() {
        println!("\n{BENCH}: no bpf_stats (kernel.bpf_stats_enabled off, or nothing ran)");
        return;
    }
    println!(
        "\n{BENCH}: bpf_stats (second loops, kernel.bpf_stats_enabled = 1): mean ns per run of the \
         variant's own sys_enter program(s), program body only (no trampoline/dispatch); median \
         over rounds [min – max]; runs = median runs per window (every process on the host, not \
         only the loop)"
    );
    for host in [false, true] {
        println!(
            "  {}:",
            if host {
                "host loop (untraced in every variant)"
            } else {
                "container loop (start → exit)"
            }
        );
        for (v, s) in samples {
            let windows = if host {
                &s.prog_host
            } else {
                &s.prog_container
            };
            let programs = windows.iter().map(|w| w.programs).max().unwrap_or(0);
            if programs == 0 {
                continue;
            }
            let runs: Vec<f64> = windows.iter().map(|w| w.run_cnt as f64).collect();
            let m = means(*v, host);
            let short = windows.iter().filter(|w| w.short()).count();
            let short = if short > 0 {
                format!("  ({short} windows left out: fewer runs than the loop's calls)")
            } else {
                String::new()
            };
            if m.is_empty() {
                let ran: u64 = windows.iter().map(|w| w.run_cnt).sum();
                println!(
                    "    {:<38}   ({ran} runs of {programs} program(s){}){short}",
                    v.describe(),
                    if ran == 0 { ": detached" } else { "" }
                );
                continue;
            }
            let (lo, hi) = common::min_max(&m);
            let med = common::median(&m);
            println!(
                "    {:<38} {med:6.1} ns  [{lo:5.1} – {hi:5.1}]  spread {:4.1}%  runs {:.2}M{}{short}",
                v.describe(),
                (hi - lo) / med * 100.0,
                common::median(&runs) / 1e6,
                if programs > 1 {
                    format!("  ({programs} programs summed)")
                } else {
                    String::new()
                }
            );
        }
    }

    report_task_exit(samples);

    // Derived figures, container window, against the timed floor b − a.
    // The quiet floor where there is one: a busy neighbour inflates b − a, and with it
    // every estimate's denominator.
    let timed = |v: Variant| samples.get(&v).map(|s| common::median(&s.container));
    let (floor, floor_kind) = match (quiet_floor(samples), timed(Variant::A), timed(Variant::B)) {
        (Some(q), _, _) => (q, "quiet chunks"),
        (None, Some(a), Some(b)) => (b - a, "all chunks"),
        _ => return,
    };
    let pb = rounds(Variant::B, false);
    let pb_med = common::median(&means(Variant::B, false));
    // prog_x − prog_b from the medians, and the median of the per-round differences.
    let above = |v: Variant| -> Option<(f64, f64)> {
        let x = means(v, false);
        if x.is_empty() {
            return None;
        }
        let per_round: Vec<f64> = rounds(v, false)
            .iter()
            .zip(&pb)
            .filter_map(|(x, b)| Some((*x)? - (*b)?))
            .collect();
        Some((common::median(&x) - pb_med, common::median(&per_round)))
    };
    // Ping-pong: the timed floor is noise, so only the differences are shown.
    let estimates = Workload::get() == Workload::Getppid;
    println!(
        "  above the empty program, container window (prog_x − prog_b; prog_b = {pb_med:.1} ns){}",
        if estimates {
            format!(
                ", and 1 + (prog_x − prog_b)/(b − a) with the timed floor b − a = {floor:.1} ns \
                 ({floor_kind}):"
            )
        } else {
            ":".to_string()
        }
    );
    for (v, name, target) in [
        (Variant::C, "c ", "target ≤ 1.2"),
        (Variant::D, "d ", "target ≤ 1.2"),
        (Variant::G, "c'", "target ≤ 1.2"),
        (
            Variant::H,
            "d'",
            "target ≤ 1.2; the loop runs the untraced path",
        ),
        (
            Variant::I,
            "c\"",
            "c' without the placement cache, for comparison",
        ),
        (Variant::E, "e ", "original design"),
    ] {
        let Some((med, per_round)) = above(v) else {
            continue;
        };
        print!("    prog_{name} − prog_b = {med:6.1} ns ({per_round:6.1} median per round)");
        if estimates {
            print!(
                "   est. ({name} − a)/(b − a) = {:5.2}   ({target})",
                1.0 + med / floor
            );
        }
        println!();
    }
    let de = above(Variant::E).filter(|_| estimates).map(|(de, _)| de);
    for (v, name) in [(Variant::C, "c"), (Variant::G, "c'")] {
        let (Some(de), Some((dx, _))) = (de, above(v)) else {
            continue;
        };
        println!(
            "    (prog_{name} − prog_b)/(prog_e − prog_b) = {:5.2} (bodies only)   \
             est. ({name} − a)/(e − a) = (b − a + prog_{name} − prog_b)/(b − a + prog_e − prog_b) \
             = {:5.2}   (target ≤ 0.5)",
            dx / de,
            (floor + dx) / (floor + de)
        );
    }
    if let Some(f) = samples.get(&Variant::F) {
        let runs: u64 = f.prog_container.iter().map(|w| w.run_cnt).sum();
        let programs = f
            .prog_container
            .iter()
            .map(|w| w.programs)
            .max()
            .unwrap_or(0);
        println!(
            "    f: the daemon's sys_enter program ({programs} found) ran {runs} times during \
             the loops (0: detached)"
        );
    }
}

/// What the placement cache costs elsewhere: ctrace's task-exit program runs at every task
/// exit on the host while the syscall program is attached.
fn report_task_exit(samples: &BTreeMap<Variant, Samples>) {
    let with: Vec<(&Variant, &Samples)> = samples
        .iter()
        .filter(|(_, s)| s.task_exit.iter().any(|w| w.programs > 0))
        .collect();
    if with.is_empty() {
        return;
    }
    println!(
        "  task-exit program ({CTRACE_EXIT_PROG}, keeps the placement cache correct), over the \
         container loop's window: mean ns per run (body only), runs per second on the host, \
         and the CPU share that is (bodies only; each run also pays the trampoline, about b − a)"
    );
    for (v, s) in with {
        let runs: Vec<&ProgWindow> = s.task_exit.iter().filter(|w| w.run_cnt > 0).collect();
        if runs.is_empty() {
            println!("    {:<38}   (did not run)", v.describe());
            continue;
        }
        let ns: Vec<f64> = runs
            .iter()
            .map(|w| w.run_time_ns as f64 / w.run_cnt as f64)
            .collect();
        let per_sec: Vec<f64> = runs
            .iter()
            .filter(|w| w.secs > 0.0)
            .map(|w| w.run_cnt as f64 / w.secs)
            .collect();
        let (ns, per_sec) = (common::median(&ns), common::median(&per_sec));
        println!(
            "    {:<38} {ns:6.1} ns per run, {per_sec:8.0} runs/s, {:.4}% of one CPU",
            v.describe(),
            ns * per_sec / 1e9 * 100.0
        );
    }
}
