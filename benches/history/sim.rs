//! The history bench's workload and its simulation of the writer's set rows.

use std::collections::BTreeMap;

use ctrace::abi::Abi;
use ctrace::kernel::event::Item;
use ctrace::store::bits::{Bits, Class};

pub const EPOCH_MS: i64 = 3_600_000;
/// The writer's rule (src/store/record.rs): a set seen again within 2 epochs is extended.
const MAX_GAP_SLOTS: i64 = 2;

/// An item's use: in which epochs it is sighted.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Schedule {
    EveryEpoch,
    /// Once a day, in this hour.
    Daily(i64),
}

impl Schedule {
    pub fn seen(self, epoch: i64) -> bool {
        match self {
            Schedule::EveryEpoch => true,
            Schedule::Daily(hour) => epoch % 24 == hour,
        }
    }
}

pub struct ItemSpec {
    pub item: Item,
    pub schedule: Schedule,
    /// When in its epoch it is first sighted (ms after the epoch's reset).
    pub offset_ms: i64,
}

pub fn workload(daily: bool) -> Vec<ItemSpec> {
    let mut v: Vec<ItemSpec> = (0..60u32)
        .map(|nr| ItemSpec {
            item: Item::Syscall {
                abi: Abi::X86_64,
                nr,
            },
            schedule: Schedule::EveryEpoch,
            offset_ms: i64::from(nr) * 500,
        })
        .collect();
    for cap in [0u32, 1, 21] {
        v.push(ItemSpec {
            item: Item::CapGranted(cap),
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
                schedule: Schedule::Daily(3),
                offset_ms: 1_000,
            });
        }
    }
    v
}

/// A stored set: its items, first and last sighting (ms from the start), epochs counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub bits: Bits,
    pub first: i64,
    pub last: i64,
    pub epochs: i64,
    last_slot: i64,
}

/// What the writer stores for one class over `epochs` epochs: the set rows, and the first
/// sightings (nr, ms from the start) grouped per epoch. The last epoch is still open, as it is
/// in a running daemon: its row holds everything it saw.
pub fn simulate(specs: &[&ItemSpec], epochs: i64) -> (Vec<Row>, Vec<Vec<(u32, i64)>>) {
    let mut rows: Vec<Row> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut firsts = Vec::new();
    let (mut prev1, mut prev2) = (Bits::default(), Bits::default());
    for e in 0..epochs {
        let (mut seen, mut new) = (Bits::default(), Vec::new());
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for s in specs.iter().filter(|s| s.schedule.seen(e)) {
            let nr = Class::of(s.item).1;
            let at = e * EPOCH_MS + s.offset_ms;
            seen.insert(nr);
            (first, last) = (first.min(at), last.max(at));
            if !prev1.contains(nr) && !prev2.contains(nr) {
                new.push((nr, at));
            }
        }
        if !new.is_empty() {
            firsts.push(new);
        }
        (prev2, prev1) = (prev1, seen);
        if seen.is_empty() {
            continue;
        }
        let mut rest = seen;
        if e + 1 < epochs {
            for &i in &open {
                let r = &mut rows[i];
                if r.last_slot < e && r.last_slot >= e - MAX_GAP_SLOTS && r.bits.is_subset(&seen) {
                    (r.last, r.epochs, r.last_slot) = (r.last.max(last), r.epochs + 1, e);
                    rest = rest.minus(&r.bits);
                }
            }
        }
        if !rest.is_empty() {
            open.push(rows.len());
            rows.push(Row {
                bits: rest,
                first,
                last,
                epochs: 1,
                last_slot: e,
            });
        }
        open.retain(|&i| rows[i].last_slot >= e - 1);
    }
    (rows, firsts)
}

/// The workload's classes: (kind, abi, the items of that class).
pub fn classes(specs: &[ItemSpec]) -> Vec<(Class, Vec<&ItemSpec>)> {
    let mut by: BTreeMap<Class, Vec<&ItemSpec>> = BTreeMap::new();
    for s in specs {
        by.entry(Class::of(s.item).0).or_default().push(s);
    }
    by.into_iter().collect()
}
