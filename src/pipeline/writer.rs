//! The writer thread: sole owner of the SQLite connection. Applies batches in one transaction
//! each (size or time bound), aggregating sightings into sets in memory (`store::record`), and
//! rewrites dirty Tracefiles from the store at most every `REWRITE_EVERY`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Local;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use rusqlite::{Connection, Transaction};

use crate::kernel::event::Sighting;
use crate::pipeline::clock::BootClock;
use crate::pipeline::{ReaderControl, ToReader, ToWriter};
use crate::registry::Container;
use crate::store::materialize::materialize;
use crate::store::record::Sheet;
use crate::store::{containers, refusals};
use crate::tracefile::label;

/// A first sighting is committed within this (design: within 1 s).
const FLUSH_EVERY: Duration = Duration::from_millis(200);
pub const BATCH_MAX: usize = 50_000;
/// Tracefile windows (strftime) and ended epochs are checked this often.
const TICK_EVERY: Duration = Duration::from_secs(1);
/// A dirty Tracefile is rewritten at most this often (design: within 2 s of a sighting).
const REWRITE_EVERY: Duration = Duration::from_millis(250);

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
    to_reader: ReaderControl,
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
    sheet: Sheet,
    /// When Docker said it stopped; its entry goes after `FORGET_AFTER`.
    stopped: Option<Instant>,
}

enum CgroupState {
    /// Not yet known to be a labelled container: its sightings wait here.
    Pending(Vec<Sighting>),
    Traced(Box<Traced>),
    /// Not ours (since then): late sightings are dropped until it is forgotten.
    Ignored(Instant),
}

/// A stopped or ignored cgroup is forgotten this long after: long enough for the sightings
/// still in the pipeline when Docker's event came (well under a second) to arrive.
const FORGET_AFTER: Duration = Duration::from_secs(10);

pub struct Writer {
    conn: Connection,
    state: State,
}

/// Everything the writer knows besides its connection.
struct State {
    config: WriterConfig,
    epoch_ms: i64,
    to_reader: ReaderControl,
    clock: BootClock,
    cgroups: HashMap<u64, CgroupState>,
    /// Cgroups whose sheet holds sightings not yet written.
    touched: Vec<u64>,
    tracefile_ids: HashMap<String, i64>,
    /// Tracefiles to rewrite, and when each was last written.
    dirty: HashSet<String>,
    written: HashMap<String, Instant>,
    last_tick: Instant,
}

impl Writer {
    pub fn new(conn: Connection, config: WriterConfig, to_reader: ReaderControl) -> Writer {
        Writer {
            conn,
            state: State {
                epoch_ms: i64::try_from(config.epoch.as_millis())
                    .unwrap_or(i64::MAX / 4)
                    .max(1),
                config,
                to_reader,
                clock: BootClock::new(),
                cgroups: HashMap::new(),
                touched: Vec::new(),
                tracefile_ids: HashMap::new(),
                dirty: HashSet::new(),
                written: HashMap::new(),
                last_tick: Instant::now(),
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
            if self.state.last_tick.elapsed() >= TICK_EVERY {
                self.state.last_tick = Instant::now();
                if let Err(e) = self.tick() {
                    eprintln!("ctrace: error: closing epochs in the store: {e}");
                }
            }
            if shutdown {
                let windows: Vec<String> = self.state.traced().map(|t| t.window.clone()).collect();
                self.state.dirty.extend(windows);
                self.state.write_tracefiles(&self.conn, true);
                return;
            }
            self.state.write_tracefiles(&self.conn, false);
        }
    }

    /// Applies messages in one transaction. Public for the benchmarks.
    pub fn apply_batch(&mut self, batch: Vec<ToWriter>) -> rusqlite::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        for msg in batch {
            self.state.apply(&tx, msg)?;
        }
        self.state.flush(&tx)?;
        tx.commit()
    }

    /// Rolls Tracefile windows over and closes ended epochs, in one transaction.
    fn tick(&mut self) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        self.state.roll_windows(&tx)?;
        let now = crate::store::now_ms();
        for state in self.state.cgroups.values_mut() {
            if let CgroupState::Traced(t) = state {
                t.sheet.close_ended(&tx, now)?;
            }
        }
        self.state.forget_gone(&tx)?;
        tx.commit()
    }
}

impl State {
    fn traced(&self) -> impl Iterator<Item = &Traced> {
        self.cgroups.values().filter_map(|s| match s {
            CgroupState::Traced(t) => Some(t.as_ref()),
            _ => None,
        })
    }

    fn record(&mut self, tx: &Transaction<'_>, s: Sighting) -> rusqlite::Result<()> {
        let cgroup_id = s.cgroup_id;
        let at_ms = self.clock.to_unix_ms(s.boot_ns);
        match self.cgroups.get_mut(&cgroup_id) {
            Some(CgroupState::Traced(t)) => {
                let was_dirty = t.sheet.is_dirty();
                t.sheet.record(tx, s, at_ms)?;
                if !was_dirty && t.sheet.is_dirty() {
                    self.touched.push(cgroup_id);
                }
            }
            Some(CgroupState::Pending(waiting)) => waiting.push(s),
            Some(CgroupState::Ignored(_)) => {}
            None => {
                self.cgroups
                    .insert(cgroup_id, CgroupState::Pending(vec![s]));
            }
        }
        Ok(())
    }

