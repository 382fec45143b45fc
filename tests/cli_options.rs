//! `ctrace options` through the real binary (no root, no dockerd): profiles and `docker run`
//! options in every format, from Tracefiles with a requirements file or a baseline from a
//! store built here, and from store selections.

mod common;

use std::path::Path;

use common::fixtures::{make_store, APP, BASELINE};
use common::{code, ctrace, ctrace_env, ctrace_in, path, stderr, stdout, write};

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
        path(&req),
        "--output",
        path(&profile),
        path(&app),
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
                // Recorded and baseline, and the kernel's signal returns (x86_64 and i386).
                "names": [
                    "_llseek", "execve", "futex", "mkdir", "read", "restart_syscall",
                    "rt_sigreturn", "sigreturn", "socketcall", "write"
                ],
                "action": "SCMP_ACT_ALLOW"
            }]
        })
    );
    // The directory holding both the Tracefile and the profile: the profile is skipped.
    let again = dir.path().join("again.json");
    let out = ctrace(&[
        "options",
        "--requirements",
        path(&req),
        "-o",
        path(&again),
        path(&dir.path().join("data")),
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
            path(&req),
            "-o",
            path(&profile),
            path(&app),
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
    assert_eq!(json["profile"], path(&profile));
    assert_eq!(json["cap_add"], serde_json::json!(["CHOWN", "NET_RAW"]));
    assert_eq!(
        json["syscalls"]["i386"],
        serde_json::json!(["_llseek", "socketcall", "write"])
    );
    assert_eq!(json["counts"]["syscalls"]["x86_64"], 5);
    assert_eq!(json["counts"]["syscalls"]["i386"], 3);
    assert_eq!(
        json["counts"]["allowed_names"], 10,
        "7 recorded + 3 signal returns"
    );
    assert_eq!(json["baseline"]["source"], "file");
    assert_eq!(json["baseline"]["syscalls"], 3);
    assert_eq!(
        json["architectures"],
        serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
    );
    assert_eq!(json["inputs"], serde_json::json!([path(&app)]));
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
        err.contains("ctrace requirements --db") && err.contains("--no-requirements"),
        "{err}"
    );
    assert!(
        err.contains(path(&db)),
        "names the store it looked for: {err}"
    );
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
        path(&db),
        "--since",
        "7d",
        "--name",
        "web",
        "-o",
        path(&profile),
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
    // Recorded this week (read, mkdir; i386 write) plus the baseline (execve, futex, write),
    // and the kernel's signal returns.
    assert_eq!(
        json["syscalls"][0]["names"],
        serde_json::json!([
            "execve",
            "futex",
            "mkdir",
            "read",
            "restart_syscall",
            "rt_sigreturn",
            "sigreturn",
            "write"
        ])
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
        path(&db),
        "--name",
        "nobody",
        "-o",
        path(&none),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("matches nothing"), "{}", stderr(&out));
    assert!(!none.exists());
    // A selection without a store.
    assert_eq!(
        code(&ctrace(&["options", "--since", "7d", "-o", path(&none)])),
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
        ("status", &["/var/lib/ctrace/ctrace.db", "CTRACE_DB"][..]),
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
        &["sql", "--db", path(&db), "SELECT name FROM containers"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!missing.exists());
}
