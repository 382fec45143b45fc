//! Why a Tracefile (or a directory of them) was refused: every error names the file, and the
//! line where there is one.

use std::path::{Path, PathBuf};

use crate::abi::Abi;
use crate::tracefile::{ARCH, CAPABILITIES, ERRNO, SYSCALLS};

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: {size} bytes is too large for a Tracefile (limit {limit} bytes)",
        path = .path.display()
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path}: not a regular file or directory", path = .path.display())]
    NotAFile { path: PathBuf },
    #[error("{path}:{line}: not UTF-8 text (binary data?)", path = .path.display())]
    NotText { path: PathBuf, line: usize },
    #[error(
        "{path}:{line}: control character {byte:#04x} (binary data?)",
        path = .path.display()
    )]
    ControlCharacter {
        path: PathBuf,
        line: usize,
        byte: u32,
    },
    #[error(
        "{path}:{line}: unknown section `{name}` (expected {ARCH}, {CAPABILITIES}, {SYSCALLS}, \
         {SYSCALLS}:i386, {SYSCALLS}:x32 or {ERRNO}, each followed by one entry per line)",
        path = .path.display()
    )]
    UnknownSection {
        path: PathBuf,
        line: usize,
        name: String,
    },
    #[error("{path}:{line}: section `{name}` appears twice", path = .path.display())]
    DuplicateSection {
        path: PathBuf,
        line: usize,
        name: String,
    },
    #[error(
        "{path}:{line}: unsupported architecture `{arch}` (ctrace supports x86_64 hosts; \
         32-bit syscalls go in {SYSCALLS}:i386)",
        path = .path.display()
    )]
    UnsupportedArch {
        path: PathBuf,
        line: usize,
        arch: String,
    },
    #[error("{path}:{line}: {ARCH} holds one architecture, found a second: `{arch}`", path = .path.display())]
    SecondArch {
        path: PathBuf,
        line: usize,
        arch: String,
    },
    #[error("{path}:{line}: {ARCH} section without an architecture", path = .path.display())]
    EmptyArch { path: PathBuf, line: usize },
    #[error("{path}:{line}: unknown {abi} system call `{name}`{hint}", path = .path.display())]
    UnknownSyscall {
        path: PathBuf,
        line: usize,
        abi: Abi,
        name: String,
        hint: String,
    },
    #[error("{path}:{line}: unknown capability `{name}`{hint}", path = .path.display())]
    UnknownCapability {
        path: PathBuf,
        line: usize,
        name: String,
        hint: String,
    },
    #[error("{path}:{line}: `{text}` is not a single name", path = .path.display())]
    NotAName {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error(
        "{path}:{line}: `{text}` is not `SYSCALL ERRNO` (a system call name and an errno \
         such as ENOSYS or 38)",
        path = .path.display()
    )]
    BadErrno {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{path}: no sections: not a Tracefile", path = .path.display())]
    Empty { path: PathBuf },
    #[error("{path}: no Tracefiles in this directory", path = .path.display())]
    EmptyDirectory { path: PathBuf },
}

impl ParseError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ParseError + '_ {
        move |source| ParseError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
