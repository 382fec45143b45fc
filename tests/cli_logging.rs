//! Log lines, levels, completions and the man page, as users meet them (no root needed).

use std::process::{Command, Output};

fn ctrace(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ctrace"));
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running ctrace")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn errors_and_warnings_say_their_level_and_go_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    // An error: one line, `ctrace: error: `, nothing on stdout, exit 2.
    let db = dir.path().join("none.db");
    let out = ctrace(&["sql", "--db", db.to_str().unwrap(), "SELECT 1"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("ctrace: error: store "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let tracefile = dir.path().join("t");
    std::fs::write(&tracefile, "ARCH\nx86_64\n\nCAPABILITIES\n\nSYSCALLS\n").unwrap();
    let profile = dir.path().join("p.json");
    let args = [
        "options",
        "--no-requirements",
        "-o",
        profile.to_str().unwrap(),
        tracefile.to_str().unwrap(),
    ];

    let out = ctrace(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ctrace: warning: the inputs record no system calls"),
        "{stderr}"
    );
    assert!(
        !text(&out.stdout).contains("warning"),
        "stdout is for output only"
    );

    // --log-level and RUST_LOG both silence it; the flag wins over the variable.
    let quiet = ctrace(&[&args[..], &["--log-level", "error"]].concat(), &[]);
    assert!(
        !text(&quiet.stderr).contains("warning"),
        "{}",
        text(&quiet.stderr)
    );
    let quiet = ctrace(&args, &[("RUST_LOG", "error")]);
    assert!(
        !text(&quiet.stderr).contains("warning"),
        "{}",
        text(&quiet.stderr)
    );
    let loud = ctrace(
        &[&args[..], &["--log-level", "warn"]].concat(),
        &[("RUST_LOG", "error")],
    );
    assert!(
        text(&loud.stderr).contains("warning"),
        "{}",
        text(&loud.stderr)
    );
}

#[test]
fn completions_and_man_page_cover_every_subcommand() {
    let subcommands = [
        "trace",
        "options",
        "diff",
        "requirements",
        "capability",
        "syscall",
        "sql",
    ];
    for shell in ["bash", "zsh", "fish"] {
        let out = ctrace(&["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for sub in subcommands {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
        assert!(
            script.contains("--since"),
            "{shell} completion lacks --since"
        );
    }
    let man = ctrace(&["man"], &[]);
    assert_eq!(man.status.code(), Some(0));
    let page = text(&man.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH ctrace 1"),
        "{page}"
    );
    for sub in subcommands {
        assert!(page.contains(sub), "man page lacks {sub}");
    }
    assert_eq!(ctrace(&["completions", "tcsh"], &[]).status.code(), Some(2));
}
