//! A Tracefile window that rolls over makes only its own container report its use again.
//!
//! The daemon runs with `--epoch 1m` (epochs end on whole UTC minutes) and a local time zone
//! 30 s ahead of UTC, so a `%H%M` window rolls over at UTC :30, half-way between two epoch
//! ends. Container A writes into `…-a-%H%M`, container B into a fixed name; both repeat the
//! same calls all along. `containers.sightings_received` counts the kernel's first-sighting
//! events per container: at A's roll-over A's count must grow (it was made to report again,
//! into the new window) and B's must not. At the next epoch end B's count grows too, which
//! shows the count would have caught a reset of B.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// Seconds past the current UTC minute.
fn utc_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60
}

/// Sleeps until the UTC second is `second` (within this or the next minute).
fn sleep_until_second(second: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into_minute = Duration::from_millis((now.as_millis() % 60_000) as u64);
    let target = Duration::from_secs(second);
    let wait = if target > into_minute {
        target - into_minute
    } else {
        target + Duration::from_secs(60) - into_minute
    };
    std::thread::sleep(wait);
}

struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

fn received(daemon: &Daemon, label: &str) -> i64 {
    let rows = daemon.query(&format!(
        "SELECT sightings_received FROM containers WHERE label = '{label}'"
    ));
    assert_eq!(rows.len(), 1, "{label}: {rows:?}");
    rows[0][0].parse().unwrap()
}

/// The counts once they stop moving (both containers repeat calls they have made before).
fn settled(daemon: &Daemon, labels: [&str; 2]) -> [i64; 2] {
    let mut last = [-1, -1];
    loop {
        let now = labels.map(|l| received(daemon, l));
        if now == last && now.iter().all(|&n| n > 0) {
            return now;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(1500));
    }
}

#[test]
fn a_window_roll_over_makes_only_its_container_report_again() {
    let Some(_env) = root_env() else { return };
    // Local time = UTC + 30 s: the window of `%H%M` ends at UTC :30.
    let daemon = Daemon::start_with(&["--epoch", "1m"], &[("TZ", "CTR-0:00:30")]);
    let base = unique("roll");
    let (a, b) = (format!("{base}-a-%H%M"), format!("{base}-b"));
    let windows = || -> Vec<String> {
        let prefix = format!("{base}-a-");
        let mut names: Vec<String> = std::fs::read_dir(daemon.data())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with(&prefix))
            .collect();
        names.sort();
        names
    };
    let script = "while :; do mkdir -p /x; rmdir /x; sleep 0.2; done";

    // Start both just after an epoch end, so that they settle well before UTC :30.
    if !(1..=8).contains(&utc_second()) {
        sleep_until_second(1);
    }
    let _a = Removed(run_detached(&a, &["sh", "-c", script]));
    let _b = Removed(run_detached(&b, &["sh", "-c", script]));
    let [a1, b1] = settled(&daemon, [&a, &b]);
    assert!(
        utc_second() < 28,
        "settling took until UTC :{}; the roll-over at :30 would be missed",
        utc_second()
    );
    assert_eq!(windows().len(), 1, "{:?}", windows());

    // After A's roll-over at UTC :30, before the epoch ends at :00.
    sleep_until_second(40);
    let [a2, b2] = [received(&daemon, &a), received(&daemon, &b)];
    let after = windows();
    assert_eq!(after.len(), 2, "A's window did not roll over: {after:?}");
    let new_window = std::fs::read_to_string(daemon.data().join(&after[1])).unwrap();
    assert!(
        section(&new_window, "SYSCALLS").contains(&"mkdir".to_string()),
        "the new window holds A's continued use: {new_window}"
    );
    assert!(
        a2 > a1,
        "A reported nothing again at its roll-over: {a1} → {a2}"
    );
    assert_eq!(b1, b2, "B was made to report again by A's roll-over");

    // The control: the epoch end at UTC :00 makes B report again, so the count can move.
    sleep_until_second(8);
    let b3 = received(&daemon, &b);
    assert!(
        b3 > b2,
        "B's count did not move at the epoch end: {b2} → {b3}"
    );
}
