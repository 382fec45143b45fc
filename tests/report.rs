//! `ctrace report`: the page from a real daemon's store of a real container, and from a store
//! with two windows (a fixture written through the `sightings` view's INSERT trigger), each
//! rendered by a real browser (Debian's headless chromium, no network, `file://` input): the
//! screenshot must not be blank and the rendered DOM must name the containers, as text.
//!
//! `CTRACE_REPORT_SCREENSHOT=PATH` keeps the real container's screenshot (docs/report.png).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{chromium, root_env, run_named, unique, Daemon, IMAGE};

fn ctrace(args: &[&str], db: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ctrace"));
    cmd.arg("report");
    if let Some(db) = db {
        cmd.arg("--db").arg(db);
    }
    cmd.args(args).output().expect("running ctrace report")
}

fn report_ok(db: &Path, out: &Path, args: &[&str]) -> String {
    let mut all = vec!["--output", out.to_str().unwrap()];
    all.extend(args);
    let o = ctrace(&all, Some(db));
    assert!(
        o.status.success(),
        "ctrace report failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read_to_string(out).unwrap()
}

/// Runs chromium headless on `file://html` with everything that reaches the network off;
/// kills it (by its own PID) after 90 s.
fn run_chromium(browser: &Path, html: &Path, profile: &Path, extra: &[&str]) -> Output {
    let url = format!("file://{}", html.canonicalize().unwrap().display());
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-breakpad",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--metrics-recording-only",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            "--hide-scrollbars",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// The rendered DOM and a screenshot (PNG) of the page.
fn render(browser: &Path, html: &Path, dir: &Path) -> (String, PathBuf) {
    let png = dir.join("report.png");
    let shot = run_chromium(
        browser,
        html,
        &dir.join("profile-shot"),
        &[&format!("--screenshot={}", png.display())],
    );
    assert!(
        png.exists(),
        "chromium made no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let dom = run_chromium(browser, html, &dir.join("profile-dom"), &["--dump-dom"]);
    assert!(
        dom.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    (String::from_utf8_lossy(&dom.stdout).into_owned(), png)
}

/// Decodes the screenshot and checks it shows a page, not a blank: many pixels differ from
/// the most common colour, and there are many distinct colours.
fn assert_not_blank(png: &Path) {
    let file = std::io::BufReader::new(std::fs::File::open(png).unwrap());
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a PNG's size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| &p[..3.min(p.len())])
        .collect();
    let mut counts = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    let background = counts.values().copied().max().unwrap_or(0);
    let differ = pixels.len() - background;
    eprintln!(
        "screenshot {}x{}: {} colours, {:.1}% of pixels differ from the background",
        info.width,
        info.height,
        counts.len(),
        differ as f64 * 100.0 / pixels.len() as f64
    );
    assert!((info.width, info.height) == (1280, 2000), "{info:?}");
    assert!(counts.len() >= 50, "only {} colours: blank?", counts.len());
    assert!(
        differ * 10 >= pixels.len(),
        "only {differ} of {} pixels differ from the background: blank?",
        pixels.len()
    );
}

#[test]
fn report_of_a_real_container_renders_in_a_browser() {
    let Some(_env) = root_env() else { return };
    let Some(browser) = chromium() else { return };
    let daemon = Daemon::start_in(tempfile::tempdir().unwrap(), &[], &[]);
    let label = unique("report");
    let name = unique("report-web");
    run_named(
        Some(&name),
        Some(&label),
        IMAGE,
        &["sh", "-c", "mkdir /made && chown 1:1 /made && echo done"],
    );
    daemon.wait_tracefile_final(&label, |t| t.contains("mkdir") && t.contains("chown"));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.html");
    let html = report_ok(&daemon.db(), &out, &["--label", &label]);
    assert!(html.contains(&name), "the page names the container");
    assert!(
        html.contains("<svg") && html.contains("<circle"),
        "a timeline"
    );
    assert!(html.contains("Files and directories"), "syscalls by kind");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing external"
    );

    let (dom, png) = render(&browser, &out, dir.path());
    assert!(dom.contains(&name), "the rendered DOM names {name}");
    for text in ["mkdir", "chown", "First sightings", "capabilities granted"] {
        assert!(dom.contains(text), "the rendered DOM lacks {text}");
    }
    assert_not_blank(&png);
    if let Some(keep) = std::env::var_os("CTRACE_REPORT_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}

const HOSTILE: &str = "<script>alert(1)</script>";
const DAY: i64 = 86_400_000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// (container, tracefile, kind, abi, nr, name, ms after T0)
type Row = (
    i64,
    i64,
    &'static str,
    Option<&'static str>,
    i64,
    &'static str,
    i64,
);

/// A store with label `app-%Y%m%d` in two windows (one container each, the first with a
/// hostile name), written as the daemon would through the `sightings` view's INSERT trigger
/// and `first_sightings` rows. A fixture: the windows part needs a day between two runs.
fn two_window_store(db: &Path) {
    let conn = ctrace::store::open_rw(db).unwrap();
    conn.execute(
        "INSERT INTO containers (id, container_id, name, image, label, started_at) VALUES \
         (1, 'a1b2c3d4e5f6a1b2', ?1, 'img<b>', 'app-%Y%m%d', ?2), \
         (2, 'f6e5d4c3b2a1f6e5', 'web-2', 'web:1', 'app-%Y%m%d', ?3)",
        rusqlite::params![HOSTILE, T0, T0 + DAY],
    )
    .unwrap();
    conn.execute_batch(
        "INSERT INTO tracefiles (id, path) VALUES (1, 'app-20260101'), (2, 'app-20260102');",
    )
    .unwrap();
    let rows: &[Row] = &[
        (1, 1, "syscall", Some("x86_64"), 0, "read", 100),
        (1, 1, "syscall", Some("x86_64"), 257, "openat", 200),
        (1, 1, "syscall", Some("x86_64"), 83, "mkdir", 900),
        (1, 1, "cap_granted", None, 0, "chown", 950),
        (2, 2, "syscall", Some("x86_64"), 0, "read", DAY + 100),
        (2, 2, "syscall", Some("x86_64"), 257, "openat", DAY + 300),
        (2, 2, "syscall", Some("x86_64"), 42, "connect", DAY + 5_000),
        (
            2,
            2,
            "syscall",
            Some("i386"),
            102,
            "socketcall",
            DAY + 6_000,
        ),
        (
            2,
            2,
            "cap_granted",
            None,
            10,
            "net_bind_service",
            DAY + 7_000,
        ),
        (2, 2, "cap_denied", None, 21, "sys_admin", DAY + 8_000),
    ];
    for (container, tracefile, kind, abi, nr, name, at) in rows {
        let at = T0 + at;
        conn.execute(
            "INSERT INTO sightings (container, tracefile, kind, abi, nr, name, init, first_seen, \
             last_seen, epochs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7, 1)",
            rusqlite::params![container, tracefile, kind, abi, nr, name, at],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO first_sightings (container, tracefile, kind, abi, init, items) \
             VALUES (?1, ?2, ?3, ?4, 0, json_array(json_array(?5, ?6, 1, 'sh')))",
            rusqlite::params![container, tracefile, kind, abi, nr, at],
        )
        .unwrap();
    }
}

#[test]
fn two_windows_are_compared_and_hostile_names_stay_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ctrace.db");
    two_window_store(&db);
    let out = dir.path().join("windows.html");
    let html = report_ok(&db, &out, &["--label", "app-%Y%m%d"]);

    assert!(!html.contains("<script"), "markup from the store: {html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("img&lt;b&gt;"));
    // One part per window; the newest two windows compared as `diff` does.
    assert_eq!(html.matches("<section class=\"part\">").count(), 2);
    assert!(html.contains("<code>app-20260101</code> → <code>app-20260102</code>"));
    for expected in [
        "chip added\">connect",
        "chip removed\">mkdir",
        "chip added\">net_bind_service",
        "chip removed\">chown",
        "chip added\">socketcall",
        "chip denied\">sys_admin",
        "Network (2)",
    ] {
        assert!(html.contains(expected), "{expected} missing:\n{html}");
    }
    assert!(html.contains("no runtime baseline"), "{html}");

    // Selecting by container: one part per container, titled by its name.
    let by_name = report_ok(&db, &dir.path().join("web2.html"), &["--name", "web-2"]);
    assert!(by_name.contains("<span class=\"what\">Container</span>web-2"));
    assert_eq!(by_name.matches("<section class=\"part\">").count(), 1);

    let Some(browser) = chromium() else { return };
    let (dom, png) = render(&browser, &out, dir.path());
    // The hostile name is text in the rendered DOM (serialized escaped), not an element.
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<script"), "{dom}");
    assert!(dom.contains("web-2"));
    assert_not_blank(&png);
}

#[test]
fn tracefile_inputs_and_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::write(
        &good,
        "ARCH\nx86_64\n\nCAPABILITIES\nchown\n\nSYSCALLS\nread\nsocket\n",
    )
    .unwrap();
    let out = dir.path().join("files.html");
    let o = ctrace(
        &["--output", out.to_str().unwrap(), good.to_str().unwrap()],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("Tracefile file") && html.contains("keeps no times"));
    assert!(html.contains("chip k-net\">socket"), "{html}");

    // A malformed Tracefile: exit 2, the file and line named, no output written.
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "SYSCALLS\nnot_a_syscall\n").unwrap();
    let none = dir.path().join("none.html");
    let o = ctrace(
        &[
            "--output",
            none.to_str().unwrap(),
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad:2"),
        "{o:?}"
    );
    assert!(!none.exists());

    // Store selections need a store.
    let o = ctrace(
        &[
            "--output",
            none.to_str().unwrap(),
            "--since",
            "7d",
            good.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!none.exists());
}
