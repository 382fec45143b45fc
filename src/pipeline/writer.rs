//! The writer thread: sole owner of the SQLite connection. Applies batches in one transaction
//! each (size or time bound), resolves names when storing, and materializes Tracefiles.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{Local, TimeZone};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::abi::Abi;
use crate::kernel::event::{Item, Phase, Sighting};
use crate::names;
use crate::pipeline::clock::BootClock;
use crate::pipeline::{ToReader, ToWriter};
use crate::registry::Container;
use crate::tracefile::label;
use crate::tracefile::Tracefile;

/// A first sighting is committed within this (design: within 1 s).
const FLUSH_EVERY: Duration = Duration::from_millis(200);
const BATCH_MAX: usize = 50_000;
/// Tracefile windows (strftime) are checked this often.
const WINDOW_CHECK_EVERY: Duration = Duration::from_secs(1);

pub struct WriterConfig {
    pub data_dir: PathBuf,
    /// Include runtime-init sightings in Tracefiles.
    pub runc: bool,
    pub epoch: Duration,
    /// Print a line when tracing of a container starts and stops.
    pub announce: bool,
}

pub fn spawn(
    conn: Connection,
    config: WriterConfig,
    from: Receiver<ToWriter>,
    to_reader: Sender<ToReader>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ctrace-writer".into())
        .spawn(move || {
            let mut writer = Writer::new(conn, config, to_reader);
            writer.run(&from);
        })
}

struct Traced {
    container: Arc<Container>,
    row: i64,
    window: String,
    tracefile_id: i64,
}

enum CgroupState {
    /// Not yet known to be a labelled container: its sightings wait here.
    Pending(Vec<Sighting>),
    Traced(Traced),
    Ignored,
}

#[derive(Hash, PartialEq, Eq, Clone, Copy)]
struct IntervalKey {
    container: i64,
    tracefile: i64,
    item: Item,
    phase: Phase,
}

pub struct Writer {
    conn: Connection,
    state: State,
}

/// Everything the writer knows besides its connection.
struct State {
    config: WriterConfig,
    to_reader: Sender<ToReader>,
    clock: BootClock,
    cgroups: HashMap<u64, CgroupState>,
    /// The newest interval row of each item, so a sighting in the next epoch extends it.
    open_intervals: HashMap<IntervalKey, (i64, i64)>,
    tracefile_ids: HashMap<String, i64>,
    dirty: HashSet<String>,
    last_window_check: Instant,
    max_gap_ms: i64,
}

fn kind_and_abi(item: Item) -> (&'static str, Option<Abi>, u32) {
    match item {
        Item::Syscall { abi, nr } => ("syscall", Some(abi), nr),
        Item::CapGranted(nr) => ("cap_granted", None, nr),
        Item::CapDenied(nr) => ("cap_denied", None, nr),
    }
}

fn item_name(item: Item) -> String {
    match item {
        Item::Syscall { abi, nr } => names::syscall_name(abi, nr)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{abi}_syscall_{nr}")),
        Item::CapGranted(nr) | Item::CapDenied(nr) => {
            names::capability_name(nr).unwrap_or_else(|| format!("cap_{nr}"))
        }
    }
}

impl Writer {
    pub fn new(conn: Connection, config: WriterConfig, to_reader: Sender<ToReader>) -> Writer {
        let epoch_ms = i64::try_from(config.epoch.as_millis()).unwrap_or(i64::MAX / 4);
        Writer {
            conn,
            state: State {
                max_gap_ms: epoch_ms.saturating_mul(2).saturating_add(5_000),
                config,
                to_reader,
                clock: BootClock::new(),
                cgroups: HashMap::new(),
                open_intervals: HashMap::new(),
                tracefile_ids: HashMap::new(),
                dirty: HashSet::new(),
                last_window_check: Instant::now(),
            },
        }
    }

    pub fn run(&mut self, from: &Receiver<ToWriter>) {
        let mut batch = Vec::new();
        loop {
            let mut shutdown = false;
            match from.recv_timeout(FLUSH_EVERY) {
                Ok(msg) => batch.push(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => shutdown = true,
            }
            let started = Instant::now();
            while batch.len() < BATCH_MAX && started.elapsed() < FLUSH_EVERY {
                match from.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            shutdown |= batch.iter().any(|m| matches!(m, ToWriter::Shutdown));
            if let Err(e) = self.apply_batch(std::mem::take(&mut batch)) {
                eprintln!("ctrace: error: committing to the store: {e}");
            }
            if self.state.last_window_check.elapsed() >= WINDOW_CHECK_EVERY {
                self.state.last_window_check = Instant::now();
                self.state.roll_windows(&self.conn);
            }
            if shutdown {
                let windows: Vec<String> = self.state.traced().map(|t| t.window.clone()).collect();
                self.state.dirty.extend(windows);
                self.state.write_tracefiles(&self.conn);
                return;
            }
            self.state.write_tracefiles(&self.conn);
        }
    }

    /// Applies messages in one transaction. Public for the pipeline benchmark.
    pub fn apply_batch(&mut self, batch: Vec<ToWriter>) -> rusqlite::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        for msg in batch {
            self.state.apply(&tx, msg)?;
        }
        tx.commit()
    }
}

impl State {
    fn traced(&self) -> impl Iterator<Item = &Traced> {
        self.cgroups.values().filter_map(|s| match s {
            CgroupState::Traced(t) => Some(t),
            _ => None,
        })
    }

