//! History queries: a store holding one simulated year of hourly epochs for 1000 containers,
//! queried as `options --since 7d` does (`store::select::select_tracefile`), and the store's
//! size as simulated time grows.
//!
//! The store is written with direct SQL inserts that reproduce the writer's interval
//! coalescing: an item sighted again within two epochs (+5 s) extends its row (last_seen,
//! epochs + 1); a longer gap starts a new row. Simulating a year through the writer would take
//! 552 M sightings; instead the rows are computed from each item's schedule by
//! `coalesce`, which is first checked against the real `Writer` on a small schedule.
//!
//! Workloads (per container, every hour): "steady" = the same 60 syscalls and 3 capabilities
//! every epoch (must grow sub-linearly: it adds no rows); "steady + daily job" = the same plus
//! 3 syscalls used once a day (a new row per day each, by design). No root needed.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};

use ctrace::abi::Abi;
use ctrace::cli::Selection;
use ctrace::kernel::event::{Item, Phase, Sighting};
use ctrace::pipeline::writer::{Writer, WriterConfig};
use ctrace::pipeline::{ToReader, ToWriter};
use ctrace::registry::Container;
use ctrace::tracefile::label::TracefilePattern;

const BENCH: &str = "history";
const EPOCH_MS: i64 = 3_600_000;
/// The writer's rule (src/pipeline/writer.rs): extend when the gap is at most 2 epochs + 5 s.
const MAX_GAP_MS: i64 = 2 * EPOCH_MS + 5_000;
const TARGET_MS: f64 = 100.0;
const CHECKPOINT_DAYS: [i64; 5] = [1, 7, 30, 90, 365];

/// An item's use: in which epochs it is sighted.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Schedule {
    EveryEpoch,
    /// Once a day, in this hour.
    Daily(i64),
}

impl Schedule {
    fn seen(self, epoch: i64) -> bool {
        match self {
            Schedule::EveryEpoch => true,
            Schedule::Daily(hour) => epoch % 24 == hour,
        }
    }
}

struct ItemSpec {
    item: Item,
    name: String,
    schedule: Schedule,
    /// When in its epoch it is first sighted (ms after the epoch's reset).
    offset_ms: i64,
}

fn workload(daily: bool) -> Vec<ItemSpec> {
    let mut v: Vec<ItemSpec> = (0..60u32)
        .map(|nr| ItemSpec {
            item: Item::Syscall {
                abi: Abi::X86_64,
                nr,
            },
            name: ctrace::names::syscall_name(Abi::X86_64, nr)
                .unwrap_or("unknown")
                .to_string(),
            schedule: Schedule::EveryEpoch,
            offset_ms: i64::from(nr) * 500,
        })
        .collect();
    for cap in [0u32, 1, 21] {
        v.push(ItemSpec {
            item: Item::CapGranted(cap),
            name: ctrace::names::capability_name(cap).unwrap_or_else(|| format!("cap_{cap}")),
            schedule: Schedule::EveryEpoch,
            offset_ms: 40_000,
        });
    }
    if daily {
        for nr in [200u32, 201, 202] {
            v.push(ItemSpec {
                item: Item::Syscall {
                    abi: Abi::X86_64,
                    nr,
                },
                name: ctrace::names::syscall_name(Abi::X86_64, nr)
                    .unwrap_or("unknown")
                    .to_string(),
                schedule: Schedule::Daily(3),
                offset_ms: 1_000,
            });
        }
    }
    v
}

/// A stored row: first and last sighting (ms from the start) and epochs counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    first: i64,
    last: i64,
    epochs: i64,
}

/// The writer's interval coalescing for one item over `epochs` epochs.
fn coalesce(schedule: Schedule, offset_ms: i64, epochs: i64) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for e in (0..epochs).filter(|e| schedule.seen(*e)) {
        let at = e * EPOCH_MS + offset_ms;
        match rows.last_mut() {
            Some(r) if at - r.last <= MAX_GAP_MS => {
                r.last = at.max(r.last);
                r.epochs += 1;
            }
            _ => rows.push(Row {
                first: at,
                last: at,
                epochs: 1,
            }),
        }
    }
    rows
}

