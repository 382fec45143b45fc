//! Chunk-interleaved variants: two loop containers run for the whole section, and the bench
//! attaches one variant's program for one chunk at a time (about 20 ms). The machine's slow
//! phases last seconds, longer than a round of whole-container runs takes between two
//! variants. Here every chunk x of a compared variant sits amid two chunks of a and two of b
//! in the same container, in mirrored order (a b x b a, or b a x a b), so that each pair's
//! mean is timed at x up to the drift's curvature: a triple (x, mean a, mean b) whose ratio
//! (x − a)/(b − a) a slow phase rarely splits. The figure is the median over a variant's
//! triples.
//!
//! Compared:
//! - c: the real `ctrace trace` daemon, tracing the labelled loop container. It is started
//!   for the chunk, which runs once its syscall program is attached, and stopped after it.
//! - d: the daemon again, its program attached for the labelled loop, while the chunk runs in
//!   the unlabelled one (the untraced path).
//! - c′, d′ and c″: ctrace's kernel object driven in-process, in the unlabelled loop (each
//!   loaded once; only the sys_enter links come and go).
//! - j: c′ again, with the pauses that c's daemon start and stop put around its chunk: the
//!   same program as c′ by c's method, to tell the method's spread from the daemon's.
//! - e: the original design.
//!
//! Before every chunk the bench counts the sys_enter links attached; a triple with any but its
//! variant's own is dropped and counted.

use std::mem::MaybeUninit;
use std::path::Path;
use std::time::{Duration, Instant};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags};

use super::loop_container::LoopContainer;
use super::{common, floor, original, Variant, LABEL};

/// How long the daemon's start and stop are left to settle before a chunk: a margin. Its
/// start-up work took 150 ms of CPU, all within 0.3 s of its start, and mostly before its
/// link appears. In six starts, 60 chunks timed back to back from 20 ms after the link
/// appeared showed no transient beyond the machine's own switches between a fast and a slow
/// mode. Every second of settling keeps a daemon chunk that much further from its a and b,
/// across more of those switches.
const SETTLE: Duration = Duration::from_millis(100);

/// Where the daemon runs: not `CPU`, the loops' CPU.
const OTHER_CPU: usize = 0;

/// j: the pauses around c's chunk, before it (the daemon's start, about 0.2 s, the untimed
/// chunk and the settle) and after it (its stop, about 0.14 s, and the settle).
const PAUSE_BEFORE: Duration = Duration::from_millis(320);
const PAUSE_AFTER: Duration = Duration::from_millis(240);

/// Each timed beside a and b.
const COMPARED: [Variant; 7] = [
    Variant::C,
    Variant::D,
    Variant::G,
    Variant::J,
    Variant::H,
    Variant::I,
    Variant::E,
];

/// What a variant has attached for its chunk; dropping it detaches (`done` stops a daemon).
#[allow(dead_code)]
enum Attached {
    Nothing,
    Link(libbpf_rs::Link),
    Ctrace(ctrace::kernel::SyscallLinks),
    Daemon(common::Ctrace),
}

impl Attached {
    fn done(self) -> Result<(), String> {
        if let Attached::Daemon(mut daemon) = self {
            daemon.stop(Duration::from_secs(20))?;
            // The kernel frees its programs and maps after it exits (deferred work).
            std::thread::sleep(SETTLE);
        }
        Ok(())
    }
}

