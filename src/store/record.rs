//! Storing first sightings as sets (see migrations/001_initial.sql, table `runs`).
//!
//! A [`Sheet`] holds, for one container and Tracefile, a group per (class, phase): the items
//! sighted in the current epoch, the two epochs before (to tell continued use from a new start),
//! the runs that the current epoch may extend, and the first sightings not yet written. Items are
//! aggregated in memory and written once per batch and group (one `runs` row, one
//! `first_sightings` row), so a batch costs SQLite statements per group, not per sighting.
//!
//! Epochs are `epoch_ms` slots of Unix time. When a group sees its first sighting of a later
//! slot, the slot just ended is closed: every run of the slot before (or the one before that)
//! whose whole set was seen again is extended; what is left stays as the slot's own row, which
//! later slots extend in turn.

use rusqlite::{params, Transaction};

use super::bits::{self, Bits, Class, WORDS};
use crate::abi::Abi;
use crate::kernel::codes::consts::PHASE_COUNT;
use crate::kernel::event::{Phase, Sighting};

const PHASES: usize = PHASE_COUNT as usize;
const GROUPS: usize = Class::COUNT * PHASES;
/// Epochs a run may miss and still be extended (the gap rule of per-item intervals).
const MAX_GAP_SLOTS: i64 = 2;

/// A group's place among its class's: the phase's store code.
fn phase_index(p: Phase) -> usize {
    p.store_code() as usize
}

fn phase_from_code(code: i64) -> Phase {
    Phase::from_store_code(code).unwrap_or(Phase::App)
}

/// A stored run that the next slots may extend.
#[derive(Debug, Clone, Copy)]
struct Run {
    id: i64,
    bits: Bits,
    last_slot: i64,
}

#[derive(Debug, Clone)]
struct Group {
    class: Class,
    phase: Phase,
    slot: i64,
    seen: Bits,
    prev1: Bits,
    prev2: Bits,
    /// The current slot's row: its id once inserted, first and last sighting.
    cur_id: Option<i64>,
    cur_first: i64,
    cur_last: i64,
    cur_dirty: bool,
    open: Vec<Run>,
    /// First sightings of new intervals not yet written: nr, unix ms, pid, comm.
    firsts: Vec<(u32, i64, u32, String)>,
}

impl Group {
    fn new(class: Class, phase: Phase, slot: i64) -> Group {
        Group {
            class,
            phase,
            slot,
            seen: Bits::default(),
            prev1: Bits::default(),
            prev2: Bits::default(),
            cur_id: None,
            cur_first: i64::MAX,
            cur_last: i64::MIN,
            cur_dirty: false,
            open: Vec::new(),
            firsts: Vec::new(),
        }
    }

    /// Ends the current slot: extends the runs whose whole set it saw again, keeps the rest
    /// as the slot's own run.
    fn close_slot(&mut self, tx: &Transaction<'_>, ids: (i64, i64)) -> rusqlite::Result<()> {
        self.flush(tx, ids)?;
        let slot = self.slot;
        let mut covered = Bits::default();
        if !self.seen.is_empty() {
            for run in &mut self.open {
                if run.last_slot < slot
                    && run.last_slot >= slot - MAX_GAP_SLOTS
                    && run.bits.is_subset(&self.seen)
                {
                    tx.prepare_cached(
                        "UPDATE runs SET last_seen = max(last_seen, ?1), epochs = epochs + 1 \
                         WHERE id = ?2",
                    )?
                    .execute(params![self.cur_last, run.id])?;
                    run.last_slot = slot;
                    covered = covered.union(&run.bits);
                }
            }
        }
        let rest = self.seen.minus(&covered);
        match (self.cur_id, rest.is_empty()) {
            (Some(id), true) => {
                tx.prepare_cached("DELETE FROM runs WHERE id = ?1")?
                    .execute([id])?;
            }
            (Some(id), false) => {
                if rest != self.seen {
                    update_bits(tx, id, &rest, self.cur_first, self.cur_last)?;
                }
                self.open.push(Run {
                    id,
                    bits: rest,
                    last_slot: slot,
                });
            }
            // Flushed above: a slot that saw anything has its row.
            (None, _) => {}
        }
        self.open
            .retain(|r| r.last_slot >= slot + 1 - MAX_GAP_SLOTS && !r.bits.is_empty());
        self.cur_id = None;
        self.cur_dirty = false;
        self.cur_first = i64::MAX;
        self.cur_last = i64::MIN;
        Ok(())
    }

