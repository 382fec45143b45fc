//! The summary: per variant the median over rounds and the spread, the ratios
//! (x − a)/(b − a) from the medians and per round, and again from the quiet chunks.

use super::*;

pub fn report(samples: &BTreeMap<Variant, Samples>) {
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
pub fn print_ratios(title: &str, get: impl Fn(Variant) -> Option<Vec<Option<f64>>>) {
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
pub fn quiet_floor(samples: &BTreeMap<Variant, Samples>) -> Option<f64> {
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
pub fn report_quiet(samples: &BTreeMap<Variant, Samples>) {
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
