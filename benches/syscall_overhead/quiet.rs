//! Quiet chunks: on a shared machine, everything on the loop's CPU now and then runs about 20%
//! slower for seconds at a time (another tenant on the core), and a run that lands there
//! decides a ratio alone. The loop program times a fixed userspace spin after every chunk
//! (no syscall, no BPF: the same work in every variant). A chunk counts as quiet when its spin
//! took at most `QUIET_MARGIN` × the fastest spin of the whole bench, and a run's quiet figure
//! is the median of its quiet chunks, if it has `MIN_QUIET` of them.

/// How much slower than the fastest spin a quiet chunk's spin may be.
pub const QUIET_MARGIN: f64 = 1.05;
/// Fewer quiet chunks than this: the run has no quiet figure.
pub const MIN_QUIET: usize = 5;

/// One chunk of the loop program's output: ns per iteration, and ns per spin step after it.
#[derive(Debug, Clone, Copy)]
pub struct Chunk {
    pub ns: f64,
    pub spin: f64,
}

/// Parses the loop program's line: one `NS/SPIN` pair per chunk.
pub fn parse(out: &str) -> Result<Vec<Chunk>, String> {
    let chunks: Vec<Chunk> = out
        .split_whitespace()
        .filter_map(|w| {
            let (ns, spin) = w.split_once('/')?;
            Some(Chunk {
                ns: ns.parse().ok()?,
                spin: spin.parse().ok()?,
            })
        })
        .collect();
    if chunks.is_empty() {
        return Err(format!("no timings in loop output `{out}`"));
    }
    Ok(chunks)
}

/// The median ns per iteration over all of a run's chunks (the bench's main figure).
pub fn median_ns(chunks: &[Chunk]) -> f64 {
    crate::common::median(&chunks.iter().map(|c| c.ns).collect::<Vec<_>>())
}

/// The fastest spin in all these runs: the machine at its quietest.
pub fn fastest_spin<'a>(runs: impl Iterator<Item = &'a Vec<Chunk>>) -> Option<f64> {
    runs.flatten().map(|c| c.spin).reduce(f64::min)
}

/// Each run's median over its quiet chunks (None: too few of them), and how many chunks were
/// quiet out of how many.
pub fn quiet_medians(runs: &[Vec<Chunk>], fastest: f64) -> (Vec<Option<f64>>, usize, usize) {
    let (mut quiet_total, mut total) = (0, 0);
    let medians = runs
        .iter()
        .map(|run| {
            let quiet: Vec<f64> = run
                .iter()
                .filter(|c| c.spin <= fastest * QUIET_MARGIN)
                .map(|c| c.ns)
                .collect();
            quiet_total += quiet.len();
            total += run.len();
            (quiet.len() >= MIN_QUIET).then(|| crate::common::median(&quiet))
        })
        .collect();
    (medians, quiet_total, total)
}
