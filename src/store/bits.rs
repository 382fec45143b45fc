//! Item sets as the store keeps them: 512-bit maps (the kernel's bitmap size), one per class —
//! syscalls of one ABI, capabilities granted, capabilities denied — and the names they expand to.

use rusqlite::Connection;

use crate::abi::Abi;
use crate::kernel::event::Item;
use crate::names;

/// Words per set: syscall numbers of every ABI stay below 512 (`CTRACE_SYSCALL_WORDS`).
pub const WORDS: usize = crate::kernel::codes::consts::SYSCALL_WORDS as usize;
/// The store's schema has one column per word (`WORD_COLUMNS`).
const _: () = assert!(
    WORDS == 8,
    "the kernel's bitmap size changed: migrate `runs`"
);

/// The columns of a set in `runs`, in order.
pub const WORD_COLUMNS: &str = "w0, w1, w2, w3, w4, w5, w6, w7";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bits(pub [u64; WORDS]);

impl Bits {
    /// Sets `nr`; false when it was set already or is out of range.
    pub fn insert(&mut self, nr: u32) -> bool {
        let (w, b) = (nr as usize / 64, nr % 64);
        match self.0.get_mut(w) {
            Some(word) if *word & (1 << b) == 0 => {
                *word |= 1 << b;
                true
            }
            _ => false,
        }
    }

    pub fn contains(&self, nr: u32) -> bool {
        self.0
            .get(nr as usize / 64)
            .is_some_and(|w| w & (1 << (nr % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn is_subset(&self, of: &Bits) -> bool {
        self.0.iter().zip(of.0).all(|(a, b)| a & !b == 0)
    }

    pub fn union(mut self, other: &Bits) -> Bits {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }

    pub fn minus(mut self, other: &Bits) -> Bits {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a &= !b;
        }
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(w, word)| {
            (0..64u32)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| w as u32 * 64 + b)
        })
    }

    /// The words as SQLite integers (two's complement).
    pub fn words(&self) -> [i64; WORDS] {
        self.0.map(|w| w as i64)
    }

    /// From the `w0`..`w7` columns starting at `first`.
    pub fn from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Bits> {
        let mut bits = Bits::default();
        for (i, word) in bits.0.iter_mut().enumerate() {
            *word = row.get::<_, i64>(first + i)? as u64;
        }
        Ok(bits)
    }
}

/// What one set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Syscall(Abi),
    CapGranted,
    CapDenied,
}

impl Class {
    pub const COUNT: usize = 5;

    pub fn of(item: Item) -> (Class, u32) {
        match item {
            Item::Syscall { abi, nr } => (Class::Syscall(abi), nr),
            Item::CapGranted(nr) => (Class::CapGranted, nr),
            Item::CapDenied(nr) => (Class::CapDenied, nr),
        }
    }

    pub fn index(self) -> usize {
        match self {
            Class::Syscall(Abi::X86_64) => 0,
            Class::Syscall(Abi::I386) => 1,
            Class::Syscall(Abi::X32) => 2,
            Class::CapGranted => 3,
            Class::CapDenied => 4,
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Class::Syscall(_) => "syscall",
            Class::CapGranted => "cap_granted",
            Class::CapDenied => "cap_denied",
        }
    }

    pub fn abi(self) -> Option<&'static str> {
        match self {
            Class::Syscall(abi) => Some(abi.name()),
            _ => None,
        }
    }

    /// From the `kind` and `abi` columns.
    pub fn from_columns(kind: &str, abi: Option<&str>) -> Option<Class> {
        match (kind, abi) {
            ("syscall", Some(abi)) => abi.parse().ok().map(Class::Syscall),
            ("cap_granted", _) => Some(Class::CapGranted),
            ("cap_denied", _) => Some(Class::CapDenied),
            _ => None,
        }
    }

    /// The item's name as stored: the syscall in its ABI's table, or the capability (net_raw);
    /// numbers without a name get a placeholder such as `x86_64_syscall_999`.
    pub fn name(self, nr: u32) -> String {
        match self {
            Class::Syscall(abi) => names::syscall_name(abi, nr)
                .map(str::to_string)
                .unwrap_or_else(|| format!("{abi}_syscall_{nr}")),
            Class::CapGranted | Class::CapDenied => {
                names::capability_name(nr).unwrap_or_else(|| format!("cap_{nr}"))
            }
        }
    }
}

/// Fills the `names` table from this build's tables, so that the views name every item.
pub fn store_names(conn: &Connection) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    let mut insert =
        tx.prepare_cached("INSERT OR IGNORE INTO names (space, nr, name) VALUES (?1, ?2, ?3)")?;
    for abi in Abi::ALL {
        for nr in 0..(WORDS as u32 * 64) {
            if let Some(name) = names::syscall_name(abi, nr) {
                insert.execute(rusqlite::params![abi.name(), nr, name])?;
            }
        }
    }
    for cap in names::capabilities() {
        insert.execute(rusqlite::params![
            "capability",
            cap.index(),
            names::short_capability_name(&cap)
        ])?;
    }
    drop(insert);
    tx.commit()
}

/// Stores a placeholder name for a number this build cannot name.
pub fn store_unknown_name(conn: &Connection, class: Class, nr: u32) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO names (space, nr, name) VALUES (?1, ?2, ?3)")?
        .execute(rusqlite::params![
            class.abi().unwrap_or("capability"),
            nr,
            class.name(nr)
        ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        let mut a = Bits::default();
        assert!(a.insert(0) && a.insert(63) && a.insert(64) && a.insert(511));
        assert!(!a.insert(63) && !a.insert(512));
        assert_eq!(a.iter().collect::<Vec<_>>(), [0, 63, 64, 511]);
        let mut b = Bits::default();
        b.insert(63);
        assert!(b.is_subset(&a) && !a.is_subset(&b));
        assert_eq!(a.minus(&b).iter().collect::<Vec<_>>(), [0, 64, 511]);
        assert_eq!(a.words()[0], i64::MIN + 1);
    }
}
