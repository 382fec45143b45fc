//! Where the timed loop runs: containers (traced or not), the host, and the cgroups and
//! in-process kernel objects the c′/d′ variants place it with.

use super::*;

/// ctrace's kernel programs, loaded in-process as the daemon loads them (c′, d′, c″).
pub fn load_kernel(task_cache: bool) -> Result<ctrace::kernel::Kernel, String> {
    ctrace::kernel::Kernel::load(ctrace::kernel::KernelConfig {
        task_cache,
        ..Default::default()
    })
    .map_err(|e| format!("loading ctrace's kernel programs: {e}"))
}

/// The pid of a container's init (`container`: its id or name).
pub fn container_pid(container: &str) -> Result<u32, String> {
    common::docker(&["inspect", "-f", "{{.State.Pid}}", container])?
        .parse()
        .map_err(|e| format!("container pid: {e}"))
}

/// The default-hierarchy cgroup of `pid`, to track or untrack in-process.
pub fn cgroup_of(pid: u32) -> Result<ctrace::kernel::CgroupHandle, String> {
    let root = ctrace::docker::cgroup::cgroup2_mount().map_err(|e| e.to_string())?;
    let rel = ctrace::docker::cgroup::cgroup_of_pid(pid).map_err(|e| e.to_string())?;
    let path = root.join(rel.trim_start_matches('/'));
    ctrace::kernel::CgroupHandle::open(path.clone()).map_err(|e| format!("{}: {e}", path.display()))
}

/// A cgroup of the bench's own that nothing runs in (d′ tracks it), removed on drop, errors
/// included.
pub struct EmptyCgroup {
    pub handle: ctrace::kernel::CgroupHandle,
    pub path: std::path::PathBuf,
}

impl EmptyCgroup {
    /// `prefix`-PID under the cgroup2 mount.
    pub fn create(prefix: &str) -> Result<EmptyCgroup, String> {
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
pub fn run_container(
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
pub fn container_loop<T>(
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

pub fn run_host(host_loop: &Path) -> Result<Vec<quiet::Chunk>, String> {
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