    fn apply(&mut self, tx: &Transaction<'_>, msg: ToWriter) -> rusqlite::Result<()> {
        {
            match msg {
                ToWriter::Sighting(s) => match self.cgroups.get_mut(&s.cgroup_id) {
                    Some(CgroupState::Traced(t)) => {
                        record(
                            tx,
                            &self.clock,
                            &mut self.open_intervals,
                            self.max_gap_ms,
                            t,
                            &s,
                        )?;
                        self.dirty.insert(t.window.clone());
                    }
                    Some(CgroupState::Pending(waiting)) => waiting.push(s),
                    Some(CgroupState::Ignored) => {}
                    None => {
                        self.cgroups
                            .insert(s.cgroup_id, CgroupState::Pending(vec![s]));
                    }
                },
                ToWriter::NewCgroup(c) => {
                    self.cgroups
                        .insert(c.cgroup_id, CgroupState::Pending(Vec::new()));
                }
                ToWriter::Resolved(container) => self.resolve(tx, container)?,
                ToWriter::Ignored { cgroup_id } => {
                    self.cgroups.insert(cgroup_id, CgroupState::Ignored);
                }
                ToWriter::Stopped { cgroup_id, at_ms } => {
                    if let Some(CgroupState::Traced(t)) = self.cgroups.get(&cgroup_id) {
                        tx.execute(
                            "UPDATE containers SET stopped_at = ?1 WHERE id = ?2",
                            params![at_ms, t.row],
                        )?;
                        self.dirty.insert(t.window.clone());
                        if self.config.announce {
                            println!(
                                "ctrace: stopped tracing container {} ({})",
                                t.container.name,
                                t.container.short_id()
                            );
                        }
                    }
                }
                ToWriter::RingbufMisses(n) => {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES ('ringbuf_misses', ?1) \
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        params![n.to_string()],
                    )?;
                }
                ToWriter::Shutdown => {}
            }
        }
        Ok(())
    }

    fn resolve(&mut self, tx: &Transaction<'_>, container: Arc<Container>) -> rusqlite::Result<()> {
        let window = match container.pattern.expand(&Local::now()) {
            Ok(w) => w,
            Err(e) => {
                eprintln!(
                    "ctrace: error: container {} ({}): tracefile label refused: {e}",
                    container.name,
                    container.short_id()
                );
                self.cgroups
                    .insert(container.cgroup_id, CgroupState::Ignored);
                let _ = self.to_reader.send(ToReader::Untrack {
                    cgroup_id: container.cgroup_id,
                });
                return Ok(());
            }
        };
        let labels = serde_json::to_string(&container.labels).unwrap_or_else(|_| "{}".into());
        let now = crate::store::now_ms();
        tx.execute(
            "INSERT INTO containers (container_id, name, image, label, labels, cgroup_id, started_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (container_id) DO UPDATE SET cgroup_id = excluded.cgroup_id, \
             stopped_at = NULL, labels = excluded.labels",
            params![
                container.container_id,
                container.name,
                container.image,
                container.pattern.as_str(),
                labels,
                container.cgroup_id as i64,
                now
            ],
        )?;
        let row: i64 = tx.query_row(
            "SELECT id FROM containers WHERE container_id = ?1",
            params![container.container_id],
            |r| r.get(0),
        )?;
        let tracefile_id = tracefile_id(tx, &mut self.tracefile_ids, &window)?;
        if self.config.announce {
            println!(
                "ctrace: tracing container {} ({}) into {}",
                container.name,
                container.short_id(),
                self.config.data_dir.join(&window).display()
            );
        }
        let mut traced = Traced {
            container: Arc::clone(&container),
            row,
            window,
            tracefile_id,
        };
        let waiting = match self.cgroups.remove(&container.cgroup_id) {
            Some(CgroupState::Pending(w)) => w,
            _ => Vec::new(),
        };
        for s in &waiting {
            record(
                tx,
                &self.clock,
                &mut self.open_intervals,
                self.max_gap_ms,
                &mut traced,
                s,
            )?;
        }
        self.dirty.insert(traced.window.clone());
        self.cgroups
            .insert(container.cgroup_id, CgroupState::Traced(traced));
        Ok(())
    }

    /// A label like `app-%Y-W%V` names a new file when the window rolls over: start it, and
    /// reset the cgroup's sightings so what is used in the new window is seen again.
    fn roll_windows(&mut self, conn: &Connection) {
        let now = Local::now();
        let mut rolled = Vec::new();
        for (cgroup_id, state) in &self.cgroups {
            if let CgroupState::Traced(t) = state {
                if let Ok(window) = t.container.pattern.expand(&now) {
                    if window != t.window {
                        rolled.push((*cgroup_id, window));
                    }
                }
            }
        }
        for (cgroup_id, window) in rolled {
            let Ok(id) = tracefile_id(conn, &mut self.tracefile_ids, &window) else {
                continue;
            };
            if let Some(CgroupState::Traced(t)) = self.cgroups.get_mut(&cgroup_id) {
                t.window = window.clone();
                t.tracefile_id = id;
                self.dirty.insert(window);
                let _ = self.to_reader.send(ToReader::Reset { cgroup_id });
            }
        }
    }

