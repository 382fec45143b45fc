//! The summary's part from the kernel's per-program statistics: program cost above the empty
//! program, and the task-exit program's runs per second and ns per run.

use super::*;

pub fn report_bpf_stats(samples: &BTreeMap<Variant, Samples>) {
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
pub fn report_task_exit(samples: &BTreeMap<Variant, Samples>) {
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