    fn advance(&mut self, slot: i64) {
        (self.prev2, self.prev1) = match slot - self.slot {
            1 => (self.prev1, self.seen),
            2 => (self.seen, Bits::default()),
            _ => (Bits::default(), Bits::default()),
        };
        self.seen = Bits::default();
        self.slot = slot;
    }

    fn flush(&mut self, tx: &Transaction<'_>, ids: (i64, i64)) -> rusqlite::Result<()> {
        if self.cur_dirty {
            match self.cur_id {
                Some(id) => update_bits(tx, id, &self.seen, self.cur_first, self.cur_last)?,
                None => self.cur_id = Some(insert_run_for(tx, self, ids, &self.seen)?),
            }
            self.cur_dirty = false;
        }
        if !self.firsts.is_empty() {
            let items = serde_json::to_string(&self.firsts).unwrap_or_else(|_| "[]".into());
            tx.prepare_cached(
                "INSERT INTO first_sightings (container, tracefile, kind, abi, init, items) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                ids.0,
                ids.1,
                self.class.kind(),
                self.class.abi(),
                self.phase.store_code(),
                items
            ])?;
            self.firsts.clear();
        }
        Ok(())
    }
}

fn update_bits(
    tx: &Transaction<'_>,
    id: i64,
    bits: &Bits,
    first: i64,
    last: i64,
) -> rusqlite::Result<()> {
    let w = bits.words();
    tx.prepare_cached(
        "UPDATE runs SET w0 = ?1, w1 = ?2, w2 = ?3, w3 = ?4, w4 = ?5, w5 = ?6, w6 = ?7, w7 = ?8, \
         first_seen = ?9, last_seen = ?10 WHERE id = ?11",
    )?
    .execute(params![
        w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], first, last, id
    ])?;
    Ok(())
}

