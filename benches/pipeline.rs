//! Userspace throughput: synthetic first sightings for 1000 containers, through the same
//! stages as the daemon — encoded as the kernel lays them out in the ring buffer, decoded by
//! the reader, sent over the bounded channel, applied by the writer in batched transactions
//! (`Writer::apply_batch`) and committed to a temporary SQLite store.
//!
//! Two passes: epoch 1 (every sighting is new: sets start, every first sighting is kept with its
//! pid and comm) and epoch 2 (the same items seen again one epoch later: epoch 1's sets are
//! closed and the steady state begins). Reports
//! sightings/s end to end, the split between reader-side work and the writer, and peak memory
//! (VmHWM). No root needed. `CTRACE_BENCH_CONTAINERS` (default 1000) scales it.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use ctrace::abi::Abi;
use ctrace::kernel::event::{self, Event, Item, Phase, Sighting};
use ctrace::pipeline::writer::{Writer, WriterConfig, BATCH_MAX};
use ctrace::pipeline::{ToWriter, CHANNEL_CAPACITY};
use ctrace::registry::Container;
use ctrace::tracefile::label::TracefilePattern;

const BENCH: &str = "pipeline";
const TARGET_PER_S: f64 = 1_000_000.0;
const EPOCH: Duration = Duration::from_secs(3600);

/// 1000 distinct items per container: 460 x86_64 and 458 i386 syscall numbers, 41 capabilities
/// granted and 41 denied.
fn items() -> Vec<Item> {
    let mut v: Vec<Item> = (0..460)
        .map(|nr| Item::Syscall {
            abi: Abi::X86_64,
            nr,
        })
        .collect();
    v.extend((0..458).map(|nr| Item::Syscall { abi: Abi::I386, nr }));
    v.extend((0..41).map(Item::CapGranted));
    v.extend((0..41).map(Item::CapDenied));
    v
}

fn boot_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn container(i: u64) -> Result<Container, String> {
    Ok(Container {
        container_id: format!("{:064x}", 0xbe00_0000 + i),
        name: format!("pipeline-{i}"),
        image: "ctrace-bench/pipeline".into(),
        pattern: TracefilePattern::parse(&format!("pipeline-{i}")).map_err(|e| e.to_string())?,
        labels: HashMap::from([("ctrace.tracefile".into(), format!("pipeline-{i}"))]),
        cgroup_id: 10_000 + i,
        seccomp: None,
        pod: None,
    })
}

/// The reader's side: encode (what the kernel writes) → decode → channel. Returns the time spent
/// in encode + decode alone.
fn produce(to_writer: &Sender<ToWriter>, containers: u64, items: &[Item], at: u64) -> Duration {
    let mut codec = Duration::ZERO;
    for (k, item) in items.iter().enumerate() {
        let started = Instant::now();
        let mut decoded = Vec::with_capacity(containers as usize);
        for c in 0..containers {
            let s = Sighting {
                cgroup_id: 10_000 + c,
                item: *item,
                phase: Phase::App,
                boot_ns: at + k as u64 * 1_000,
                pid: 4242,
                comm: "bench".into(),
            };
            match event::decode(&event::encode(&s)) {
                Ok(Event::Sighting(s)) => decoded.push(s),
                other => panic!("round trip failed: {other:?}"),
            }
        }
        codec += started.elapsed();
        for s in decoded {
            if to_writer.send(ToWriter::Sighting(s)).is_err() {
                return codec;
            }
        }
    }
    codec
}

struct WriterStats {
    apply: Duration,
    batches: usize,
    messages: usize,
}

/// The writer's side, batched as `Writer::run` does it (block for one, take what is there).
fn consume(writer: &mut Writer, from: &Receiver<ToWriter>) -> Result<WriterStats, String> {
    let mut stats = WriterStats {
        apply: Duration::ZERO,
        batches: 0,
        messages: 0,
    };
    loop {
        let Ok(first) = from.recv() else {
            return Ok(stats);
        };
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match from.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let done = batch.iter().any(|m| matches!(m, ToWriter::Shutdown));
        stats.messages += batch.len();
        let started = Instant::now();
        writer
            .apply_batch(batch)
            .map_err(|e| format!("apply_batch: {e}"))?;
        stats.apply += started.elapsed();
        stats.batches += 1;
        if done {
            return Ok(stats);
        }
    }
}

