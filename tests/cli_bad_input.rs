//! Malformed Tracefiles handed to the real binary (no root, no dockerd): exit 2, the message
//! names the file and line, and no profile (nor temporary file) is written or replaced.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::fixtures::APP;
use common::{code, ctrace, files_in, path, stderr, stdout, write};

/// Runs `options` on one bad input: exit 2, the message names the file (and line), and
/// no output file (nor temporary file) appears.
fn assert_rejected(dir: &Path, input: &Path, expect: &[&str]) {
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let profile = out_dir.join("profile.json");
    let out = ctrace(&[
        "options",
        "--no-requirements",
        "--output",
        path(&profile),
        path(input),
    ]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    for e in expect {
        assert!(err.contains(e), "expected `{e}` in: {err}");
    }
    assert!(stdout(&out).is_empty());
    assert!(
        files_in(&out_dir).is_empty(),
        "left behind: {:?}",
        files_in(&out_dir)
    );
}

#[test]
fn unknown_section_is_rejected_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad", "ARCH\nx86_64\n\nSYSCALS\nread\n");
    assert_rejected(
        dir.path(),
        &bad,
        &[
            &format!("{}:4:", bad.display()),
            "unknown section `SYSCALS`",
        ],
    );
}

#[test]
fn unknown_syscall_is_rejected_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad", &APP.replace("mkdir", "mkdri"));
    assert_rejected(
        dir.path(),
        &bad,
        &[&format!("{}:11:", bad.display()), "`mkdri`"],
    );
    // An i386 name in the x86_64 section.
    let bad = write(dir.path(), "bad2", "SYSCALLS\nread\n_llseek\n");
    assert_rejected(
        dir.path(),
        &bad,
        &[&format!("{}:3:", bad.display()), "SYSCALLS:i386"],
    );
    let bad = write(dir.path(), "bad3", "CAPABILITIES\nchown\nfly\n");
    assert_rejected(
        dir.path(),
        &bad,
        &[&format!("{}:3:", bad.display()), "unknown capability"],
    );
}

#[test]
fn binary_junk_is_rejected_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("junk");
    let mut bytes = b"ARCH\nx86_64\n\n".to_vec();
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(&bad, &bytes).unwrap();
    assert_rejected(dir.path(), &bad, &[&format!("{}:4:", bad.display())]);
    let elf = write(dir.path(), "nul", "SYSCALLS\nread\0\0\0\n");
    assert_rejected(
        dir.path(),
        &elf,
        &[&format!("{}:2:", elf.display()), "control character"],
    );
}

#[test]
fn huge_file_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    // Sparse: 100 MB of size without 100 MB of disk.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(100 * 1024 * 1024)
        .unwrap();
    let start = Instant::now();
    assert_rejected(dir.path(), &big, &[&big.display().to_string(), "too large"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    std::fs::remove_file(&big).unwrap();
}

#[test]
fn a_bad_file_in_a_directory_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("traces");
    write(&traces, "a/good", APP);
    let bad = write(&traces, "b/bad", "SYSCALLS\nread\nnope\n");
    assert_rejected(dir.path(), &traces, &[&format!("{}:3:", bad.display())]);
}

#[test]
fn an_old_profile_survives_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good", APP);
    let bad = write(dir.path(), "bad", "SYSCALLS\nnope\n");
    let profile = dir.path().join("p.json");
    let out = ctrace(&[
        "options",
        "--no-requirements",
        "-o",
        path(&profile),
        path(&good),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = std::fs::read(&profile).unwrap();
    let out = ctrace(&[
        "options",
        "--no-requirements",
        "-o",
        path(&profile),
        path(&good),
        path(&bad),
    ]);
    assert_eq!(code(&out), 2);
    assert_eq!(std::fs::read(&profile).unwrap(), before);
}
