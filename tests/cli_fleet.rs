//! Several stores read as one (`--db a --db b`, `--db DIR`), no root: `options` takes the
//! union with each store's own baseline and reports coverage, `diff` compares selections
//! across the stores, `report` merges parts and shows coverage, and a file that is not a
//! store (or a missing one) stops the command with its name and no output.

mod common;

use std::path::{Path, PathBuf};

use common::fixtures::{make_node_store, NodeRun};
use common::{code, ctrace, path, stderr, stdout, write};
use serde_json::{json, Value};

const BASELINE_A: &str = "ARCH\nx86_64\n\nCAPABILITIES\n\nSYSCALLS\nexecve\nfutex\n";
const BASELINE_B: &str = "ARCH\nx86_64\n\nCAPABILITIES\n\nSYSCALLS\nbrk\nexecve\n";

/// node-a: `web` twice (two runs); node-b: `web` once (with ptrace, seen nowhere else) and
/// `db`. Different engine versions, so different baselines.
fn fleet(dir: &Path) -> PathBuf {
    let nodes = dir.join("nodes");
    let sc = |nr, name| ("syscall", Some("x86_64"), nr, name);
    make_node_store(
        &nodes.join("node-a.db"),
        &[
            NodeRun {
                id: 1,
                name: "web",
                label: "web",
                items: &[
                    sc(0, "read"),
                    sc(1, "write"),
                    ("cap_granted", None, 0, "chown"),
                ],
            },
            NodeRun {
                id: 2,
                name: "web",
                label: "web",
                items: &[sc(0, "read"), sc(83, "mkdir")],
            },
        ],
        Some(("20.10.24", BASELINE_A)),
        None,
    );
    make_node_store(
        &nodes.join("node-b.db"),
        &[
            NodeRun {
                id: 7,
                name: "web",
                label: "web",
                items: &[sc(0, "read"), sc(1, "write"), sc(101, "ptrace")],
            },
            NodeRun {
                id: 8,
                name: "db",
                label: "db",
                items: &[sc(0, "read"), sc(49, "bind")],
            },
        ],
        Some(("24.0.7", BASELINE_B)),
        None,
    );
    nodes
}