fn insert_run_for(
    tx: &Transaction<'_>,
    g: &Group,
    (container, tracefile): (i64, i64),
    bits: &Bits,
) -> rusqlite::Result<i64> {
    let w = bits.words();
    tx.prepare_cached(&format!(
        "INSERT INTO runs (container, tracefile, kind, abi, init, first_seen, last_seen, \
         {}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        bits::WORD_COLUMNS
    ))?
    .execute(params![
        container,
        tracefile,
        g.class.kind(),
        g.class.abi(),
        g.phase.store_code(),
        g.cur_first,
        g.cur_last,
        w[0],
        w[1],
        w[2],
        w[3],
        w[4],
        w[5],
        w[6],
        w[7]
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Items this build can name, per space (x86_64, i386, x32, capability).
static NAMED: std::sync::LazyLock<[Bits; 4]> = std::sync::LazyLock::new(|| {
    let mut named = [Bits::default(); 4];
    for (i, abi) in Abi::ALL.into_iter().enumerate() {
        for nr in 0..(WORDS as u32 * 64) {
            if crate::names::syscall_name(abi, nr).is_some() {
                named[i].insert(nr);
            }
        }
    }
    for cap in crate::names::capabilities() {
        named[3].insert(u32::from(cap.index()));
    }
    named
});

fn named(class: Class, nr: u32) -> bool {
    NAMED[class.index().min(3)].contains(nr)
}

/// What one container recorded into one Tracefile (see the module notes).
#[derive(Debug, Clone)]
pub struct Sheet {
    container: i64,
    tracefile: i64,
    epoch_ms: i64,
    groups: Vec<Option<Group>>,
    dirty: bool,
}

impl Sheet {
    /// A sheet that continues the runs of this container and Tracefile stored in the last
    /// epochs (a restarted daemon or container extends them instead of starting new ones).
    pub fn load(
        tx: &Transaction<'_>,
        container: i64,
        tracefile: i64,
        epoch_ms: i64,
        now_ms: i64,
    ) -> rusqlite::Result<Sheet> {
        let epoch_ms = epoch_ms.max(1);
        let mut sheet = Sheet {
            container,
            tracefile,
            epoch_ms,
            groups: (0..GROUPS).map(|_| None).collect(),
            dirty: false,
        };
        let now_slot = now_ms.div_euclid(epoch_ms);
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT id, kind, abi, init, first_seen, last_seen, {} FROM runs \
             WHERE container = ?1 AND tracefile = ?2 AND last_seen >= ?3 ORDER BY id",
            bits::WORD_COLUMNS
        ))?;
        let mut rows = stmt.query(params![
            container,
            tracefile,
            (now_slot - MAX_GAP_SLOTS).saturating_mul(epoch_ms)
        ])?;
        while let Some(row) = rows.next()? {
            let kind: String = row.get(1)?;
            let abi: Option<String> = row.get(2)?;
            let Some(class) = Class::from_columns(&kind, abi.as_deref()) else {
                continue;
            };
            let phase = phase_from_code(row.get(3)?);
            let (id, first, last): (i64, i64, i64) = (row.get(0)?, row.get(4)?, row.get(5)?);
            let set = Bits::from_row(row, 6)?;
            let g = sheet.groups[class.index() * PHASES + phase_index(phase)]
                .get_or_insert_with(|| Group::new(class, phase, now_slot));
            let last_slot = last.div_euclid(epoch_ms);
            if last_slot >= now_slot && g.cur_id.is_none() {
                // The current epoch's row, written before a restart: keep filling it.
                (g.cur_id, g.seen, g.cur_first, g.cur_last) = (Some(id), set, first, last);
            } else {
                g.prev1 = g.prev1.union(&set);
                g.open.push(Run {
                    id,
                    bits: set,
                    last_slot,
                });
            }
        }
        Ok(sheet)
    }

    pub fn tracefile(&self) -> i64 {
        self.tracefile
    }

    /// Holds sightings not yet written.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Takes one first sighting at `at_ms` (Unix ms). Writes only when it ends an epoch.
    pub fn record(
        &mut self,
        tx: &Transaction<'_>,
        s: &Sighting,
        at_ms: i64,
    ) -> rusqlite::Result<()> {
        let (class, nr) = Class::of(s.item);
        let slot = at_ms.div_euclid(self.epoch_ms);
        let ids = (self.container, self.tracefile);
        let g = self.groups[class.index() * PHASES + phase_index(s.phase)]
            .get_or_insert_with(|| Group::new(class, s.phase, slot));
        if slot > g.slot {
            g.close_slot(tx, ids)?;
            g.advance(slot);
        }
        if !g.seen.insert(nr) {
            return Ok(()); // again in this epoch (a reset), or out of range
        }
        g.cur_first = g.cur_first.min(at_ms);
        g.cur_last = g.cur_last.max(at_ms);
        g.cur_dirty = true;
        if !g.prev1.contains(nr) && !g.prev2.contains(nr) {
            if !named(class, nr) {
                bits::store_unknown_name(tx, class, nr)?;
            }
            g.firsts.push((nr, at_ms, s.pid, s.comm.clone()));
        }
        self.dirty = true;
        Ok(())
    }

    /// Writes what changed since the last flush. True when anything was written.
    pub fn flush(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<bool> {
        if !std::mem::take(&mut self.dirty) {
            return Ok(false);
        }
        let ids = (self.container, self.tracefile);
        for g in self.groups.iter_mut().flatten() {
            g.flush(tx, ids)?;
        }
        Ok(true)
    }

    /// Closes epochs that ended before `now_ms` (less a grace for sightings still on their
    /// way), so that a container that went quiet has its runs coalesced too.
    pub fn close_ended(&mut self, tx: &Transaction<'_>, now_ms: i64) -> rusqlite::Result<()> {
        let now_slot = (now_ms - 2_000).div_euclid(self.epoch_ms);
        let ids = (self.container, self.tracefile);
        for g in self.groups.iter_mut().flatten() {
            if g.slot < now_slot && (g.cur_id.is_some() || g.cur_dirty || !g.open.is_empty()) {
                g.close_slot(tx, ids)?;
                g.advance(now_slot);
            }
        }
        Ok(())
    }
}
