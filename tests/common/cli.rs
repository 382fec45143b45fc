//! The `ctrace` binary run as a user would, its output, and the files it is handed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `ctrace ARGS` in `dir`, NO_COLOR unset (colour follows the terminal, never one here), and
/// no `CTRACE_DB`/`CTRACE_DATA` from the caller's environment: a test names its store itself
/// (the default one, /var/lib/ctrace, is the host's).
pub fn ctrace_in(dir: &Path, args: &[&str]) -> Output {
    ctrace_env(dir, &[], args)
}

/// As `ctrace_in`, with these environment variables set.
pub fn ctrace_env(dir: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("CTRACE_DB")
        .env_remove("CTRACE_DATA")
        .envs(env.iter().copied())
        .output()
        .expect("running ctrace")
}

pub fn ctrace(args: &[&str]) -> Output {
    ctrace_in(Path::new("."), args)
}

/// `ctrace ARGS`, which must succeed.
pub fn ctrace_ok(args: &[&str]) -> Output {
    let out = ctrace(args);
    assert!(
        out.status.success(),
        "ctrace {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

/// A path as a command-line argument.
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes `text` to `dir/name`, making the directories; returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// The names in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
