//! Chunk-interleaved variants: one loop container runs for the whole section, and the bench
//! attaches one variant's program for one chunk at a time (about 20 ms), in rotating order.
//! The machine's slow phases last seconds, longer than a round of whole-container runs takes
//! between two variants; here a round's chunks are under a second apart, so a slow phase
//! mostly slows all of them alike instead of deciding a ratio.
//!
//! Variants: a, b, e; c, the real `ctrace trace` daemon tracing the loop container (started
//! for its chunk, which runs once its syscall program is attached, and stopped after it); and
//! ctrace's kernel object driven in-process as c′, d′ and c″ (each loaded once; only the
//! sys_enter links come and go). Before every chunk the bench counts the sys_enter links
//! attached; a chunk with any but the variant's own is dropped and counted.

use std::io::{BufRead, BufReader, Write};
use std::mem::MaybeUninit;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags};

use super::{common, floor, original, quiet, Variant, CPU, IMAGE, LABEL};

const VARIANTS: [Variant; 7] = [
    Variant::A,
    Variant::B,
    Variant::C,
    Variant::G,
    Variant::H,
    Variant::I,
    Variant::E,
];

/// The loop program in its stdin-driven mode (`CHUNKS` 0): a line in, one chunk out.
struct LoopContainer {
    name: String,
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl LoopContainer {
    fn start(name: &str, iterations: &str) -> Result<LoopContainer, String> {
        let mut child = Command::new("docker")
            .args(["run", "-i", "--rm", "--name", name, "--network", "none"])
            .args(["--label", LABEL])
            .args(["--cpuset-cpus", CPU, IMAGE, "/getppid_loop", "0", "0"])
            .args([iterations, "getppid"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("docker run: {e}"))?;
        let input = child.stdin.take().ok_or("no stdin")?;
        let output = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(LoopContainer {
            name: name.to_string(),
            child,
            input,
            output,
        })
    }

    fn chunk(&mut self) -> Result<quiet::Chunk, String> {
        self.input
            .write_all(b"\n")
            .and_then(|()| self.input.flush())
            .map_err(|e| format!("loop container stdin: {e}"))?;
        let mut line = String::new();
        match self.output.read_line(&mut line) {
            Ok(n) if n > 0 => Ok(quiet::parse(&line)?[0]),
            _ => Err(format!("loop container {} stopped answering", self.name)),
        }
    }

    fn inspect(&self, format: &str) -> Result<String, String> {
        common::docker(&["inspect", "-f", format, &self.name])
    }
}

impl Drop for LoopContainer {
    fn drop(&mut self) {
        // End of input ends the loop, and `docker run --rm` removes the container.
        let _ = common::docker(&["rm", "-f", &self.name]);
        let _ = self.child.wait();
    }
}

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
        }
        Ok(())
    }
}

