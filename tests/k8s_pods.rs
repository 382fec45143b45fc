//! Kubernetes pods under cri-dockerd, as the Docker API shows them (root, dockerd): a
//! sandbox (pause) container carries the pod's labels and, prefixed `annotation.`, its
//! annotations; each application container names its sandbox and its pod in
//! `io.kubernetes.*` labels (cri-dockerd core/container_create.go). No kubelet here: the
//! containers are created with the labels cri-dockerd would give them.

mod common;

use common::{docker, docker_ok, root_env, section, set, unique, Daemon, IMAGE};

/// Containers removed (`docker rm -f`) when the test ends, passed or not.
struct Removed(Vec<String>);

impl Drop for Removed {
    fn drop(&mut self) {
        for id in &self.0 {
            let _ = docker(&["rm", "-f", id]);
        }
    }
}

fn pod_labels(pod: &str, container: &str) -> Vec<String> {
    vec![
        format!("io.kubernetes.pod.name={pod}"),
        "io.kubernetes.pod.namespace=shop".to_string(),
        format!("io.kubernetes.pod.uid=uid-{pod}"),
        format!("io.kubernetes.container.name={container}"),
    ]
}

fn run_detached(labels: &[String], cmd: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--network", "none"];
    for l in labels {
        args.extend(["--label", l]);
    }
    args.push(IMAGE);
    args.extend(cmd);
    docker_ok(&args).trim().to_string()
}

/// The pause container of a pod whose labels and annotations are `pod_meta` (`key=value`).
fn sandbox(pod: &str, pod_meta: &[String]) -> String {
    let mut labels = pod_labels(pod, "POD");
    labels.push("io.kubernetes.docker.type=podsandbox".into());
    labels.extend(pod_meta.iter().cloned());
    run_detached(&labels, &["sleep", "60"])
}

/// An application container of the pod whose sandbox is `sandbox_id`.
fn app(pod: &str, sandbox_id: &str, name: &str, own: &[String], cmd: &[&str]) -> String {
    let mut labels = pod_labels(pod, name);
    labels.push("io.kubernetes.docker.type=container".into());
    labels.push(format!("io.kubernetes.sandbox.id={sandbox_id}"));
    labels.push("annotation.io.kubernetes.container.restartCount=0".into());
    labels.extend(own.iter().cloned());
    run_detached(&labels, cmd)
}

const WORK: &[&str] = &["sh", "-c", "mkdir /made && echo done && sleep 60"];

#[test]
fn a_pod_label_names_the_tracefile_and_the_pod_is_stored() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    let name = unique("podlabel");
    let pod = unique("web");
    let sb = sandbox(&pod, &[format!("ctrace.tracefile={name}")]);
    let mut gone = Removed(vec![sb.clone()]);
    gone.0.push(app(&pod, &sb, "nginx", &[], WORK));

    let text = daemon.wait_tracefile(&name, |t| t.contains("mkdir"));
    assert!(set(section(&text, "SYSCALLS")).contains("mkdir"), "{text}");
    let rows = daemon.query(&format!(
        "SELECT namespace, pod, container, pod_uid, label FROM pod_containers WHERE pod = '{pod}'"
    ));
    assert_eq!(
        rows,
        vec![vec![
            "shop".to_string(),
            pod.clone(),
            "nginx".into(),
            format!("uid-{pod}"),
            name.clone()
        ]]
    );
    // The pause container carries the pod's label but is not traced.
    let sandboxes = daemon.query(&format!(
        "SELECT count(*) FROM containers WHERE container_id = '{sb}'"
    ));
    assert_eq!(sandboxes, vec![vec!["0".to_string()]]);
}

#[test]
fn a_pod_annotation_names_the_tracefile_and_a_container_label_wins() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    let from_pod = unique("podann");
    let own = unique("own");
    let pod = unique("api");
    let sb = sandbox(&pod, &[format!("annotation.ctrace.tracefile={from_pod}")]);
    let mut gone = Removed(vec![sb.clone()]);
    gone.0.push(app(&pod, &sb, "api", &[], WORK));
    let own_label = format!("ctrace.tracefile={own}");
    gone.0.push(app(&pod, &sb, "sidecar", &[own_label], WORK));

    daemon.wait_tracefile(&from_pod, |t| t.contains("mkdir"));
    daemon.wait_tracefile(&own, |t| t.contains("mkdir"));
    let rows = daemon.query(&format!(
        "SELECT container, label FROM pod_containers WHERE pod = '{pod}' ORDER BY container"
    ));
    assert_eq!(
        rows,
        vec![
            vec!["api".to_string(), from_pod.clone()],
            vec!["sidecar".to_string(), own.clone()]
        ]
    );
}

#[test]
fn a_hostile_pod_annotation_is_refused_as_a_label_is() {
    let Some(_env) = root_env() else { return };
    let daemon = Daemon::start(&[]);
    let pod = unique("evil");
    let sb = sandbox(&pod, &["annotation.ctrace.tracefile=../escape".to_string()]);
    let mut gone = Removed(vec![sb.clone()]);
    gone.0.push(app(&pod, &sb, "x", &[], WORK));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !daemon
        .stderr()
        .contains("refusing pod annotation ctrace.tracefile")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal logged:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!daemon.data().join("../escape").exists());
    let rows = daemon.query(&format!(
        "SELECT count(*) FROM containers WHERE pod_name = '{pod}'"
    ));
    assert_eq!(rows, vec![vec!["0".to_string()]]);
}

#[test]
fn a_pod_running_before_the_daemon_is_traced_from_the_inventory() {
    let Some(_env) = root_env() else { return };
    let name = unique("podinv");
    let pod = unique("early");
    let sb = sandbox(&pod, &[format!("ctrace.tracefile={name}")]);
    let mut gone = Removed(vec![sb.clone()]);
    let looping = [
        "sh",
        "-c",
        "while true; do mkdir /m; rmdir /m; sleep 0.2; done",
    ];
    gone.0.push(app(&pod, &sb, "early", &[], &looping));
    let daemon = Daemon::start(&[]);
    daemon.wait_tracefile(&name, |t| t.contains("rmdir"));
    let rows = daemon.query(&format!(
        "SELECT container FROM pod_containers WHERE pod = '{pod}'"
    ));
    assert_eq!(rows, vec![vec!["early".to_string()]]);
}

/// The DaemonSet's readiness probe: `status --check` succeeds while a daemon traces into the
/// store, fails once it stopped.
#[test]
fn the_readiness_check_follows_the_daemon() {
    let Some(_env) = root_env() else { return };
    let mut daemon = Daemon::start(&[]);
    let check = |db: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ctrace"))
            .args(["status", "--check", "--db"])
            .arg(db)
            .output()
            .unwrap()
            .status
            .code()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while check(&daemon.db()) != Some(0) {
        assert!(std::time::Instant::now() < deadline, "{}", daemon.stderr());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(daemon.stop().success());
    assert_eq!(check(&daemon.db()), Some(1));
}