fn main() {
    common::run_bench(BENCH, false, run);
}

fn run() -> Result<(), String> {
    let containers = common::env_usize("CTRACE_BENCH_CONTAINERS", 1000) as u64;
    let items = items();
    let total = containers as usize * items.len();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = dir.path().join("pipeline.db");
    let conn = ctrace::store::open_rw(&db).map_err(|e| e.to_string())?;
    let (to_reader, _control) = ctrace::pipeline::control_channel().unwrap();
    let mut writer = Writer::new(
        conn,
        WriterConfig {
            data_dir: dir.path().join("data"),
            runc: false,
            epoch: EPOCH,
            announce: false,
            store: None,
        },
        to_reader,
    );
    let hwm_before = common::peak_rss_kib();
    println!(
        "{BENCH}: {containers} containers × {} items = {total} first sightings per epoch \
         (encode → decode → channel({CHANNEL_CAPACITY}) → Writer::apply_batch ≤ {BATCH_MAX}/tx → \
         SQLite WAL, synchronous=NORMAL)",
        items.len()
    );

    let start_ns = boot_ns();
    let mut resolved = Some(
        (0..containers)
            .map(|i| container(i).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?,
    );
    let mut rates = Vec::new();
    for (epoch, label) in [(0u64, "epoch 1 (new)"), (1, "epoch 2 (again)")] {
        let (to_writer, from) = crossbeam_channel::bounded::<ToWriter>(CHANNEL_CAPACITY);
        let at = start_ns + epoch * EPOCH.as_nanos() as u64;
        let started = Instant::now();
        let stats = std::thread::scope(|scope| {
            let items = &items;
            let news = resolved.take();
            let producer = scope.spawn(move || {
                for c in news.into_iter().flatten() {
                    let _ = to_writer.send(ToWriter::Resolved(c));
                }
                let codec = produce(&to_writer, containers, items, at);
                let _ = to_writer.send(ToWriter::Shutdown);
                codec
            });
            let stats = consume(&mut writer, &from);
            let codec = producer.join().unwrap_or_default();
            stats.map(|s| (s, codec))
        });
        let (stats, codec) = stats?;
        let elapsed = started.elapsed();
        let rate = total as f64 / elapsed.as_secs_f64();
        rates.push(rate);
        println!(
            "  {label:<24} {:>9.0} sightings/s end to end ({total} in {:.2} s; {} transactions; \
             writer busy {:.2} s = {:.0}/s; reader encode+decode {:.2} s){}",
            rate,
            elapsed.as_secs_f64(),
            stats.batches,
            stats.apply.as_secs_f64(),
            stats.messages as f64 / stats.apply.as_secs_f64(),
            codec.as_secs_f64(),
            if rate >= TARGET_PER_S {
                "  target met"
            } else {
                "  BELOW the 1M/s target"
            }
        );
        common::flush();
    }
    let conn = rusqlite::Connection::open(&db).map_err(|e| e.to_string())?;
    let count = |table: &str| -> Result<i64, String> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| e.to_string())
    };
    println!(
        "  store rows: {} runs (item sets), {} first_sightings (packed), {} items via the \
         `sightings` view",
        count("runs")?,
        count("first_sightings")?,
        count("sightings")?
    );
    let hwm = common::peak_rss_kib();
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.path().join("pipeline.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "  peak memory (VmHWM): {:.1} MiB (before the passes {:.1} MiB); store {:.1} MiB",
        hwm as f64 / 1024.0,
        hwm_before as f64 / 1024.0,
        size as f64 / 1_048_576.0
    );
    Ok(())
}