/// The daemon, once it traces the loop container (`id`) with its syscall program attached.
fn start_daemon(dir: &Path, id: &str) -> Result<common::Ctrace, String> {
    let mut daemon = common::Ctrace::start(dir, &[])?;
    daemon.wait_for(&id[..12], Duration::from_secs(20))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while common::sys_enter_links().is_some_and(|n| n == 0) {
        if Instant::now() > deadline {
            return Err("the daemon traces the loop container but attached nothing".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Past its start-up work (loading, the first Tracefile), as when it has traced for long.
    std::thread::sleep(Duration::from_millis(300));
    Ok(daemon)
}

pub fn run(dir: &Path, rounds: usize, iterations: &str) -> Result<(), String> {
    let name = format!("ctrace-bench-paired-{}", std::process::id());
    let mut lp = LoopContainer::start(&name, iterations)?;
    lp.chunk()?; // the container is up once it answers
    let pid: u32 = lp
        .inspect("{{.State.Pid}}")?
        .parse()
        .map_err(|e| format!("container pid: {e}"))?;
    let id = lp.inspect("{{.Id}}")?;

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

    let root = ctrace::docker::cgroup::cgroup2_mount().map_err(|e| e.to_string())?;
    let rel = ctrace::docker::cgroup::cgroup_of_pid(pid).map_err(|e| e.to_string())?;
    let open = |path: &Path| {
        ctrace::kernel::CgroupHandle::open(path.to_path_buf())
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let loop_cg = open(&root.join(rel.trim_start_matches('/')))?;
    let other = root.join(format!("ctrace-bench-paired-{}", std::process::id()));
    let _ = std::fs::create_dir(&other);
    let other_cg = open(&other)?;
    let load = |task_cache: bool| {
        ctrace::kernel::Kernel::load(ctrace::kernel::KernelConfig {
            task_cache,
            ..Default::default()
        })
        .map_err(|e| format!("loading ctrace's kernel programs: {e}"))
    };
    let (traced, untraced, uncached) = (load(true)?, load(true)?, load(false)?);
    for k in [&traced, &uncached] {
        k.track(&loop_cg).map_err(|e| e.to_string())?;
    }
    untraced.track(&other_cg).map_err(|e| e.to_string())?;
    untraced.untrack(loop_cg.id, Some(&loop_cg));

    let attach = |v: Variant| -> Result<Attached, String> {
        let err = |e: &dyn std::fmt::Display| format!("attaching {v:?}: {e}");
        Ok(match v {
            Variant::A => Attached::Nothing,
            Variant::C => Attached::Daemon(start_daemon(dir, &id)?),
            Variant::B => Attached::Link(floor.progs.floor_tp_btf.attach().map_err(|e| err(&e))?),
            Variant::E => Attached::Link(
                original
                    .progs
                    .original_sys_enter
                    .attach()
                    .map_err(|e| err(&e))?,
            ),
            Variant::G => Attached::Ctrace(traced.attach_syscalls().map_err(|e| err(&e))?),
            Variant::H => Attached::Ctrace(untraced.attach_syscalls().map_err(|e| err(&e))?),
            Variant::I => Attached::Ctrace(uncached.attach_syscalls().map_err(|e| err(&e))?),
            _ => return Err(format!("{v:?} is not chunk-interleaved")),
        })
    };

    // Warm every variant once (first sightings, caches), untimed.
    for v in VARIANTS {
        let on = attach(v)?;
        lp.chunk()?;
        on.done()?;
    }
    let mut chunks: Vec<Vec<Option<quiet::Chunk>>> = vec![Vec::new(); VARIANTS.len()];
    let mut disturbed = 0;
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..VARIANTS.len()).collect();
        order.rotate_left(round % VARIANTS.len());
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let on = attach(VARIANTS[i])?;
            let expected = usize::from(VARIANTS[i] != Variant::A);
            let clean = common::sys_enter_links().is_none_or(|n| n == expected);
            let chunk = lp.chunk()?;
            on.done()?;
            disturbed += usize::from(!clean);
            chunks[i].push(clean.then_some(chunk));
        }
    }
    drop(lp);
    drop(other_cg);
    let _ = std::fs::remove_dir(&other);
    report(rounds, iterations, &chunks, disturbed);
    Ok(())
}

fn report(rounds: usize, iterations: &str, chunks: &[Vec<Option<quiet::Chunk>>], disturbed: usize) {
    println!(
        "\n{}: chunk-interleaved, {rounds} rounds of one {iterations}-call chunk per variant, \
         one loop container (c: the daemon started for its chunk); {disturbed} chunks dropped \
         (another sys_enter link was attached)",
        super::BENCH
    );
    let per_round = |v: Variant| -> Option<Vec<Option<f64>>> {
        let i = VARIANTS.iter().position(|x| *x == v)?;
        Some(chunks[i].iter().map(|c| c.map(|c| c.ns)).collect())
    };
    for (i, v) in VARIANTS.iter().enumerate() {
        let ns: Vec<f64> = chunks[i].iter().flatten().map(|c| c.ns).collect();
        if ns.is_empty() {
            continue;
        }
        println!(
            "    {:<38} {:7.1} ns  [p10 {:6.1} – p90 {:6.1}]",
            v.describe(),
            common::median(&ns),
            common::percentile(&ns, 10.0),
            common::percentile(&ns, 90.0)
        );
    }
    super::print_ratios("chunk-interleaved", per_round);
}