    fn apply(&mut self, tx: &Transaction<'_>, msg: ToWriter) -> rusqlite::Result<()> {
        match msg {
            ToWriter::Sighting(s) => self.record(tx, s)?,
            ToWriter::NewCgroup(c) => {
                self.cgroups
                    .insert(c.cgroup_id, CgroupState::Pending(Vec::new()));
            }
            ToWriter::Resolved(container) => self.resolve(tx, container)?,
            ToWriter::Ignored { cgroup_id } => {
                self.cgroups
                    .insert(cgroup_id, CgroupState::Ignored(Instant::now()));
            }
            ToWriter::Stopped { cgroup_id, at_ms } => {
                if let Some(CgroupState::Traced(t)) = self.cgroups.get_mut(&cgroup_id) {
                    t.stopped = Some(Instant::now());
                    containers::mark_stopped(tx, t.row, at_ms)?;
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
                containers::set_meta(tx, "ringbuf_misses", &n.to_string())?;
            }
            ToWriter::KernelCounter { key, value } => {
                containers::set_meta(tx, key, &value.to_string())?;
            }
            ToWriter::Refusals { seccomp, errnos } => {
                refusals::save(tx, &seccomp, &errnos, crate::store::now_ms())?;
                self.dirty.extend(refusals::tracefiles_of(tx, &seccomp)?);
            }
            ToWriter::Shutdown => {}
        }
        Ok(())
    }

    /// Drops cgroups stopped or ignored more than `FORGET_AFTER` ago (after writing what they
    /// still held), so a long-running daemon's memory follows the containers alive.
    fn forget_gone(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let gone: Vec<u64> = self
            .cgroups
            .iter()
            .filter(|(_, state)| match state {
                CgroupState::Traced(t) => t.stopped.is_some_and(|at| at.elapsed() > FORGET_AFTER),
                CgroupState::Ignored(at) => at.elapsed() > FORGET_AFTER,
                CgroupState::Pending(_) => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for cgroup_id in gone {
            if let Some(CgroupState::Traced(mut t)) = self.cgroups.remove(&cgroup_id) {
                if t.sheet.flush(tx)? {
                    self.dirty.insert(t.window.clone());
                }
            }
        }
        Ok(())
    }

    /// Writes every sheet with new sightings; their Tracefiles become dirty.
    fn flush(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        for cgroup_id in std::mem::take(&mut self.touched) {
            if let Some(CgroupState::Traced(t)) = self.cgroups.get_mut(&cgroup_id) {
                if t.sheet.flush(tx)? && !self.dirty.contains(&t.window) {
                    self.dirty.insert(t.window.clone());
                }
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
                    .insert(container.cgroup_id, CgroupState::Ignored(Instant::now()));
                let _ = self.to_reader.send(ToReader::Untrack {
                    cgroup_id: container.cgroup_id,
                });
                return Ok(());
            }
        };
        let now = crate::store::now_ms();
        let row = containers::upsert(tx, &container, now)?;
        let tracefile_id = containers::tracefile_id(tx, &mut self.tracefile_ids, &window)?;
        if self.config.announce {
            println!(
                "ctrace: tracing container {} ({}) into {}",
                container.name,
                container.short_id(),
                self.config.data_dir.join(&window).display()
            );
        }
        let sheet = Sheet::load(tx, row, tracefile_id, self.epoch_ms, now)?;
        let waiting = match self.cgroups.insert(
            container.cgroup_id,
            CgroupState::Traced(Box::new(Traced {
                container: Arc::clone(&container),
                row,
                window: window.clone(),
                sheet,
                stopped: None,
            })),
        ) {
            Some(CgroupState::Pending(w)) => w,
            _ => Vec::new(),
        };
        for s in waiting {
            self.record(tx, s)?;
        }
        self.dirty.insert(window);
        Ok(())
    }

    /// A label like `app-%Y-W%V` names a new file when the window rolls over: start it, and
    /// reset the cgroup's sightings so what is used in the new window is seen again.
    fn roll_windows(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let now = Local::now();
        let mut rolled = Vec::new();
        for (cgroup_id, state) in &self.cgroups {
            if let CgroupState::Traced(t) = state {
                // A stopped container starts no new file.
                if t.stopped.is_some() {
                    continue;
                }
                if let Ok(window) = t.container.pattern.expand(&now) {
                    if window != t.window {
                        rolled.push((*cgroup_id, window));
                    }
                }
            }
        }
        let any_rolled = !rolled.is_empty();
        for (cgroup_id, window) in rolled {
            let id = containers::tracefile_id(tx, &mut self.tracefile_ids, &window)?;
            if let Some(CgroupState::Traced(t)) = self.cgroups.get_mut(&cgroup_id) {
                t.sheet.flush(tx)?;
                t.sheet = Sheet::load(tx, t.row, id, self.epoch_ms, crate::store::now_ms())?;
                self.dirty
                    .insert(std::mem::replace(&mut t.window, window.clone()));
                self.dirty.insert(window);
            }
        }
        if any_rolled {
            let _ = self.to_reader.send(ToReader::NewEpoch);
        }
        Ok(())
    }

    /// Rewrites dirty Tracefiles, each at most every `REWRITE_EVERY` unless `all`.
    fn write_tracefiles(&mut self, conn: &Connection, all: bool) {
        let now = Instant::now();
        self.written
            .retain(|_, at| now.duration_since(*at) < REWRITE_EVERY);
        let due: Vec<String> = self
            .dirty
            .iter()
            .filter(|path| all || !self.written.contains_key(*path))
            .cloned()
            .collect();
        for path in due {
            self.dirty.remove(&path);
            self.written.insert(path.clone(), now);
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
