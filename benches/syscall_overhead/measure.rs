//! One variant's run: its BPF set-up, the timed container and host loops, and the repeat with
//! the kernel's statistics on.

use super::*;

/// One run of a variant: ns per call in the container and on the host, and what else was
/// attached meanwhile.
pub struct Run {
    pub container_chunks: Vec<quiet::Chunk>,
    pub host_chunks: Vec<quiet::Chunk>,
    /// bpf_stats of the variant's own sys_enter program(s), over a second container loop and
    /// a second host loop run with the statistics on.
    pub prog_container: ProgWindow,
    pub prog_host: ProgWindow,
    /// bpf_stats of the variant's task-exit program over the container loop's window.
    pub task_exit: ProgWindow,
    /// Most sys_enter links seen while the loops ran (None: no bpftool to ask).
    pub links: Option<usize>,
    /// Other `ctrace trace` daemons alive meanwhile.
    pub foreign: Vec<u32>,
}

impl Run {
    /// `progs`: the variant's sys_enter program ids, whose bpf_stats are read.
    pub fn of(
        timed: Timed,
        host_loop: &Path,
        mine: Option<u32>,
        progs: &[u32],
    ) -> Result<Run, String> {
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
pub struct Timed {
    pub chunks: Vec<quiet::Chunk>,
    pub monitor: common::LinkMonitor,
    /// bpf_stats of the variant's programs over a second loop, from its start to its exit.
    pub prog: ProgWindow,
    /// The same for its task-exit program.
    pub task_exit: ProgWindow,
}

/// Runs a variant until nothing else was attached beside it (at most 3 tries; the last is
/// kept and flagged).
pub fn measure_clean(
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
pub fn measure(
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