fn container(i: i64) -> Result<Container, String> {
    Ok(Container {
        container_id: format!("{:064x}", 0xa000_0000 + i),
        name: format!("history-{i}"),
        image: "ctrace-bench/history".into(),
        pattern: TracefilePattern::parse(&format!("history-{i}")).map_err(|e| e.to_string())?,
        labels: HashMap::from([("ctrace.tracefile".into(), format!("history-{i}"))]),
        cgroup_id: 20_000 + i as u64,
        predates_daemon: false,
    })
}

/// Writes a store holding `days` of hourly epochs ending now, as the writer would have.
fn fill(db: &Path, containers: i64, specs: &[ItemSpec], days: i64) -> Result<usize, String> {
    let epochs = days * 24;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let t0 = now.as_millis() as i64 - epochs * EPOCH_MS;
    let rows: Vec<Vec<Row>> = specs
        .iter()
        .map(|s| coalesce(s.schedule, s.offset_ms, epochs))
        .collect();
    let mut conn = ctrace::store::open_rw(db).map_err(|e| e.to_string())?;
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let mut n = 0;
    {
        let mut add_container = tx
            .prepare(
                "INSERT INTO containers (id, container_id, name, image, label, labels, cgroup_id, \
                 started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(|e| e.to_string())?;
        let mut add_tracefile = tx
            .prepare("INSERT INTO tracefiles (id, path) VALUES (?1, ?2)")
            .map_err(|e| e.to_string())?;
        let mut add_row = tx
            .prepare(
                "INSERT INTO sightings (container, tracefile, kind, abi, nr, name, init, \
                 first_seen, last_seen, epochs, pid, comm) \
                 VALUES (?1, ?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, 4242, 'app')",
            )
            .map_err(|e| e.to_string())?;
        for i in 0..containers {
            let c = container(i)?;
            let labels = serde_json::to_string(&c.labels).map_err(|e| e.to_string())?;
            add_container
                .execute(params![
                    i + 1,
                    c.container_id,
                    c.name,
                    c.image,
                    c.pattern.as_str(),
                    labels,
                    c.cgroup_id as i64,
                    t0
                ])
                .map_err(|e| e.to_string())?;
            add_tracefile
                .execute(params![i + 1, c.pattern.as_str()])
                .map_err(|e| e.to_string())?;
            for (spec, rows) in specs.iter().zip(&rows) {
                let (kind, abi, nr) = match spec.item {
                    Item::Syscall { abi, nr } => ("syscall", Some(abi.name()), nr),
                    Item::CapGranted(nr) => ("cap_granted", None, nr),
                    Item::CapDenied(nr) => ("cap_denied", None, nr),
                };
                for r in rows {
                    add_row
                        .execute(params![
                            i + 1,
                            kind,
                            abi,
                            nr,
                            spec.name,
                            t0 + r.first,
                            t0 + r.last,
                            r.epochs
                        ])
                        .map_err(|e| e.to_string())?;
                    n += 1;
                }
            }
        }
    }
    tx.commit().map_err(|e| e.to_string())?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .map_err(|e| e.to_string())?;
    Ok(n)
}

/// Checks `coalesce` against the real writer: a few containers through 100 hourly epochs.
fn check_against_writer(dir: &Path) -> Result<(), String> {
    const EPOCHS: i64 = 100;
    let specs = workload(true);
    let db = dir.join("check.db");
    let conn = ctrace::store::open_rw(&db).map_err(|e| e.to_string())?;
    let (to_reader, _control) = crossbeam_channel::unbounded::<ToReader>();
    let mut writer = Writer::new(
        conn,
        WriterConfig {
            data_dir: dir.join("check-data"),
            runc: false,
            epoch: Duration::from_millis(EPOCH_MS as u64),
            announce: false,
        },
        to_reader,
    );
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    let boot0 = ts.tv_sec as u64 * 1_000_000_000;
    let c = Arc::new(container(0)?);
    writer
        .apply_batch(vec![ToWriter::Resolved(Arc::clone(&c))])
        .map_err(|e| e.to_string())?;
    for e in 0..EPOCHS {
        let batch = specs
            .iter()
            .filter(|s| s.schedule.seen(e))
            .map(|s| {
                ToWriter::Sighting(Sighting {
                    cgroup_id: c.cgroup_id,
                    item: s.item,
                    phase: Phase::App,
                    boot_ns: boot0 + ((e * EPOCH_MS + s.offset_ms) as u64) * 1_000_000,
                    pid: 4242,
                    comm: "app".into(),
                })
            })
            .collect();
        writer.apply_batch(batch).map_err(|e| e.to_string())?;
    }
    drop(writer);
    let conn = Connection::open(&db).map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare(
            "SELECT name, last_seen - first_seen, epochs FROM sightings ORDER BY name, first_seen",
        )
        .map_err(|e| e.to_string())?;
    let mut from_writer: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    while let Some(r) = rows.next().map_err(|e| e.to_string())? {
        let name: String = r.get(0).map_err(|e| e.to_string())?;
        from_writer.entry(name).or_default().push((
            r.get(1).map_err(|e| e.to_string())?,
            r.get(2).map_err(|e| e.to_string())?,
        ));
    }
    let mut simulated: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for s in &specs {
        simulated.entry(s.name.clone()).or_default().extend(
            coalesce(s.schedule, s.offset_ms, EPOCHS)
                .iter()
                .map(|r| (r.last - r.first, r.epochs)),
        );
    }
    if from_writer != simulated {
        return Err(format!(
            "the simulation does not match the writer's coalescing:\n writer   {from_writer:?}\n \
             simulated {simulated:?}"
        ));
    }
    println!(
        "  simulation checked against the real Writer: 100 epochs, {} rows, identical",
        simulated.values().map(Vec::len).sum::<usize>()
    );
    Ok(())
}

fn time_query(db: &Path, sel: &Selection) -> Result<(f64, f64, usize), String> {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..7 {
        let started = Instant::now();
        let conn = ctrace::store::open_ro(db).map_err(|e| e.to_string())?;
        let tf = ctrace::store::select::select_tracefile(&conn, sel).map_err(|e| e.to_string())?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        size = tf.syscall_count();
    }
    Ok((times[0], common::median(&times[1..]), size))
}

fn main() {
    if !common::selected(BENCH) {
        return;
    }
    if let Err(e) = run() {
        eprintln!("{BENCH}: FAILED: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let containers = common::env_usize("CTRACE_BENCH_CONTAINERS", 1000) as i64;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    println!("{BENCH}: {containers} containers, hourly epochs, stores ending now");
    check_against_writer(dir.path())?;
    let since_7d = Selection {
        since: Some("7d".into()),
        ..Default::default()
    };
    let one_name = Selection {
        since: Some("7d".into()),
        names: vec!["history-7".into()],
        ..Default::default()
    };
    for (daily, workload_name) in [(false, "steady"), (true, "steady + daily job")] {
        let specs = workload(daily);
        println!(
            "  workload \"{workload_name}\" ({} items per container):",
            specs.len()
        );
        println!(
            "    {:>6} {:>10} {:>10} {:>12} {:>14} {:>16}",
            "days", "rows", "store MiB", "fill s", "--since 7d ms", "+ --name ms"
        );
        let mut first_size = None;
        for days in CHECKPOINT_DAYS {
            let db = dir.path().join(format!("h-{daily}-{days}.db"));
            let started = Instant::now();
            let rows = fill(&db, containers, &specs, days)?;
            let fill_s = started.elapsed().as_secs_f64();
            let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
            let (cold, warm, syscalls) = time_query(&db, &since_7d)?;
            let (_, warm_one, _) = time_query(&db, &one_name)?;
            let base = *first_size.get_or_insert(size);
            println!(
                "    {days:>6} {rows:>10} {:>10.1} {fill_s:>12.2} {:>14} {:>16.1}   \
                 (size ×{:.2} vs day 1; {syscalls} syscalls selected){}",
                size as f64 / 1_048_576.0,
                format!("{warm:.1} ({cold:.1} 1st)"),
                warm_one,
                size as f64 / base as f64,
                if days == 365 {
                    if warm <= TARGET_MS {
                        "  target ≤ 100 ms met"
                    } else {
                        "  ABOVE the 100 ms target"
                    }
                } else {
                    ""
                }
            );
            common::flush();
            let _ = std::fs::remove_file(&db);
        }
    }
    Ok(())
}
