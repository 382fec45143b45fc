//! The writer thread: sole owner of the SQLite connection. Applies batches in one transaction
//! each (size or time bound), aggregating sightings into sets in memory (`store::record`), and
//! rewrites dirty Tracefiles from the store at most every `REWRITE_EVERY`.

mod rollback;
mod tracefiles;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rusqlite::{Connection, Transaction};

use crate::kernel::event::Sighting;
use crate::pipeline::clock::BootClock;
use crate::pipeline::store_faults::FaultLog;
use crate::pipeline::{ReaderControl, ToWriter};
use crate::registry::Container;
use crate::store::record::Sheet;
use crate::store::{containers, refusals};

/// A first sighting is committed within this (design: within 1 s).
const FLUSH_EVERY: Duration = Duration::from_millis(200);
pub const BATCH_MAX: usize = 50_000;
/// Tracefile windows (strftime) and ended epochs are checked this often.
const TICK_EVERY: Duration = Duration::from_secs(1);
/// How long a stopping daemon keeps retrying a store that refuses its last batch.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(30);
/// A dirty Tracefile is rewritten at most this often (design: within 2 s of a sighting).
const REWRITE_EVERY: Duration = Duration::from_millis(250);

pub struct WriterConfig {
    pub data_dir: PathBuf,
    /// Include runtime-init sightings in Tracefiles.
    pub runc: bool,
    pub epoch: Duration,
    /// Print a line when tracing of a container starts and stops.
    pub announce: bool,
    /// The store's file: no label may name it (or its -wal, -shm, -journal, .lock).
    pub store: Option<PathBuf>,
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

#[derive(Clone)]
struct Traced {
    container: Arc<Container>,
    row: i64,
    window: String,
    sheet: Sheet,
    /// When Docker said it stopped; its entry goes after `FORGET_AFTER`.
    stopped: Option<Instant>,
}

#[derive(Clone)]
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
    faults: FaultLog,
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
    /// The cgroups' states before the transaction in progress changed them (not for the
    /// sheets: those are loaded again from the store after a rollback).
    undo: HashMap<u64, Option<CgroupState>>,
    /// A transaction was rolled back: every sheet is loaded again before the next one.
    reload: bool,
    /// Tracefiles whose last write failed (said once until one succeeds).
    failing_writes: HashSet<String>,
    /// Events received per container row in the transaction in progress.
    received: HashMap<i64, i64>,
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
                undo: HashMap::new(),
                reload: false,
                failing_writes: HashSet::new(),
                received: HashMap::new(),
            },
            faults: FaultLog::default(),
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
            // A failed commit keeps its batch: nothing moves on until the store takes it
            // (at shutdown, for SHUTDOWN_PATIENCE at most).
            let waited = Instant::now();
            loop {
                match self.apply_all(&batch) {
                    Ok(()) => {
                        self.faults.succeeded();
                        break;
                    }
                    Err(e) => {
                        let delay = self.faults.failed("committing to the store", &e);
                        self.state.roll_back();
                        if shutdown && waited.elapsed() > SHUTDOWN_PATIENCE {
                            tracing::error!(
                                "stopping with the store still failing: the last \
                                 {} messages are not recorded",
                                batch.len()
                            );
                            break;
                        }
                        std::thread::sleep(delay);
                    }
                }
            }
            batch.clear();
            if self.state.last_tick.elapsed() >= TICK_EVERY {
                self.state.last_tick = Instant::now();
                if let Err(e) = self.tick() {
                    self.faults.failed("closing epochs in the store", &e);
                    self.state.roll_back();
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
        self.apply_all(&batch)
    }

    /// Applies messages in one transaction; on an error the caller rolls the state back.
    fn apply_all(&mut self, batch: &[ToWriter]) -> rusqlite::Result<()> {
        if batch.is_empty() && !self.state.reload {
            return Ok(());
        }
        self.state.undo.clear();
        self.state.received.clear();
        let tx = self.conn.transaction()?;
        self.state.reload_sheets(&tx)?;
        for msg in batch {
            self.state.apply(&tx, msg)?;
        }
        self.state.flush(&tx)?;
        tx.commit()
    }

    /// Rolls Tracefile windows over and closes ended epochs, in one transaction.
    fn tick(&mut self) -> rusqlite::Result<()> {
        self.state.undo.clear();
        let tx = self.conn.transaction()?;
        self.state.reload_sheets(&tx)?;
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

    fn record(&mut self, tx: &Transaction<'_>, s: &Sighting) -> rusqlite::Result<()> {
        let cgroup_id = s.cgroup_id;
        let at_ms = self.clock.to_unix_ms(s.boot_ns);
        match self.cgroups.get_mut(&cgroup_id) {
            Some(CgroupState::Traced(t)) => {
                let was_dirty = t.sheet.is_dirty();
                t.sheet.record(tx, s, at_ms)?;
                *self.received.entry(t.row).or_default() += 1;
                if !was_dirty && t.sheet.is_dirty() {
                    self.touched.push(cgroup_id);
                }
            }
            Some(CgroupState::Pending(_)) => {
                self.keep_for_undo(cgroup_id);
                if let Some(CgroupState::Pending(waiting)) = self.cgroups.get_mut(&cgroup_id) {
                    waiting.push(s.clone());
                }
            }
            Some(CgroupState::Ignored(_)) => {}
            None => {
                self.keep_for_undo(cgroup_id);
                self.cgroups
                    .insert(cgroup_id, CgroupState::Pending(vec![s.clone()]));
            }
        }
        Ok(())
    }

    fn apply(&mut self, tx: &Transaction<'_>, msg: &ToWriter) -> rusqlite::Result<()> {
        match msg {
            ToWriter::Sighting(s) => self.record(tx, s)?,
            ToWriter::NewCgroup(c) => {
                self.keep_for_undo(c.cgroup_id);
                self.cgroups
                    .insert(c.cgroup_id, CgroupState::Pending(Vec::new()));
            }
            ToWriter::Resolved(container) => {
                self.keep_for_undo(container.cgroup_id);
                self.resolve(tx, Arc::clone(container))?
            }
            ToWriter::Ignored { cgroup_id } => {
                self.keep_for_undo(*cgroup_id);
                self.cgroups
                    .insert(*cgroup_id, CgroupState::Ignored(Instant::now()));
            }
            ToWriter::Stopped { cgroup_id, at_ms } => {
                let (cgroup_id, at_ms) = (*cgroup_id, *at_ms);
                self.keep_for_undo(cgroup_id);
                if let Some(CgroupState::Traced(t)) = self.cgroups.get_mut(&cgroup_id) {
                    t.stopped = Some(Instant::now());
                    containers::mark_stopped(tx, t.row, at_ms)?;
                    // Its final Tracefile is written with this batch, not throttled.
                    self.written.remove(&t.window);
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
            ToWriter::Meta(facts) => {
                for (key, value) in facts {
                    match value {
                        Some(value) => containers::set_meta(tx, key, value)?,
                        None => containers::delete_meta(tx, key)?,
                    }
                }
            }
            ToWriter::Refusals {
                seccomp,
                errnos,
                allowed,
            } => {
                refusals::save(tx, seccomp, errnos, allowed, crate::store::now_ms())?;
                self.dirty.extend(refusals::tracefiles_of(tx, seccomp)?);
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
            self.keep_for_undo(cgroup_id);
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
        containers::add_received(tx, self.received.drain())?;
        for cgroup_id in std::mem::take(&mut self.touched) {
            if let Some(CgroupState::Traced(t)) = self.cgroups.get_mut(&cgroup_id) {
                if t.sheet.flush(tx)? && !self.dirty.contains(&t.window) {
                    self.dirty.insert(t.window.clone());
                }
            }
        }
        Ok(())
    }
}
