//! The file-based commands through the real binary, without root or dockerd: look-ups,
//! Tracefile parsing errors, `diff` and `options` (from files and from a store built here).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

const APP: &str = "\
ARCH
x86_64

CAPABILITIES
net_raw
chown

SYSCALLS
read
write
mkdir

SYSCALLS:i386
_llseek
socketcall
write
";

const BASELINE: &str = "\
ARCH
x86_64

CAPABILITIES

SYSCALLS
execve
futex
write
";

/// `ctrace ARGS` in `dir`, with no `CTRACE_DB`/`CTRACE_DATA` from the caller's environment:
/// a test names its store itself (the default one, /var/lib/ctrace, is the host's).
fn ctrace_in(dir: &Path, args: &[&str]) -> Output {
    ctrace_env(dir, &[], args)
}

/// As `ctrace_in`, with these environment variables set.
fn ctrace_env(dir: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
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

fn ctrace(args: &[&str]) -> Output {
    ctrace_in(Path::new("."), args)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- look-ups

#[test]
fn syscall_lookup() {
    let out = ctrace(&["syscall", "83"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "83\tmkdir\n"));
    let out = ctrace(&["syscall", "--abi", "i386", "39"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "39\tmkdir\n"));
    let out = ctrace(&["syscall", "mkdir"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("83\tmkdir\n") && stdout(&out).contains("258\tmkdirat\n"));
    let out = ctrace(&["syscall", "--abi", "i386", "_llseek"]);
    assert_eq!(stdout(&out), "140\t_llseek\n");
    let out = ctrace(&["syscall"]);
    assert!(stdout(&out).lines().count() > 300);
    for query in ["nosuchcall", "99999"] {
        let out = ctrace(&["syscall", query]);
        assert_eq!(code(&out), 2, "{query}");
        assert!(stderr(&out).contains(query), "{}", stderr(&out));
    }
    assert_eq!(code(&ctrace(&["syscall", "--abi", "sparc", "1"])), 2);
}

#[test]
fn capability_lookup() {
    let out = ctrace(&["capability", "0"]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "0\tchown\tCAP_CHOWN\n")
    );
    let out = ctrace(&["capability", "CAP_NET_RAW"]);
    assert_eq!(stdout(&out), "13\tnet_raw\tCAP_NET_RAW\n");
    let out = ctrace(&["capability", "sys_"]);
    assert!(stdout(&out).contains("21\tsys_admin\tCAP_SYS_ADMIN\n"));
    let out = ctrace(&["capability"]);
    assert!(stdout(&out).lines().count() >= 41);
    let out = ctrace(&["capability", "fly"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("fly"));
}

// ---------------------------------------------------------------- bad input

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
        s(&profile),
        s(input),
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
    let out = ctrace(&["options", "--no-requirements", "-o", s(&profile), s(&good)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = std::fs::read(&profile).unwrap();
    let out = ctrace(&[
        "options",
        "--no-requirements",
        "-o",
        s(&profile),
        s(&good),
        s(&bad),
    ]);
    assert_eq!(code(&out), 2);
    assert_eq!(std::fs::read(&profile).unwrap(), before);
}

// ---------------------------------------------------------------- diff

#[test]
fn diff_of_tracefiles() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a", APP);
    let b = write(
        dir.path(),
        "b",
        &APP.replace("chown\n", "")
            .replace("mkdir\n", "mkdir\nopenat\n")
            .replace("socketcall\n", ""),
    );
    let out = ctrace(&["diff", s(&a), s(&a)]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, ""));
    let out = ctrace(&["diff", s(&a), s(&b)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "CAPABILITIES\n-chown\n\nSYSCALLS\n+openat\n\nSYSCALLS:i386\n-socketcall\n"
    );
    let out = ctrace(&["diff", "--color", "always", s(&b), s(&a)]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("\x1b[32m+chown\x1b[0m"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("\x1b[31m-openat\x1b[0m"));
    // Not a terminal: no colour by default.
    assert!(!stdout(&ctrace(&["diff", s(&a), s(&b)])).contains('\x1b'));

    let bad = write(dir.path(), "bad", "SYSCALLS\nnope\n");
    let out = ctrace(&["diff", s(&a), s(&bad)]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains(&format!("{}:2:", bad.display())));
    assert_eq!(code(&ctrace(&["diff", s(&a)])), 2);
    assert_eq!(
        code(&ctrace(&["diff", s(&a), s(&dir.path().join("missing"))])),
        2
    );
}

// ---------------------------------------------------------------- a store

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const DAY: i64 = 24 * 3600 * 1000;

/// kind, abi, nr, name, first_seen, last_seen
type Sighting<'a> = (&'a str, Option<&'a str>, i64, &'a str, i64, i64);

/// A store with the real schema: container `web` used read+write 10 days ago, read+mkdir
/// (and i386 write) 2 days ago, and chown; optionally a runtime baseline.
fn make_store(path: &Path, baseline: Option<&str>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(include_str!("../migrations/001_initial.sql"))
        .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    let now = now_ms();
    conn.execute(
        "INSERT INTO containers (id, container_id, name, image, label, started_at) \
         VALUES (1, ?1, 'web', 'ctrace-test/busybox', 'web-%Y', ?2)",
        rusqlite::params!["a".repeat(64), now - 11 * DAY],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO tracefiles (id, path) VALUES (1, 'web-2026')",
        [],
    )
    .unwrap();
    let rows: [Sighting; 6] = [
        (
            "syscall",
            Some("x86_64"),
            0,
            "read",
            now - 10 * DAY,
            now - 9 * DAY,
        ),
        (
            "syscall",
            Some("x86_64"),
            1,
            "write",
            now - 10 * DAY,
            now - 9 * DAY,
        ),
        (
            "syscall",
            Some("x86_64"),
            0,
            "read",
            now - 2 * DAY,
            now - DAY,
        ),
        (
            "syscall",
            Some("x86_64"),
            83,
            "mkdir",
            now - 2 * DAY,
            now - DAY,
        ),
        (
            "syscall",
            Some("i386"),
            4,
            "write",
            now - 2 * DAY,
            now - DAY,
        ),
        ("cap_granted", None, 0, "chown", now - 2 * DAY, now - DAY),
    ];
    for (kind, abi, nr, name, first, last) in rows {
        conn.execute(
            "INSERT INTO sightings (container, tracefile, kind, abi, nr, name, first_seen, last_seen) \
             VALUES (1, 1, ?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![kind, abi, nr, name, first, last],
        )
        .unwrap();
    }
    if let Some(text) = baseline {
        conn.execute(
            "INSERT INTO requirements VALUES ('20.10.24', ?1, ?2)",
            rusqlite::params![now, text],
        )
        .unwrap();
    }
}

#[test]
fn diff_of_store_selections() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    make_store(&db, None);
    let out = ctrace(&[
        "diff",
        "--db",
        s(&db),
        "--a-since",
        "14d",
        "--a-until",
        "7d",
        "--b-since",
        "7d",
        "--b-name",
        "web",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "CAPABILITIES\n+chown\n\nSYSCALLS\n-write\n+mkdir\n\nSYSCALLS:i386\n+write\n"
    );
    let out = ctrace(&["diff", "--db", s(&db), "--a-since", "7d", "--b-since", "3d"]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, ""),
        "{}",
        stderr(&out)
    );
    // Selections without a store, or a missing store: errors.
    assert_eq!(
        code(&ctrace(&["diff", "--a-since", "7d", "--b-since", "3d"])),
        2
    );
    let out = ctrace(&[
        "diff",
        "--db",
        s(&dir.path().join("none.db")),
        "--a-since",
        "1d",
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("none.db"));
}

// ---------------------------------------------------------------- options

fn profile_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn options_docker_format_with_a_requirements_file() {
    let dir = tempfile::tempdir().unwrap();
    let app = write(dir.path(), "data/app", APP);
    let req = write(dir.path(), "req", BASELINE);
    let profile = dir.path().join("data/app.json");
    let out = ctrace(&[
        "options",
        "--requirements",
        s(&req),
        "--output",
        s(&profile),
        s(&app),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "--cap-drop=ALL --cap-add=CHOWN --cap-add=NET_RAW --security-opt seccomp={}\n",
            profile.display()
        )
    );
    assert_eq!(
        profile_json(&profile),
        serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [{
                "names": ["_llseek", "execve", "futex", "mkdir", "read", "socketcall", "write"],
                "action": "SCMP_ACT_ALLOW"
            }]
        })
    );
    // The directory holding both the Tracefile and the profile: the profile is skipped.
    let again = dir.path().join("again.json");
    let out = ctrace(&[
        "options",
        "--requirements",
        s(&req),
        "-o",
        s(&again),
        s(&dir.path().join("data")),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(profile_json(&again), profile_json(&profile));
}

#[test]
fn options_compose_k8s_and_json_formats() {
    let dir = tempfile::tempdir().unwrap();
    let app = write(dir.path(), "app", APP);
    let req = write(dir.path(), "req", BASELINE);
    let profile = dir.path().join("My_App.json");
    let run = |format: &str| {
        let out = ctrace(&[
            "options",
            "--format",
            format,
            "--requirements",
            s(&req),
            "-o",
            s(&profile),
            s(&app),
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(profile.exists());
        stdout(&out)
    };
    let compose = run("compose");
    assert_eq!(
        compose,
        format!(
            "cap_drop:\n  - ALL\ncap_add:\n  - CHOWN\n  - NET_RAW\nsecurity_opt:\n  - \"seccomp:{}\"\n",
            profile.display()
        )
    );

    let k8s = run("k8s");
    for expect in [
        "securityContext:\n  capabilities:\n    drop:\n      - ALL\n    add:\n      - CHOWN\n      - NET_RAW\n",
        "  seccompProfile:\n    type: Localhost\n    localhostProfile: \"operator/my-app.json\"\n",
        "---\napiVersion: security-profiles-operator.x-k8s.io/v1\nkind: SeccompProfile\n",
        "metadata:\n  name: \"my-app\"\n",
        "spec:\n  defaultAction: SCMP_ACT_ERRNO\n  architectures:\n    - SCMP_ARCH_X86_64\n    - SCMP_ARCH_X86\n",
        "  syscalls:\n    - action: SCMP_ACT_ALLOW\n      names:\n        - _llseek\n        - execve\n",
    ] {
        assert!(k8s.contains(expect), "expected {expect:?} in:\n{k8s}");
    }

    let json: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(json["profile"], s(&profile));
    assert_eq!(json["cap_add"], serde_json::json!(["CHOWN", "NET_RAW"]));
    assert_eq!(
        json["syscalls"]["i386"],
        serde_json::json!(["_llseek", "socketcall", "write"])
    );
    assert_eq!(json["counts"]["syscalls"]["x86_64"], 5);
    assert_eq!(json["counts"]["syscalls"]["i386"], 3);
    assert_eq!(json["counts"]["allowed_names"], 7);
    assert_eq!(json["baseline"]["source"], "file");
    assert_eq!(json["baseline"]["syscalls"], 3);
    assert_eq!(
        json["architectures"],
        serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
    );
    assert_eq!(json["inputs"], serde_json::json!([s(&app)]));
}

#[test]
fn options_needs_a_baseline_or_no_requirements() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "app", APP);
    // The default store ($CTRACE_DB here) does not exist.
    let db = dir.path().join("data/ctrace.db");
    let env = [("CTRACE_DB", db.as_path())];
    let out = ctrace_env(dir.path(), &env, &["options", "-o", "p.json", "app"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("ctrace requirements --output") && err.contains("--no-requirements"),
        "{err}"
    );
    assert!(err.contains(s(&db)), "names the store it looked for: {err}");
    assert!(!dir.path().join("p.json").exists());
    // A store without a recorded baseline: the same advice.
    make_store(&db, None);
    let out = ctrace_env(dir.path(), &env, &["options", "-o", "p.json", "app"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("has no requirements recorded"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("p.json").exists());
    // Contradictory flags.
    let out = ctrace_in(
        dir.path(),
        &[
            "options",
            "--no-requirements",
            "--requirements",
            "app",
            "-o",
            "p.json",
            "app",
        ],
    );
    assert_eq!(code(&out), 2);
}

#[test]
fn options_takes_the_baseline_from_the_default_store() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "app", APP);
    let db = dir.path().join("elsewhere/ctrace.db");
    make_store(&db, Some(BASELINE));
    let out = ctrace_env(
        dir.path(),
        &[("CTRACE_DB", db.as_path())],
        &["options", "--format", "json", "-o", "p.json", "app"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["baseline"]["source"], "store");
    let names = &profile_json(&dir.path().join("p.json"))["syscalls"][0]["names"];
    assert!(names
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("futex")));
}

#[test]
fn options_from_a_store_selection() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    make_store(&db, Some(BASELINE));
    let profile = dir.path().join("web.json");
    let out = ctrace(&[
        "options",
        "--db",
        s(&db),
        "--since",
        "7d",
        "--name",
        "web",
        "-o",
        s(&profile),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "--cap-drop=ALL --cap-add=CHOWN --security-opt seccomp={}\n",
            profile.display()
        )
    );
    let json = profile_json(&profile);
    // Recorded this week (read, mkdir; i386 write) plus the baseline (execve, futex, write).
    assert_eq!(
        json["syscalls"][0]["names"],
        serde_json::json!(["execve", "futex", "mkdir", "read", "write"])
    );
    assert_eq!(
        json["archMap"][0]["subArchitectures"],
        serde_json::json!(["SCMP_ARCH_X86"])
    );

    // A selection that matches nothing is an error, not a deny-all profile.
    let none = dir.path().join("none.json");
    let out = ctrace(&[
        "options",
        "--db",
        s(&db),
        "--name",
        "nobody",
        "-o",
        s(&none),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("matches nothing"), "{}", stderr(&out));
    assert!(!none.exists());
    // A selection without a store.
    assert_eq!(
        code(&ctrace(&["options", "--since", "7d", "-o", s(&none)])),
        2
    );
}

#[test]
fn default_paths_are_absolute_and_the_environment_overrides_them() {
    // --help shows the absolute defaults and the variables that replace them.
    for (cmd, wanted) in [
        (
            "trace",
            &[
                "/var/lib/ctrace/ctrace.db",
                "CTRACE_DB",
                "/var/lib/ctrace]",
                "CTRACE_DATA",
            ][..],
        ),
        ("sql", &["/var/lib/ctrace/ctrace.db", "CTRACE_DB"][..]),
        (
            "requirements",
            &["/var/lib/ctrace/ctrace.db", "CTRACE_DB"][..],
        ),
    ] {
        let out = ctrace(&[cmd, "--help"]);
        assert_eq!(code(&out), 0);
        for w in wanted {
            assert!(
                stdout(&out).contains(w),
                "`{cmd} --help` lacks {w}:\n{}",
                stdout(&out)
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    make_store(&db, None);
    // CTRACE_DB names the store, wherever the command runs.
    let out = ctrace_env(
        Path::new("/"),
        &[("CTRACE_DB", db.as_path())],
        &["sql", "SELECT name FROM containers"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "name\nweb\n");
    // --db wins over it.
    let missing = dir.path().join("missing.db");
    let out = ctrace_env(
        Path::new("/"),
        &[("CTRACE_DB", missing.as_path())],
        &["sql", "--db", s(&db), "SELECT name FROM containers"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!missing.exists());
}
