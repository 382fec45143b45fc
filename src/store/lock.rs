//! One `ctrace trace` per store and per data directory: an exclusive `flock` on a lock file
//! beside the store (`<db>.lock`) and one inside the data directory (`.ctrace.lock`), held
//! for the daemon's life (the kernel drops it when the process exits, however it exits).
//! The holder writes its pid and start time into the file so that a second daemon can name it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lock file inside a data directory.
pub const DATA_LOCK: &str = ".ctrace.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{what} {path} is in use by another ctrace trace ({owner}); stop it first")]
    Busy {
        what: &'static str,
        path: PathBuf,
        owner: String,
    },
    #[error("locking {what} {path}: lock file {lock}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        lock: PathBuf,
        source: std::io::Error,
    },
    #[error("locking {what} {path}: lock file {lock} is not a regular file (a symbolic link?); remove it")]
    NotAFile {
        what: &'static str,
        path: PathBuf,
        lock: PathBuf,
    },
}

/// A held lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

/// `<db>.lock`, for the store at `db`.
pub fn store_lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Locks the store at `db` (its directory must exist).
pub fn lock_store(db: &Path) -> Result<Lock, LockError> {
    acquire("store", db, store_lock_path(db))
}

/// Locks the data directory `dir` (it must exist).
pub fn lock_data_dir(dir: &Path) -> Result<Lock, LockError> {
    acquire("data directory", dir, dir.join(DATA_LOCK))
}

fn acquire(what: &'static str, path: &Path, lock: PathBuf) -> Result<Lock, LockError> {
    let io = |source| LockError::Io {
        what,
        path: path.to_path_buf(),
        lock: lock.clone(),
        source,
    };
    // Not truncated on open: the current holder's pid is in it until we hold the lock.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&lock);
    let not_a_file = || LockError::NotAFile {
        what,
        path: path.to_path_buf(),
        lock: lock.clone(),
    };
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(not_a_file()),
        Err(e) => return Err(io(e)),
    };
    if !file.metadata().map_err(io)?.is_file() {
        return Err(not_a_file());
    }
    // SAFETY: flock(2) on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(LockError::Busy {
                what,
                path: path.to_path_buf(),
                owner: owner(&mut file),
            });
        }
        return Err(io(err));
    }
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = format!("{} {started}\n", std::process::id());
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    Ok(Lock {
        _file: file,
        path: lock,
    })
}

