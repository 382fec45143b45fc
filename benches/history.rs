//! History queries: a store holding one simulated year of hourly epochs for 1000 containers,
//! queried as `options --since 7d` does (`store::select::select_tracefile`), and the store's
//! size as simulated time grows.
//!
//! The store is written with direct SQL inserts of the rows the writer would have made
//! (`store::record`): per container and class (x86_64 syscalls, granted capabilities), the set
//! of items of each hourly epoch; a stored set whose items are all seen again in the next epoch
//! (or the one after) is extended, what is new starts a row of its own. Simulating a year
//! through the writer would take 578 M sightings; instead `simulate` computes the rows from each
//! item's schedule, and is first checked against the real `Writer` on a small schedule.
//!
//! Workloads (per container, every hour): "steady" = the same 60 syscalls and 3 capabilities
//! every epoch (must grow sub-linearly: it adds no rows); "steady + daily job" = the same plus
//! 3 syscalls used once a day (one new set row and one first-sightings row per day, by design).
//! No root needed.

mod common;
#[path = "history/sim.rs"]
mod sim;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};

use ctrace::cli::Selection;
use ctrace::kernel::event::{Phase, Sighting};
use ctrace::pipeline::writer::{Writer, WriterConfig};
use ctrace::pipeline::ToWriter;
use ctrace::registry::Container;
use ctrace::store::bits::{Bits, Class};
use ctrace::tracefile::label::TracefilePattern;
use sim::{classes, simulate, workload, ItemSpec, Row, EPOCH_MS};

const BENCH: &str = "history";
const TARGET_MS: f64 = 100.0;
const CHECKPOINT_DAYS: [i64; 5] = [1, 7, 30, 90, 365];

fn container(i: i64) -> Result<Container, String> {
    Ok(Container {
        container_id: format!("{:064x}", 0xa000_0000 + i),
        name: format!("history-{i}"),
        image: "ctrace-bench/history".into(),
        pattern: TracefilePattern::parse(&format!("history-{i}")).map_err(|e| e.to_string())?,
        labels: HashMap::from([("ctrace.tracefile".into(), format!("history-{i}"))]),
        cgroup_id: 20_000 + i as u64,
        seccomp: None,
        pod: None,
    })
}