    fn write_tracefiles(&mut self, conn: &Connection) {
        for path in std::mem::take(&mut self.dirty) {
            match materialize(conn, &path, self.config.runc) {
                Ok(tracefile) => {
                    if let Err(e) = label::write_inside(
                        &self.config.data_dir,
                        &path,
                        tracefile.render().as_bytes(),
                    ) {
                        eprintln!("ctrace: error: writing Tracefile: {e}");
                    }
                }
                Err(e) => {
                    eprintln!("ctrace: error: reading Tracefile `{path}` from the store: {e}")
                }
            }
        }
    }
}

fn tracefile_id(
    conn: &Connection,
    cache: &mut HashMap<String, i64>,
    path: &str,
) -> rusqlite::Result<i64> {
    if let Some(id) = cache.get(path) {
        return Ok(*id);
    }
    conn.execute(
        "INSERT OR IGNORE INTO tracefiles (path) VALUES (?1)",
        params![path],
    )?;
    let id = conn.query_row(
        "SELECT id FROM tracefiles WHERE path = ?1",
        params![path],
        |r| r.get(0),
    )?;
    cache.insert(path.to_string(), id);
    Ok(id)
}

/// Stores one sighting: extends the item's interval when it was also seen in the previous
/// epoch, or starts a new one.
fn record(
    tx: &Transaction<'_>,
    clock: &BootClock,
    open: &mut HashMap<IntervalKey, (i64, i64)>,
    max_gap_ms: i64,
    traced: &mut Traced,
    s: &Sighting,
) -> rusqlite::Result<()> {
    let at = clock.to_unix_ms(s.boot_ns);
    let key = IntervalKey {
        container: traced.row,
        tracefile: traced.tracefile_id,
        item: s.item,
        phase: s.phase,
    };
    let (kind, abi, nr) = kind_and_abi(s.item);
    let abi_name = abi.map(Abi::name);
    let previous = match open.get(&key) {
        Some(p) => Some(*p),
        None => tx
            .prepare_cached(
                "SELECT id, last_seen FROM sightings WHERE container = ?1 AND tracefile = ?2 \
                 AND kind = ?3 AND abi IS ?4 AND nr = ?5 AND init = ?6 \
                 ORDER BY last_seen DESC LIMIT 1",
            )?
            .query_row(
                params![
                    key.container,
                    key.tracefile,
                    kind,
                    abi_name,
                    nr,
                    s.phase.store_code()
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?,
    };
    match previous {
        Some((row, last_seen)) if at - last_seen <= max_gap_ms => {
            let last = at.max(last_seen);
            tx.prepare_cached(
                "UPDATE sightings SET last_seen = ?1, epochs = epochs + 1 WHERE id = ?2",
            )?
            .execute(params![last, row])?;
            open.insert(key, (row, last));
        }
        _ => {
            tx.prepare_cached(
                "INSERT INTO sightings (container, tracefile, kind, abi, nr, name, init, \
                 first_seen, last_seen, pid, comm) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)",
            )?
            .execute(params![
                key.container,
                key.tracefile,
                kind,
                abi_name,
                nr,
                item_name(s.item),
                s.phase.store_code(),
                at,
                s.pid,
                s.comm
            ])?;
            open.insert(key, (tx.last_insert_rowid(), at));
        }
    }
    Ok(())
}

/// A Tracefile from the store: everything recorded under that file name.
pub fn materialize(conn: &Connection, path: &str, runc: bool) -> rusqlite::Result<Tracefile> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT s.kind, s.abi, s.name FROM sightings s \
         JOIN tracefiles t ON t.id = s.tracefile \
         WHERE t.path = ?1 AND s.kind IN ('syscall', 'cap_granted') AND (s.init = 0 OR ?2)",
    )?;
    let mut rows = stmt.query(params![path, runc])?;
    let mut out = Tracefile::default();
    while let Some(row) = rows.next()? {
        let kind: String = row.get(0)?;
        let abi: Option<String> = row.get(1)?;
        let name: String = row.get(2)?;
        match (kind.as_str(), abi.and_then(|a| a.parse::<Abi>().ok())) {
            ("syscall", Some(abi)) if names::syscall_number(abi, &name).is_some() => {
                out.add_syscall(abi, &name)
            }
            ("cap_granted", _) => out.add_capability(&name),
            _ => eprintln!(
                "ctrace: warning: `{name}` has no name in its table; left out of `{path}`"
            ),
        }
    }
    Ok(out)
}

#[allow(dead_code)]
fn local_from_ms(ms: i64) -> chrono::DateTime<Local> {
    Local
        .timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Local::now)
}