/// "pid 1234, started 2026-11-29T17:40:00Z" from the holder's lock file. The holder writes
/// it right after locking, so an empty file is read again for a moment.
fn owner(file: &mut File) -> String {
    for _ in 0..20 {
        let mut text = String::new();
        let read = file.rewind().and_then(|()| file.read_to_string(&mut text));
        if read.is_ok() {
            let mut fields = text.split_whitespace();
            if let (Some(pid), Some(started)) = (fields.next(), fields.next()) {
                return format!("pid {pid}, started {started}");
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    "pid unknown: its lock file holds no pid".to_string()
}

/// Who holds the store's lock, as `ctrace status` sees it without disturbing anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A live process holds it: its pid, and the start time it wrote (if readable).
    Held { pid: u32, started: Option<String> },
    /// Nobody holds it (or there is no lock file): no daemon uses this store.
    Free,
    /// Neither /proc/locks nor the lock file could tell.
    Unknown(String),
}

/// Whether a daemon holds the store at `db`. Reads `/proc/locks` (readable by anyone, takes no
/// lock); only if that cannot be read, tries a shared lock without blocking and releases it at
/// once. The pid must also exist in /proc.
pub fn holder(db: &Path) -> Holder {
    use std::os::unix::fs::MetadataExt;
    let path = store_lock_path(db);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Holder::Unknown(format!("{} is not a regular file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Holder::Free,
        Err(e) => return Holder::Unknown(format!("{}: {e}", path.display())),
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut fields = text.split_whitespace();
    let file_pid: Option<u32> = fields.next().and_then(|p| p.parse().ok());
    let started = fields.next().map(str::to_string);
    let pid = match std::fs::read_to_string("/proc/locks") {
        Ok(locks) => flock_writer(&locks, meta.dev(), meta.ino(), file_pid),
        Err(_) => match try_shared(&path) {
            Ok(true) => None,
            Ok(false) => file_pid,
            Err(e) => return Holder::Unknown(format!("{}: {e}", path.display())),
        },
    };
    match pid {
        Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => {
            let started = started.filter(|_| file_pid == Some(pid));
            Holder::Held { pid, started }
        }
        _ => Holder::Free,
    }
}

/// The pid of the exclusive `flock` on the file (`dev`, `ino`) in /proc/locks' text. The
/// device is matched, or else the pid the lock file names (some file systems report another
/// device in stat(2) than in /proc/locks).
fn flock_writer(locks: &str, dev: u64, ino: u64, file_pid: Option<u32>) -> Option<u32> {
    let want_dev = (u64::from(libc::major(dev)), u64::from(libc::minor(dev)));
    locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5636217 0 EOF"; waiters have "->" in f[1].
        if f.len() < 6 || f[1] != "FLOCK" || f[3] != "WRITE" {
            return None;
        }
        let pid: u32 = f[4].parse().ok()?;
        let mut id = f[5].splitn(3, ':');
        let major = u64::from_str_radix(id.next()?, 16).ok()?;
        let minor = u64::from_str_radix(id.next()?, 16).ok()?;
        let inode: u64 = id.next()?.parse().ok()?;
        (inode == ino && ((major, minor) == want_dev || file_pid == Some(pid))).then_some(pid)
    })
}

/// Takes and at once drops a shared lock without blocking: Ok(true) when it was free.
fn try_shared(lock: &Path) -> std::io::Result<bool> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(lock)?;
    // SAFETY: flock(2) on a descriptor this function owns; closing it releases the lock.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(false);
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_the_first_survives() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let held = lock_store(&db).unwrap();
        let text = std::fs::read_to_string(&held.path).unwrap();
        assert!(
            text.starts_with(&format!("{} ", std::process::id())),
            "{text}"
        );
        // flock locks belong to the open file description: a second open conflicts even in
        // the same process.
        let err = lock_store(&db).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "store {} is in use by another ctrace trace (pid {}, started 20",
                db.display(),
                std::process::id()
            )) && err.ends_with("Z); stop it first"),
            "{err}"
        );
        drop(held);
        let again = lock_store(&db).unwrap();
        drop(again);
        let data = lock_data_dir(dir.path()).unwrap();
        let err = lock_data_dir(dir.path()).unwrap_err().to_string();
        assert!(err.starts_with("data directory "), "{err}");
        drop(data);
    }

    #[test]
    fn a_symlinked_lock_file_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(DATA_LOCK)).unwrap();
        let err = lock_data_dir(dir.path()).unwrap_err();
        assert!(matches!(err, LockError::NotAFile { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
    #[test]
    fn the_holder_is_found_without_taking_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        assert_eq!(holder(&db), Holder::Free);
        let held = lock_store(&db).unwrap();
        match holder(&db) {
            Holder::Held { pid, started } => {
                assert_eq!(pid, std::process::id());
                assert!(started.is_some_and(|s| s.starts_with("20")));
            }
            other => panic!("{other:?}"),
        }
        // Asking did not disturb the holder: a second lock is still refused.
        assert!(matches!(lock_store(&db), Err(LockError::Busy { .. })));
        drop(held);
        assert_eq!(holder(&db), Holder::Free);
        assert!(try_shared(&store_lock_path(&db)).unwrap());
    }

    #[test]
    fn proc_locks_lines() {
        let locks = "1: FLOCK  ADVISORY  WRITE 10740 fe:00:5636217 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 99 fe:00:77 0 EOF\n\
                     3: FLOCK  ADVISORY  READ 11 fe:00:77 0 EOF\n\
                     4: FLOCK  ADVISORY  WRITE 12 103:02:77 0 EOF\n";
        let dev = libc::makedev(0xfe, 0);
        assert_eq!(flock_writer(locks, dev, 5636217, None), Some(10740));
        assert_eq!(flock_writer(locks, dev, 77, None), None);
        assert_eq!(
            flock_writer(locks, libc::makedev(0x103, 2), 77, None),
            Some(12)
        );
        assert_eq!(flock_writer(locks, dev, 77, Some(12)), Some(12));
    }
}
