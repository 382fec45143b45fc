//! `ctrace status` against a real daemon and a real labelled container (a dynamically linked,
//! multi-threaded program): while the daemon runs it is named by its pid with the kernel side
//! it chose and its counters, the container with its Tracefile and what it used; after the
//! daemon stops, status says so and still lists the container from the store. Needs root
//! and dockerd (in CI a missing environment fails the test).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::programs::{self, THREADS_BIN};
use common::{root_env, run_named, unique, Daemon};
use serde_json::Value;

/// Its own tag: other test files build the same program under theirs.
const IMAGE: &str = "ctrace-test/threads-status";

fn status(db: &Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .arg("status")
        .arg("--db")
        .arg(db)
        .args(extra)
        .output()
        .expect("running ctrace status");
    assert!(
        out.status.success(),
        "ctrace status {extra:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn status_json(db: &Path) -> Value {
    let text = status(db, &["--json", "--all"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// The container named `name` in a JSON report (other tests' containers may be there too:
/// every daemon sees every labelled container).
fn find<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["containers"]["list"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

/// Polls `status --json` until `done` accepts the report (the writer commits in batches).
fn wait_report(db: &Path, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let report = status_json(db);
        if done(&report) {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed {what}:\n{report:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn status_names_the_live_daemon_and_then_reads_the_store() {
    let Some(_env) = root_env() else { return };
    programs::build_threads_image(IMAGE);
    let mut daemon = Daemon::start(&[]);
    let db = daemon.db();
    let name = unique("status");
    let label = format!("{name}.trace");
    run_named(Some(&name), Some(&label), IMAGE, &[THREADS_BIN]);
    daemon.wait_tracefile_final(&label, |t| t.contains("\nexit_group\n"));

    let live = wait_report(&db, "the container, stopped", |r| {
        find(r, &name).is_some_and(|c| c["state"] == "stopped")
    });
    let d = &live["daemon"];
    assert_eq!(d["running"], true, "{live:#}");
    assert_eq!(d["pid"], daemon.pid(), "{live:#}");
    assert_eq!(d["facts_current"], true, "{live:#}");
    assert_eq!(d["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        d["uptime_s"].is_u64() && d["stopped_at_ms"].is_null(),
        "{live:#}"
    );
    let k = &live["kernel"];
    assert!(k["capability_hook"].is_string(), "{live:#}");
    assert!(["slots", "storage"].contains(&k["cgroup_state"].as_str().unwrap_or("")));
    assert!(k["task_cache"].is_boolean() && k["syscalls_attached"].is_boolean());
    assert_eq!(k["ringbuf_bytes"], 4 << 20);
    assert_eq!(k["epoch_ms"], 3_600_000);
    for counter in ["ringbuf_misses", "claim_failures", "tracked_cgroups"] {
        assert!(live["counters"][counter].is_u64(), "{counter}: {live:#}");
    }
    assert_eq!(live["counters"]["ringbuf_misses"], 0, "{live:#}");
    assert!(live["store"]["db_bytes"].as_u64() > Some(0), "{live:#}");
    let c = find(&live, &name).expect("listed");
    assert_eq!(c["tracefile"], label.as_str());
    assert_eq!(c["image"], IMAGE);
    assert!(c["syscalls"].as_u64() > Some(10), "{c:#}");
    assert!(c["last_first_sighting_ms"].is_i64(), "{c:#}");
    assert_eq!(c["short_id"].as_str().map(str::len), Some(12));

    let text = status(&db, &["--all"]);
    assert!(
        text.starts_with(&format!("daemon      running: pid {}, ", daemon.pid())),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{name} ")) && l.contains(&label)),
        "{text}"
    );

    let pid = daemon.pid();
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let after = status_json(&db);
    let d = &after["daemon"];
    assert_eq!(d["running"], false, "{after:#}");
    assert_eq!(d["pid"], pid, "{after:#}");
    assert!(
        d["stopped_at_ms"].is_i64() && d["uptime_s"].is_null(),
        "{after:#}"
    );
    assert!(after["store"]["as_of_ms"].is_i64(), "{after:#}");
    let c = find(&after, &name).expect("still listed from the store");
    assert_eq!(c["tracefile"], label.as_str());
    assert!(c["syscalls"].as_u64() > Some(10));

    let text = status(&db, &["--all"]);
    assert!(
        text.starts_with("daemon      no daemon running; from the store as of "),
        "{text}"
    );
    assert!(
        text.contains(&format!("last daemon: pid {pid}, ")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with(&format!("{name} "))),
        "{text}"
    );

    // Anyone who can read the files can ask: as nobody, once the directory is readable.
    use std::os::unix::fs::PermissionsExt;
    let readable = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(daemon.dir.path(), readable).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_ctrace"))
        .args(["status", "--all", "--db"])
        .arg(&db)
        .output()
        .expect("running setpriv (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.lines().any(|l| l.starts_with(&format!("{name} "))),
        "as nobody: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
