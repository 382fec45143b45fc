//! Tracefile labels and time windows, against the real kernel and a real dockerd (root):
//! hostile labels refused, strftime patterns expanded, a new window a new Tracefile, epochs
//! that see continued use, and a stopped container that starts no new window.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{root_env, run_container, unique, Daemon, IMAGE};

#[test]
fn hostile_label_is_refused_and_tracing_goes_on() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    let escape = format!("../{}", unique("escape"));
    run_container(Some(&escape), IMAGE, &["sh", "-c", "echo x"]);
    run_container(Some("/tmp/ctrace-absolute"), IMAGE, &["sh", "-c", "echo x"]);
    let good = unique("after-hostile");
    run_container(Some(&good), IMAGE, &["sh", "-c", "mkdir /ok"]);
    daemon.wait_tracefile(&good, |t| t.contains("mkdir"));
    let stderr = daemon.stderr();
    assert!(
        stderr.contains("refusing label") && stderr.contains(&escape),
        "{stderr}"
    );
    assert!(stderr.contains("/tmp/ctrace-absolute"), "{stderr}");
    assert!(!daemon
        .dir
        .path()
        .join(escape.trim_start_matches("../"))
        .exists());
    assert!(!Path::new("/tmp/ctrace-absolute").exists());
    let rows = daemon.query(&format!(
        "SELECT label FROM containers WHERE label IN ('{escape}', '/tmp/ctrace-absolute', '{good}')"
    ));
    assert_eq!(rows, vec![vec![good]]);
}

#[test]
fn strftime_label_expands() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    let base = unique("weekly");
    let label = format!("{base}-%Y-W%V");
    run_container(Some(&label), IMAGE, &["sh", "-c", "mkdir /w"]);
    let expanded = format!("{base}-{}", chrono::Local::now().format("%Y-W%V"));
    daemon.wait_tracefile(&expanded, |t| t.contains("mkdir"));
}

#[test]
fn a_new_strftime_window_starts_a_new_tracefile() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&["--epoch", "1s"]);
    let base = unique("window");
    // One file per second: the mkdir and the chroot land in different windows.
    let label = format!("{base}-%H%M%S");
    run_container(
        Some(&label),
        IMAGE,
        &["sh", "-c", "mkdir /a && sleep 2 && chroot / true"],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (with_mkdir, with_chroot) = loop {
        let mut files: Vec<(String, String)> = std::fs::read_dir(daemon.data())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&base))
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap_or_default(),
                )
            })
            .collect();
        files.sort();
        let mkdir = files
            .iter()
            .find(|(_, t)| t.lines().any(|l| l == "mkdir"))
            .cloned();
        let chroot = files
            .iter()
            .find(|(_, t)| t.lines().any(|l| l == "chroot"))
            .cloned();
        if let (Some(m), Some(c)) = (mkdir, chroot) {
            break (m, c);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "windows not written: {files:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_ne!(
        with_mkdir.0, with_chroot.0,
        "a later window has its own file"
    );
    assert!(
        !with_chroot.1.lines().any(|l| l == "mkdir"),
        "{}",
        with_chroot.1
    );
    // What the container keeps using is seen again in the new window.
    assert!(
        with_chroot.1.lines().any(|l| l == "chroot"),
        "{}",
        with_chroot.1
    );
}

#[test]
fn epochs_see_continued_use_again_and_coalesce_it() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&["--epoch", "2s"]);
    let name = unique("epochs");
    run_container(
        Some(&name),
        IMAGE,
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do mkdir /e$i; sleep 0.5; done",
        ],
    );
    daemon.wait_tracefile(&name, |t| t.contains("mkdir"));
    std::thread::sleep(Duration::from_millis(500));
    let rows = daemon.query(&format!(
        "SELECT sum(s.epochs), max(s.last_seen) - min(s.first_seen), count(*) FROM sightings s \
         JOIN tracefiles t ON t.id = s.tracefile \
         WHERE t.path = '{name}' AND s.name = 'mkdir' AND s.init = 0"
    ));
    // Without the kernel's reset the mkdir would be sighted once. It was used in every 2 s
    // epoch of the ~6 s run, so it is seen in at least three, over at least 4 s; its runs are
    // fewer than its epochs (steady use extends a run instead of adding one).
    let (epochs, span_ms, runs): (i64, i64, i64) = (
        rows[0][0].parse().unwrap(),
        rows[0][1].parse().unwrap(),
        rows[0][2].parse().unwrap(),
    );
    assert!(epochs >= 3, "seen in {epochs} epochs: {rows:?}");
    assert!(
        span_ms >= 4000,
        "last seen only {span_ms} ms after first: {rows:?}"
    );
    assert!(runs < epochs, "{runs} runs for {epochs} epochs: {rows:?}");
}

#[test]
fn a_stopped_container_starts_no_new_windows() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&["--epoch", "1s"]);
    let base = unique("gone");
    let label = format!("{base}-%H%M%S");
    run_container(Some(&label), IMAGE, &["sh", "-c", "mkdir /g"]);
    let files = || -> Vec<String> {
        std::fs::read_dir(daemon.data())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with(&base))
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !files()
        .iter()
        .any(|f| std::fs::read_to_string(daemon.data().join(f)).is_ok_and(|t| t.contains("mkdir")))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no Tracefile for {base}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let at_stop = files().len();
    // Windows of one second roll on; the stopped container must not follow them.
    std::thread::sleep(Duration::from_millis(3500));
    let later = files();
    assert!(
        later.len() <= at_stop + 1,
        "{at_stop} files at stop, then {later:?}"
    );
}
