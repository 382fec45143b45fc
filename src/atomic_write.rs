//! Writing a file whole: a temporary file beside the target, created with `O_EXCL` under an
//! unpredictable name, then renamed over it, so readers see the old file or the new one.
//!
//! Two kinds of target:
//! - [`write_beneath`]: Tracefiles, whose names come from container labels (anyone who can
//!   start a container) while the daemon is root. Every directory on the way is opened with
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` relative to the one before and must
//!   belong to us; the file is created and renamed inside the directory descriptor. Nothing
//!   planted meanwhile (a symlink, a directory of another user) can send the write elsewhere.
//! - [`write_atomically`]: files the user named on the command line (profiles, the runtime
//!   baseline), written where they say, synced.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("`{path}` goes through a symlink; refused", path = .path.display())]
    Symlink { path: PathBuf },
    #[error(
        "`{path}` belongs to uid {uid}, not to this process (uid {ours}); refused",
        path = .path.display()
    )]
    NotOurs { path: PathBuf, uid: u32, ours: u32 },
    #[error("`{path}` is a directory", path = .path.display())]
    IsDirectory { path: PathBuf },
    #[error("`{path}`: {source}", path = .path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn c_name(name: &OsStr, path: &Path) -> Result<CString, WriteError> {
    CString::new(name.as_bytes()).map_err(|_| WriteError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in the name"),
    })
}

/// `openat2` beneath `dir`, never through a symlink.
fn open_beneath(dir: &OwnedFd, name: &CString, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain integers; all-zero is its documented empty value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64;
    how.mode = u64::from(mode);
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `name` is a NUL-terminated string and `how` a live open_how whose size is
    // passed with it; the result is checked before it is wrapped.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Refuses a directory that is not ours: its owner could swap what is inside.
fn check_ours(fd: &OwnedFd, path: &Path) -> Result<(), WriteError> {
    let file = File::from(fd.try_clone().map_err(io_error(path))?);
    let uid = file.metadata().map_err(io_error(path))?.uid();
    // SAFETY: geteuid has no preconditions.
    let ours = unsafe { libc::geteuid() };
    if uid != ours {
        return Err(WriteError::NotOurs {
            path: path.to_path_buf(),
            uid,
            ours,
        });
    }
    Ok(())
}

fn symlink_or_io(path: &Path, e: io::Error) -> WriteError {
    // ELOOP: a symlink on the way; EXDEV: a path that would leave the directory.
    match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::EXDEV) => WriteError::Symlink {
            path: path.to_path_buf(),
        },
        _ => WriteError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// Whether `name` in `dir` is a symlink (not followed).
fn is_symlink(dir: &OwnedFd, name: &CString) -> bool {
    // SAFETY: a zeroed stat buffer is valid; fstatat fills it from a live descriptor and a
    // NUL-terminated name.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let found = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    found == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// A temporary name no one can guess: `.NAME.ctrace-tmp-<64 random bits>`.
fn temp_name(file: &OsStr) -> String {
    let mut random = [0u8; 8];
    // SAFETY: fills a live 8-byte buffer; a short read leaves zeroes, which O_EXCL still guards.
    unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
    format!(
        ".{}.ctrace-tmp-{:016x}",
        file.to_string_lossy(),
        u64::from_ne_bytes(random)
    )
}

/// Writes `contents` to `root/relative`, creating directories on the way (mode 0755), by the
/// rules in the module documentation. `relative` must be made of normal components only
/// (the label parser checks that first). Returns the file's path.
pub fn write_beneath(root: &Path, relative: &Path, contents: &[u8]) -> Result<PathBuf, WriteError> {
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            _ => {
                return Err(symlink_or_io(
                    &root.join(relative),
                    io::Error::from_raw_os_error(libc::EXDEV),
                ))
            }
        }
    }
    let (file, parents) = parts
        .split_last()
        .ok_or_else(|| io_error(root)(io::Error::new(io::ErrorKind::InvalidInput, "empty name")))?;
    std::fs::create_dir_all(root).map_err(io_error(root))?;
    let root_c = c_name(root.as_os_str(), root)?;
    // SAFETY: a NUL-terminated path; the result is checked before it is wrapped.
    let fd = unsafe {
        libc::open(
            root_c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return Err(symlink_or_io(root, io::Error::last_os_error()));
    }
    // SAFETY: a new descriptor that nothing else owns.
    let mut dir = unsafe { OwnedFd::from_raw_fd(fd) };
    check_ours(&dir, root)?;
    let mut path = root.to_path_buf();
    for part in parents {
        path.push(part);
        let name = c_name(part, &path)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
        let next = match open_beneath(&dir, &name, flags, 0) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                // SAFETY: a live directory descriptor and a NUL-terminated name.
                let made = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) };
                let made = if made < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                };
                match made {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                        return Err(io_error(&path)(e))
                    }
                    _ => open_beneath(&dir, &name, flags, 0),
                }
            }
            other => other,
        }
        .map_err(|e| match is_symlink(&dir, &name) {
            true => WriteError::Symlink { path: path.clone() },
            false => symlink_or_io(&path, e),
        })?;
        check_ours(&next, &path)?;
        dir = next;
    }
    let target = path.join(file);
    let tmp = temp_name(file);
    let tmp_c = c_name(OsStr::new(&tmp), &target)?;
    let file_c = c_name(file, &target)?;
    // The rename would only replace a symlink planted as the file itself; still say so.
    if is_symlink(&dir, &file_c) {
        return Err(WriteError::Symlink { path: target });
    }
    let fd = open_beneath(
        &dir,
        &tmp_c,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        0o644,
    )
    .map_err(|e| symlink_or_io(&target, e))?;
    let remove_tmp = || {
        // SAFETY: a live directory descriptor and a NUL-terminated name.
        unsafe { libc::unlinkat(dir.as_raw_fd(), tmp_c.as_ptr(), 0) };
    };
    // No fsync: a Tracefile is materialized again from the store.
    if let Err(e) = File::from(fd).write_all(contents) {
        remove_tmp();
        return Err(io_error(&target)(e));
    }
    // SAFETY: a live directory descriptor (both sides) and NUL-terminated names.
    let renamed = unsafe {
        libc::renameat(
            dir.as_raw_fd(),
            tmp_c.as_ptr(),
            dir.as_raw_fd(),
            file_c.as_ptr(),
        )
    };
    if renamed < 0 {
        let e = io::Error::last_os_error();
        remove_tmp();
        return Err(match e.raw_os_error() {
            Some(libc::EISDIR) => WriteError::IsDirectory { path: target },
            _ => io_error(&target)(e),
        });
    }
    Ok(target)
}

/// Replaces `path` with `contents` through a synced temporary file in the same directory,
/// then syncs the directory. Parent directories are created; a failure leaves no partial file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    if path.is_dir() {
        return Err(WriteError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let file_name = path
        .file_name()
        .ok_or_else(|| io_error(path)(io::Error::other("the path has no file name")))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io_error(path))?;
    let temp_path = dir.join(temp_name(file_name));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp_path)
        .map_err(io_error(path))?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temp_path, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp_path);
        return Err(io_error(path)(e));
    }
    // Make the rename durable; failing to sync a directory is not worth an error.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_beneath_creating_directories_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_beneath(dir.path(), Path::new("a/b/file"), b"one").unwrap();
        assert_eq!(path, dir.path().join("a/b/file"));
        write_beneath(dir.path(), Path::new("a/b/file"), b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file"]);
        assert!(matches!(
            write_beneath(dir.path(), Path::new("../x"), b"x"),
            Err(WriteError::Symlink { .. })
        ));
        assert!(matches!(
            write_beneath(dir.path(), Path::new("a"), b"x"),
            Err(WriteError::IsDirectory { .. })
        ));
    }

    #[test]
    fn temporary_names_are_unpredictable() {
        let a = temp_name(OsStr::new("f"));
        let b = temp_name(OsStr::new("f"));
        assert!(a.starts_with(".f.ctrace-tmp-") && a != b, "{a} {b}");
    }

    /// Another user's directory on the way could have its contents swapped: refused.
    #[test]
    fn a_directory_of_another_user_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs the unit tests as root"
            );
            println!("SKIPPED: giving a directory away needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(4242), Some(4242)).unwrap();
        let err = write_beneath(dir.path(), Path::new("theirs/file"), b"x").unwrap_err();
        assert!(
            matches!(err, WriteError::NotOurs { uid: 4242, .. }),
            "{err}"
        );
        assert!(!theirs.join("file").exists());
    }
}
