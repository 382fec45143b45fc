//! The kernel's own per-program statistics (`kernel.bpf_stats_enabled`): the sysctl, set for
//! a repeated loop and restored, and the run counters of the programs a variant attaches.

use super::*;

/// Whether the bpf_stats loops run (set once in `run`).
pub static WITH_STATS: AtomicBool = AtomicBool::new(false);

/// Owns `kernel.bpf_stats_enabled` for the bench: sets it to 0 for the timed loops (the
/// statistics' clock reads would be timed too) and puts the old value back on drop, so also
/// when the bench fails or panics.
pub struct BpfStatsSysctl {
    pub old: String,
}

impl BpfStatsSysctl {
    pub fn take() -> Result<BpfStatsSysctl, String> {
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

pub fn set_bpf_stats(on: bool) -> Result<(), String> {
    std::fs::write(BPF_STATS, if on { "1" } else { "0" }).map_err(|e| format!("{BPF_STATS}: {e}"))
}

/// The statistics on while this lives (off again on drop, also on errors).
pub struct StatsOn;

impl StatsOn {
    pub fn new() -> Result<StatsOn, String> {
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
pub struct ProgCounters {
    pub run_time_ns: u64,
    pub run_cnt: u64,
    /// How many of the programs asked for were found.
    pub found: usize,
    pub at: Option<std::time::Instant>,
}

impl ProgCounters {
    pub fn read(ids: &[u32]) -> ProgCounters {
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
    pub fn since(before: ProgCounters, ids: &[u32]) -> ProgWindow {
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
pub struct ProgWindow {
    pub run_time_ns: u64,
    pub run_cnt: u64,
    /// The sys_enter programs counted (0: the variant has none).
    pub programs: usize,
    /// The window's length.
    pub secs: f64,
}

impl ProgWindow {
    /// Mean ns per program run (None: the window missed part of the loop's calls, so the
    /// loop does not dominate it, or nothing ran).
    pub fn mean(&self) -> Option<f64> {
        (self.run_cnt >= loop_calls()).then(|| self.run_time_ns as f64 / self.run_cnt as f64)
    }

    /// Ran, but fewer times than the loop calls: the window missed part of the loop.
    pub fn short(&self) -> bool {
        self.run_cnt > 0 && self.run_cnt < loop_calls()
    }
}

/// Iterations per loop run: at least one syscall each.
pub fn loop_calls() -> u64 {
    CHUNKS.parse::<u64>().unwrap_or(0) * Workload::get().iterations().parse::<u64>().unwrap_or(0)
}

/// The id of the program behind a link.
pub fn link_prog(link: &Link) -> Vec<u32> {
    LinkInfo::from_fd(link.as_fd())
        .map(|info| vec![info.prog_id])
        .unwrap_or_default()
}

/// ctrace's programs called `name` held by the daemon `pid`: the program ids in its fdinfo,
/// found by name. Another daemon's program of the same name is left out.
pub fn daemon_progs(pid: u32, name: &str) -> Vec<u32> {
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