/// Writes a store holding `days` of hourly epochs ending now, as the writer would have.
fn fill(db: &Path, containers: i64, specs: &[ItemSpec], days: i64) -> Result<usize, String> {
    let epochs = days * 24;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let now_ms = now.as_millis() as i64;
    // Epochs are aligned to the Unix epoch; the last one is the current one.
    let t0 = (now_ms.div_euclid(EPOCH_MS) - epochs + 1) * EPOCH_MS;
    let simulated: Vec<(Class, Vec<Row>, Vec<String>)> = classes(specs)
        .into_iter()
        .map(|(class, items)| {
            let (rows, firsts) = simulate(&items, epochs);
            let firsts = firsts
                .iter()
                .map(|epoch| {
                    let v: Vec<(u32, i64, u32, &str)> = epoch
                        .iter()
                        .map(|(nr, at)| (*nr, t0 + at, 4242, "app"))
                        .collect();
                    serde_json::to_string(&v).unwrap_or_default()
                })
                .collect();
            (class, rows, firsts)
        })
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
                "INSERT INTO runs (container, tracefile, kind, abi, init, first_seen, last_seen, \
                 epochs, w0, w1, w2, w3, w4, w5, w6, w7) \
                 VALUES (?1, ?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .map_err(|e| e.to_string())?;
        let mut add_firsts = tx
            .prepare(
                "INSERT INTO first_sightings (container, tracefile, kind, abi, init, items) \
                 VALUES (?1, ?1, ?2, ?3, 0, ?4)",
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
            for (class, _, firsts) in &simulated {
                for items in firsts {
                    add_firsts
                        .execute(params![i + 1, class.kind(), class.abi(), items])
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        // In the order the writer creates them (time), so rows of the same days sit together.
        let mut order: Vec<(i64, i64, &Class, &Row)> = (0..containers)
            .flat_map(|i| {
                simulated.iter().flat_map(move |(class, rows, _)| {
                    rows.iter().map(move |r| (r.first, i, class, r))
                })
            })
            .collect();
        order.sort_by_key(|(first, i, class, _)| (*first, *i, **class));
        for (_, i, class, r) in order {
            let w = r.bits.words();
            add_row
                .execute(params![
                    i + 1,
                    class.kind(),
                    class.abi(),
                    t0 + r.first,
                    t0 + r.last,
                    r.epochs,
                    w[0],
                    w[1],
                    w[2],
                    w[3],
                    w[4],
                    w[5],
                    w[6],
                    w[7]
                ])
                .map_err(|e| e.to_string())?;
            n += 1;
        }
    }
    tx.commit().map_err(|e| e.to_string())?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .map_err(|e| e.to_string())?;
    Ok(n)
}

/// A store's set rows in a comparable form: class, items, last − first, epochs.
type Shape = Vec<(Class, Vec<u32>, i64, i64)>;

/// Checks `simulate` against the real writer: one container through 100 hourly epochs.
fn check_against_writer(dir: &Path) -> Result<(), String> {
    const EPOCHS: i64 = 100;
    let specs = workload(true);
    let db = dir.join("check.db");
    let conn = ctrace::store::open_rw(&db).map_err(|e| e.to_string())?;
    let (to_reader, _control) = ctrace::pipeline::control_channel().unwrap();
    let mut writer = Writer::new(
        conn,
        WriterConfig {
            data_dir: dir.join("check-data"),
            runc: false,
            epoch: Duration::from_millis(EPOCH_MS as u64),
            announce: false,
            store: None,
        },
        to_reader,
    );
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    let boot_now_ms = ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000;
    let unix_now_ms = ctrace::store::now_ms();
    // Epoch 0 starts at the next epoch boundary of Unix time (+100 ms of clock slack).
    let boot0_ms = boot_now_ms + EPOCH_MS - unix_now_ms.rem_euclid(EPOCH_MS) + 100;
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
                    boot_ns: (boot0_ms + e * EPOCH_MS + s.offset_ms) as u64 * 1_000_000,
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
            "SELECT kind, abi, last_seen - first_seen, epochs, w0, w1, w2, w3, w4, w5, w6, w7 \
             FROM runs",
        )
        .map_err(|e| e.to_string())?;
    let mut from_writer: Shape = stmt
        .query_map([], |r| {
            let kind: String = r.get(0)?;
            let abi: Option<String> = r.get(1)?;
            Ok((
                Class::from_columns(&kind, abi.as_deref()),
                Bits::from_row(r, 4)?.iter().collect::<Vec<u32>>(),
                r.get(2)?,
                r.get(3)?,
            ))
        })
        .map_err(|e| e.to_string())?
        .filter_map(|r| match r {
            Ok((Some(class), items, span, epochs)) => Some(Ok((class, items, span, epochs))),
            Ok(_) => None,
            Err(e) => Some(Err(e.to_string())),
        })
        .collect::<Result<_, String>>()?;
    let writer_firsts: i64 = conn
        .query_row(
            "SELECT coalesce(sum(json_array_length(items)), 0) FROM first_sightings",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    let mut simulated: Shape = Vec::new();
    let mut simulated_firsts = 0;
    for (class, items) in classes(&specs) {
        let (rows, firsts) = simulate(&items, EPOCHS);
        simulated_firsts += firsts.iter().map(Vec::len).sum::<usize>() as i64;
        simulated.extend(
            rows.iter()
                .map(|r| (class, r.bits.iter().collect(), r.last - r.first, r.epochs)),
        );
    }
    from_writer.sort();
    simulated.sort();
    if from_writer != simulated || writer_firsts != simulated_firsts {
        return Err(format!(
            "the simulation does not match the writer:\n writer    {writer_firsts} first \
             sightings, {from_writer:?}\n simulated {simulated_firsts} first sightings, \
             {simulated:?}"
        ));
    }
    println!(
        "  simulation checked against the real Writer: 100 epochs, {} set rows and {} first \
         sightings, identical",
        simulated.len(),
        simulated_firsts
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
    common::run_bench(BENCH, false, run);
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
