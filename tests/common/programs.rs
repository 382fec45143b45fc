//! Images of real, dynamically linked programs for the enforcement tests: the programs in
//! `tests/programs/`, with the host's own shared libraries and loader (no registry here).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// The C program's source: pthreads, file I/O, fork + execve of itself.
pub const THREADS_C: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/programs/threads.c");
/// The Python program: `threading`, `subprocess`, file I/O.
pub const WORKLOAD_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/programs/workload.py");
/// Where the compiled C program sits in its image.
pub const THREADS_BIN: &str = "/threads";
/// Where the Python program sits in its image.
pub const WORKLOAD_IN_IMAGE: &str = "/workload.py";

const PYTHON: &str = "/usr/bin/python3.11";
const STDLIB: &str = "/usr/lib/python3.11";
/// Parts of the standard library that neither `threading`, `subprocess` nor file I/O need.
const STDLIB_LEFT_OUT: &[&str] = &[
    "__pycache__",
    "test",
    "tests",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "config-3.11-x86_64-linux-gnu",
];

/// `tar -C root -c . | docker import [--change C]... - tag`; logs the size and build time.
fn import_dir(root: &Path, tag: &str, changes: &[&str], started: Instant) {
    let mut cmd = format!("tar -C {} -c . | docker import", root.display());
    for change in changes {
        cmd.push_str(&format!(" --change '{change}'"));
    }
    cmd.push_str(&format!(" - {tag}"));
    let status = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .stdout(Stdio::null())
        .status()
        .expect("running tar | docker import");
    assert!(status.success(), "docker import of {tag} failed");
    let size = super::docker(&["image", "inspect", "--format", "{{.Size}}", tag]);
    eprintln!(
        "built image {tag}: {} bytes in {:.1} s",
        String::from_utf8_lossy(&size.stdout).trim(),
        started.elapsed().as_secs_f64()
    );
}

/// The shared libraries and the loader `ldd` names for `binary`, at the paths it reports.
pub fn ldd_paths(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .expect("running ldd");
    assert!(
        out.status.success(),
        "ldd {} failed: {}",
        binary.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut paths = vec![];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
        let line = line.trim();
        let file = match line.split_once(" => ") {
            Some((_, rest)) => rest,
            None => line,
        };
        let file = file.split(" (").next().unwrap_or("").trim();
        if file.starts_with('/') {
            paths.push(PathBuf::from(file));
        }
    }
    assert!(
        paths
            .iter()
            .any(|p| p.to_string_lossy().contains("ld-linux")),
        "ldd named no dynamic loader for {}: {paths:?}",
        binary.display()
    );
    paths
}

/// Copies `src` (following symlinks, keeping permissions) to the absolute path `dst` in `root`.
fn copy_into(root: &Path, src: &Path, dst: &str) {
    let target = root.join(dst.trim_start_matches('/'));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(src, &target)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", src.display(), target.display()));
}

/// `binary` at `dst`, with every library and the loader `ldd` names for it.
fn copy_with_libraries(root: &Path, binary: &Path, dst: &str) {
    copy_into(root, binary, dst);
    for lib in ldd_paths(binary) {
        copy_into(root, &lib, lib.to_str().unwrap());
    }
}

fn base_dirs(root: &Path) {
    for dir in ["tmp", "proc", "sys", "dev", "etc"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    // World-writable and sticky, as /tmp is everywhere.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// Compiles `tests/programs/threads.c` with the host's gcc (dynamically linked) and imports
/// it with its libraries as `tag`; once per test process.
pub fn build_threads_image(tag: &str) {
    static BUILT: OnceLock<String> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let started = Instant::now();
        let work = tempfile::tempdir().expect("tempdir");
        let bin = work.path().join("threads");
        let status = Command::new("gcc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o"])
            .arg(&bin)
            .arg(THREADS_C)
            .status()
            .expect("running gcc (apt-get install gcc libc6-dev)");
        assert!(status.success(), "gcc failed on {THREADS_C}");
        let root = work.path().join("rootfs");
        copy_with_libraries(&root, &bin, THREADS_BIN);
        base_dirs(&root);
        import_dir(&root, tag, &[], started);
        tag.to_string()
    });
    assert_eq!(built, tag, "the threads image is built once, under one tag");
}

/// Copies the directory tree `src` to `dst`, following symlinks, leaving out the names in
/// `STDLIB_LEFT_OUT` and dangling links.
fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if STDLIB_LEFT_OUT.iter().any(|n| name == *n) {
            continue;
        }
        let from = entry.path();
        let Ok(meta) = std::fs::metadata(&from) else {
            continue; // a dangling symlink
        };
        if meta.is_dir() {
            copy_tree(&from, &dst.join(&name));
        } else {
            std::fs::copy(&from, dst.join(&name)).unwrap();
        }
    }
}

/// The host's Debian python3.11 (its libraries, its standard library without the big unneeded
/// parts) plus `tests/programs/workload.py`, imported as `tag`; once per test process.
/// `PYTHONDONTWRITEBYTECODE` is set: the image has no bytecode caches and the interpreter
/// must not create them (that would `mkdir` in the traced run).
pub fn build_python_image(tag: &str) {
    static BUILT: OnceLock<String> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let started = Instant::now();
        let python = std::fs::canonicalize(PYTHON)
            .unwrap_or_else(|e| panic!("{PYTHON}: {e} (apt-get install python3.11)"));
        let work = tempfile::tempdir().expect("tempdir");
        let root = work.path().join("rootfs");
        copy_with_libraries(&root, &python, PYTHON);
        std::os::unix::fs::symlink("python3.11", root.join("usr/bin/python3")).unwrap();
        copy_tree(
            Path::new(STDLIB),
            &root.join(STDLIB.trim_start_matches('/')),
        );
        copy_into(&root, Path::new(WORKLOAD_PY), WORKLOAD_IN_IMAGE);
        base_dirs(&root);
        import_dir(&root, tag, &["ENV PYTHONDONTWRITEBYTECODE=1"], started);
        tag.to_string()
    });
    assert_eq!(built, tag, "the python image is built once, under one tag");
}