/// The daemon, once it traces the loop container (`id`) with its syscall program attached.
fn start_daemon(dir: &Path, id: &str) -> Result<common::Ctrace, String> {
    // On the other CPU: a daemon that traces for long uses 0.2% of one, but its start-up work
    // (and the first sightings') would otherwise land on the loop's CPU in the timed chunk.
    let mut daemon = common::Ctrace::start_on(dir, &[], Some(OTHER_CPU))?;
    daemon.wait_for(&id[..12], Duration::from_secs(20))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while common::sys_enter_links().is_some_and(|n| n == 0) {
        if Instant::now() > deadline {
            return Err("the daemon traces the loop container but attached nothing".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(daemon)
}

/// A daemon probes each seccomp setting it meets once (the errno probe: a container of its
/// own, 0.2–0.9 s) and keeps the answer in its store. The daemons of c and d live for one
/// chunk each, too short for a probe to finish: every start would run one beside the timed
/// loop. One daemon on the same store first, until the loops' setting is measured, makes
/// each later start what a daemon is in the steady state.
fn measure_seccomp_setting(dir: &Path, id: &str) -> Result<(), String> {
    let mut daemon = start_daemon(dir, id)?;
    let measured = || -> bool {
        rusqlite::Connection::open(&daemon.db)
            .and_then(|c| c.query_row("SELECT count(*) FROM refusals", [], |r| r.get::<_, i64>(0)))
            .is_ok_and(|n| n > 0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !measured() {
        if Instant::now() > deadline {
            return Err("the daemon did not measure the loops' seccomp setting in 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.stop(Duration::from_secs(30))?;
    Ok(())
}

pub fn run(dir: &Path, rounds: usize, iterations: &str) -> Result<(), String> {
    // Two loops: the daemon traces the labelled one (c), so its program stays attached while
    // the plain one runs the untraced path (d); every other variant runs the plain one.
    let name = format!("ctrace-bench-paired-{}", std::process::id());
    let mut labelled = LoopContainer::start(&format!("{name}-traced"), Some(LABEL), iterations)?;
    let mut plain = LoopContainer::start(&format!("{name}-plain"), None, iterations)?;
    labelled.chunk()?; // a container is up once it answers
    plain.chunk()?;
    let labelled_id = labelled.inspect("{{.Id}}")?;
    let pid = super::container_pid(plain.name())?;
    let id = plain.inspect("{{.Id}}")?;

    let mut floor_obj = MaybeUninit::uninit();
    let mut floor_open = floor::FloorSkelBuilder::default()
        .open(&mut floor_obj)
        .map_err(|e| e.to_string())?;
    floor_open.progs.floor_raw_tp.set_autoload(false);
    let floor = floor_open.load().map_err(|e| format!("floor: {e}"))?;

    let mut original_obj = MaybeUninit::uninit();
    let original = original::OriginalSkelBuilder::default()
        .open(&mut original_obj)
        .map_err(|e| e.to_string())?
        .load()
        .map_err(|e| format!("original-design probe: {e}"))?;
    let mut value = [0u8; 65];
    value[..64].copy_from_slice(&id.as_bytes()[..64]);
    original
        .maps
        .tasks
        .update(&pid.to_ne_bytes(), &value, MapFlags::ANY)
        .map_err(|e| format!("task hash: {e}"))?;

    measure_seccomp_setting(dir, &labelled_id)?;
    let loop_cg = super::cgroup_of(pid)?;
    let other = super::EmptyCgroup::create("ctrace-bench-paired")?;
    let load = super::load_kernel;
    let (traced, untraced, uncached) = (load(true)?, load(true)?, load(false)?);
    for k in [&traced, &uncached] {
        k.track(&loop_cg).map_err(|e| e.to_string())?;
    }
    untraced.track(&other.handle).map_err(|e| e.to_string())?;
    untraced.untrack(loop_cg.id, Some(&loop_cg));

    let attach = |v: Variant| -> Result<Attached, String> {
        let err = |e: &dyn std::fmt::Display| format!("attaching {v:?}: {e}");
        Ok(match v {
            Variant::A => Attached::Nothing,
            Variant::C | Variant::D => Attached::Daemon(start_daemon(dir, &labelled_id)?),
            Variant::B => Attached::Link(floor.progs.floor_tp_btf.attach().map_err(|e| err(&e))?),
            Variant::E => Attached::Link(
                original
                    .progs
                    .original_sys_enter
                    .attach()
                    .map_err(|e| err(&e))?,
            ),
            Variant::G | Variant::J => {
                Attached::Ctrace(traced.attach_syscalls().map_err(|e| err(&e))?)
            }
            Variant::H => Attached::Ctrace(untraced.attach_syscalls().map_err(|e| err(&e))?),
            Variant::I => Attached::Ctrace(uncached.attach_syscalls().map_err(|e| err(&e))?),
            _ => return Err(format!("{v:?} is not chunk-interleaved")),
        })
    };

    // Warm every variant once (first sightings, caches), untimed.
    for v in [Variant::A, Variant::B].iter().chain(&COMPARED) {
        let on = attach(*v)?;
        labelled.chunk()?;
        plain.chunk()?;
        on.done()?;
    }
    // One timed chunk in the labelled loop or the plain one, or None when another sys_enter
    // link was attached meanwhile.
    let (mut starts, mut stops) = (Vec::new(), Vec::new());
    let mut timed = |v: Variant, in_labelled: bool| -> Result<Option<f64>, String> {
        let daemon = matches!(v, Variant::C | Variant::D);
        let started = Instant::now();
        let on = attach(v)?;
        if daemon {
            starts.push(started.elapsed().as_secs_f64() * 1e3);
        }
        if v == Variant::C {
            // A fresh daemon sees the loop's calls for the first time: the events, their
            // transaction and the Tracefile would fall into the timed chunk. A daemon that
            // has traced for long has none of that.
            labelled.chunk()?;
        }
        if daemon {
            std::thread::sleep(SETTLE);
        }
        let expected = usize::from(v != Variant::A);
        let clean = common::sys_enter_links().is_none_or(|n| n == expected);
        let chunk = if in_labelled {
            labelled.chunk()?
        } else {
            plain.chunk()?
        };
        let stopping = Instant::now();
        on.done()?;
        if daemon {
            stops.push(stopping.elapsed().as_secs_f64() * 1e3);
        }
        Ok(clean.then_some(chunk.ns))
    };
    let mut triples: Vec<Vec<Triple>> = vec![Vec::new(); COMPARED.len()];
    let mut disturbed = 0;
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..COMPARED.len()).collect();
        order.rotate_left(round % COMPARED.len());
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            // a b x b a (or b a x a b): the mean of each pair is timed at x, give or take
            // the drift's curvature.
            let (first, second) = if (round + i) % 2 == 0 {
                (Variant::A, Variant::B)
            } else {
                (Variant::B, Variant::A)
            };
            let lab = COMPARED[i] == Variant::C;
            let before = (timed(first, lab)?, timed(second, lab)?);
            let paused = COMPARED[i] == Variant::J;
            if paused {
                std::thread::sleep(PAUSE_BEFORE);
            }
            let x = timed(COMPARED[i], lab)?;
            if paused {
                std::thread::sleep(PAUSE_AFTER);
            }
            let after = (timed(second, lab)?, timed(first, lab)?);
            let mean = |p: Option<f64>, q: Option<f64>| Some((p? + q?) / 2.0);
            let (f, s) = (mean(before.0, after.1), mean(before.1, after.0));
            let (a, b) = if first == Variant::A { (f, s) } else { (s, f) };
            match (x, a, b) {
                (Some(x), Some(a), Some(b)) => triples[i].push(Triple { x, a, b }),
                _ => disturbed += 1,
            }
        }
    }
    drop((labelled, plain));
    report(rounds, iterations, &triples, disturbed);
    if !starts.is_empty() && !stops.is_empty() {
        println!(
            "    the daemon (c, d): start to its link attached {:.0} ms, stop {:.0} ms (medians \
             of {}), each followed by {} ms of settling",
            common::median(&starts),
            common::median(&stops),
            starts.len(),
            SETTLE.as_millis()
        );
    }
    Ok(())
}

/// A compared variant's chunk, and the means of the a and of the b chunks around it.
#[derive(Clone, Copy)]
struct Triple {
    x: f64,
    a: f64,
    b: f64,
}

impl Triple {
    fn ratio(&self) -> f64 {
        (self.x - self.a) / (self.b - self.a)
    }
}

fn report(rounds: usize, iterations: &str, triples: &[Vec<Triple>], disturbed: usize) {
    println!(
        "\n{}: chunk-interleaved, {rounds} rounds; per variant and round one {iterations}-call \
         chunk x amid two of a and two of b (a b x b a, or b a x a b; x, a and b: a triple of \
         x and the means); c and d: the daemon started for their chunk; \
         {disturbed} triples dropped (another sys_enter link was attached)",
        super::BENCH
    );
    let all: Vec<Triple> = triples.iter().flatten().copied().collect();
    if all.is_empty() {
        println!("  no triples");
        return;
    }
    let floor: Vec<f64> = all.iter().map(|t| t.b - t.a).collect();
    let a: Vec<f64> = all.iter().map(|t| t.a).collect();
    println!(
        "    a  no BPF: {:.1} ns; floor b − a: {:.1} ns [p25 {:.1} – p75 {:.1}] (medians over \
         all triples)",
        common::median(&a),
        common::median(&floor),
        common::percentile(&floor, 25.0),
        common::percentile(&floor, 75.0)
    );
    println!(
        "    x (and its triples' a and b: medians), then (x − a)/(b − a): the median over the \
         variant's triples [p25 – p75], and from those medians"
    );
    // Each triple's x − a in units of its own floor, so that the machine's speed cancels.
    let median_ratio = |v: Variant| {
        let i = COMPARED.iter().position(|c| *c == v)?;
        let r: Vec<f64> = triples[i].iter().map(Triple::ratio).collect();
        (!r.is_empty()).then(|| common::median(&r))
    };
    for (i, v) in COMPARED.iter().enumerate() {
        let t = &triples[i];
        if t.is_empty() {
            continue;
        }
        let ratios: Vec<f64> = t.iter().map(Triple::ratio).collect();
        let med = |f: fn(&Triple) -> f64| common::median(&t.iter().map(f).collect::<Vec<_>>());
        let (mx, ma, mb) = (med(|t| t.x), med(|t| t.a), med(|t| t.b));
        println!(
            "    {:<38} {mx:6.1} ns (a {ma:5.1}, b {mb:5.1})   ratio {:5.2} [{:5.2} – {:5.2}], \
             from medians {:5.2}   ({})",
            v.describe(),
            common::median(&ratios),
            common::percentile(&ratios, 25.0),
            common::percentile(&ratios, 75.0),
            (mx - ma) / (mb - ma),
            match v {
                Variant::C | Variant::D | Variant::G | Variant::H => "target ≤ 1.2",
                Variant::I => "for comparison",
                Variant::J => "control: c's method, c′'s program",
                _ => "original design",
            }
        );
    }
    for (v, name) in [(Variant::C, "c"), (Variant::G, "c'")] {
        if let (Some(x), Some(e)) = (median_ratio(v), median_ratio(Variant::E)) {
            println!(
                "    ({name} − a)/(e − a) = {:.2} (the two median ratios divided)   (target ≤ 0.5)",
                x / e
            );
        }
    }
}