fn options_json(dir: &Path, dbs: &[&Path], extra: &[&str]) -> Value {
    let profile = dir.join("p.json");
    let mut args = vec!["options", "--format", "json", "-o", path(&profile)];
    for db in dbs {
        args.extend(["--db", path(db)]);
    }
    args.extend(extra);
    let out = ctrace(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn item(name: &str, nodes: u64, containers: u64, runs: u64) -> Value {
    json!({"name": name, "kind": "syscall", "abi": "x86_64",
           "nodes": nodes, "containers": containers, "runs": runs})
}

#[test]
fn options_over_a_directory_is_the_union_with_each_stores_baseline_and_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = fleet(dir.path());
    let v = options_json(dir.path(), &[&nodes], &[]);
    assert_eq!(
        v["syscalls"]["x86_64"],
        json!(["bind", "brk", "execve", "futex", "mkdir", "ptrace", "read", "write"])
    );
    assert_eq!(v["capabilities"], json!(["chown"]));
    let b = &v["baseline"];
    assert_eq!(b["source"], "stores");
    assert_eq!(b["stores"][0]["node"], "node-a");
    assert_eq!(b["stores"][0]["engine_version"], "20.10.24");
    assert_eq!(b["stores"][1]["node"], "node-b");
    assert_eq!(b["stores"][1]["engine_version"], "24.0.7");
    let note = b["note"].as_str().unwrap();
    assert!(note.contains("20.10.24, 24.0.7"), "{note}");
    assert_eq!(
        v["coverage"],
        json!([
            {"name": "chown", "kind": "capability", "nodes": 1, "containers": 1, "runs": 1},
            item("bind", 1, 1, 1),
            item("mkdir", 1, 1, 1),
            item("ptrace", 1, 1, 1),
            item("read", 2, 3, 4),
            item("write", 2, 2, 2),
        ])
    );
    assert_eq!(
        v["coverage_totals"],
        json!({"nodes": 2, "containers": 3, "runs": 4, "single_node": 4, "single_run": 4})
    );
    // The same stores named one by one give the same profile.
    let (a, b) = (nodes.join("node-a.db"), nodes.join("node-b.db"));
    let each = options_json(dir.path(), &[&a, &b], &[]);
    assert_eq!(each["syscalls"], v["syscalls"]);
    assert_eq!(each["coverage"], v["coverage"]);
}

#[test]
fn selections_apply_on_every_store_and_only_matched_stores_add_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = fleet(dir.path());
    let v = options_json(dir.path(), &[&nodes], &["--name", "db"]);
    assert_eq!(
        v["syscalls"]["x86_64"],
        json!(["bind", "brk", "execve", "read"])
    );
    assert_eq!(v["baseline"]["stores"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["coverage"],
        json!([item("bind", 1, 1, 1), item("read", 1, 1, 1)])
    );
    let web = options_json(
        dir.path(),
        &[&nodes],
        &["--label", "web", "--no-requirements"],
    );
    assert_eq!(
        web["syscalls"]["x86_64"],
        json!(["mkdir", "ptrace", "read", "write"])
    );
    assert_eq!(web["coverage_totals"]["runs"], 3);
    // One store alone keeps its own form (source `store`) and still reports coverage.
    let one = options_json(dir.path(), &[&nodes.join("node-a.db")], &[]);
    assert_eq!(one["baseline"]["source"], "store");
    assert!(one["baseline"].get("stores").is_none());
    assert_eq!(one["coverage_totals"]["nodes"], 1);
    let nothing = ctrace(&[
        "options",
        "--db",
        path(&nodes),
        "--name",
        "x",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(code(&nothing), 2);
    assert!(
        stderr(&nothing).contains("any of the 2 stores"),
        "{}",
        stderr(&nothing)
    );
}

#[test]
fn the_node_name_comes_from_meta_when_the_store_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = fleet(dir.path());
    make_node_store(
        &nodes.join("sub/copy.db"),
        &[NodeRun {
            id: 1,
            name: "web",
            label: "web",
            items: &[("syscall", Some("x86_64"), 0, "read")],
        }],
        Some(("20.10.24", BASELINE_A)),
        Some("worker-7"),
    );
    let v = options_json(dir.path(), &[&nodes], &[]);
    let names: Vec<&str> = v["baseline"]["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["node"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node-a", "node-b", "worker-7"]);
    assert_eq!(v["coverage"][4], item("read", 3, 4, 5));
}

#[test]
fn diff_compares_selections_across_stores() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = fleet(dir.path());
    let out = ctrace(&[
        "diff",
        "--db",
        path(&nodes),
        "--a-name",
        "web",
        "--b-name",
        "db",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "CAPABILITIES\n-chown\n\nSYSCALLS\n-mkdir\n-ptrace\n-write\n+bind\n"
    );
    let a = nodes.join("node-a.db");
    let b = nodes.join("node-b.db");
    let wider = ctrace(&[
        "diff",
        "--db",
        path(&a),
        "--db",
        path(&b),
        "--a-label",
        "db",
    ]);
    assert_eq!(code(&wider), 1, "{}", stderr(&wider));
    assert_eq!(
        stdout(&wider),
        "CAPABILITIES\n+chown\n\nSYSCALLS\n+mkdir\n+ptrace\n+write\n"
    );
}

#[test]
fn report_merges_parts_across_nodes_and_shows_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = fleet(dir.path());
    let html_path = dir.path().join("r.html");
    let out = ctrace(&["report", "--db", path(&nodes), "-o", path(&html_path)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_eq!(
        html.matches("<span class=\"what\">Tracefile</span>web</h2>")
            .count(),
        1
    );
    // web: read (2 nodes, 3 runs), write (2, 2), mkdir, ptrace, chown (1 run each).
    assert!(
        html.contains("Seen in 3 runs of 2 containers on 2 nodes"),
        "{html}"
    );
    assert!(
        html.contains("<b>3</b> of 5 items rest on a single run"),
        "{html}"
    );
    assert!(
        html.contains("<b>3</b> were seen on a single node"),
        "{html}"
    );
    assert!(
        html.contains("<tr class=\"thin\"><td><code>ptrace</code></td><td>x86_64</td><td>1</td>")
    );
    assert!(html
        .contains("<tr><td><code>read</code></td><td>x86_64</td><td>2</td><td>2</td><td>3</td>"));
    assert!(html.contains("engine 20.10.24 on node-a; engine 24.0.7 on node-b"));
}

fn refused(dbs: &[&Path], dir: &Path) -> String {
    let profile = dir.join("out.json");
    let mut args = vec!["options", "-o", path(&profile)];
    for db in dbs {
        args.extend(["--db", path(db)]);
    }
    let out = ctrace(&args);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(!profile.exists(), "a refused store left an output file");
    stderr(&out)
}

#[test]
fn what_is_not_a_store_stops_the_merge_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = fleet(dir.path());
    let bogus = write(&nodes, "bogus.db", "not sqlite\n");
    let err = refused(&[&nodes], dir.path());
    assert!(
        err.contains(path(&bogus)) && err.contains("not a SQLite"),
        "{err}"
    );
    std::fs::remove_file(&bogus).unwrap();

    let missing = dir.path().join("nope.db");
    let err = refused(&[&nodes, &missing], dir.path());
    assert!(
        err.contains("nope.db") && err.contains("does not exist"),
        "{err}"
    );

    let foreign = nodes.join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = refused(&[&nodes], dir.path());
    assert!(
        err.contains("foreign.db") && err.contains("not a ctrace store"),
        "{err}"
    );
    std::fs::remove_file(&foreign).unwrap();

    let newer = nodes.join("newer.db");
    make_node_store(&newer, &[], None, None);
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = refused(&[&nodes], dir.path());
    assert!(
        err.contains("newer.db") && err.contains("schema version 99, newer"),
        "{err}"
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = refused(&[&empty], dir.path());
    assert!(err.contains("holds no store"), "{err}");
}

#[test]
fn coverage_command_lists_the_thinnest_first() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = fleet(dir.path());
    let out = ctrace(&["coverage", "--db", path(&nodes), "--label", "web"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "nodes\tcontainers\truns\tabi\tname\n\
         1\t1\t1\tcapability\tchown\n\
         1\t1\t1\tx86_64\tmkdir\n\
         1\t1\t1\tx86_64\tptrace\n\
         2\t2\t2\tx86_64\twrite\n\
         2\t2\t3\tx86_64\tread\n\
         5 items over 2 node(s), 2 container(s), 3 run(s); 3 rest on a single run, 3 were \
         seen on a single node of several\n"
    );
    let json = ctrace(&["coverage", "--db", path(&nodes), "--json", "--name", "db"]);
    let v: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(
        v["coverage"],
        json!([item("bind", 1, 1, 1), item("read", 1, 1, 1)])
    );
    assert_eq!(v["coverage_totals"]["runs"], 1);
}
