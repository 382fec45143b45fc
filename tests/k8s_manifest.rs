//! deploy/kubernetes/daemonset.yaml, read with Kubernetes' own types (k8s-openapi), holds what
//! the daemon needs on a node: privileged, the host's pids, cgroups, BTF and runtime socket,
//! a store on the node, time to drain on SIGTERM, a readiness probe, resources. Every field
//! must be one the API knows: the typed objects serialize back to the same document.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, Volume};
use serde::Deserialize;

const MANIFEST: &str = include_str!("../deploy/kubernetes/daemonset.yaml");
const STORE_DIR: &str = "/var/lib/ctrace";
/// containerd's socket on a node (kubelet's CRI runtime): what the daemon watches.
const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

fn documents() -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(MANIFEST)
        .map(|d| serde_yaml::Value::deserialize(d).expect("valid YAML"))
        .collect()
}

/// The document as `T`, checked to lose nothing: an unknown or misspelt field would be
/// dropped by the typed object and show up here.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &serde_yaml::Value) -> T {
    let object: T = serde_yaml::from_value(doc.clone()).expect("a valid object");
    let back = serde_json::to_value(&object).unwrap();
    let original = serde_json::to_value(doc).unwrap();
    assert_eq!(back, original, "fields the API does not know, or mistyped");
    object
}

fn daemonset() -> DaemonSet {
    let docs = documents();
    let ds = docs
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet");
    typed(ds)
}

fn pod(ds: &DaemonSet) -> &PodSpec {
    ds.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .unwrap()
}

fn ctrace(spec: &PodSpec) -> &Container {
    assert_eq!(spec.containers.len(), 1);
    &spec.containers[0]
}

fn volume<'a>(spec: &'a PodSpec, name: &str) -> &'a Volume {
    spec.volumes
        .iter()
        .flatten()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("volume {name}"))
}

#[test]
fn the_namespace_is_ctrace() {
    let docs = documents();
    assert_eq!(docs.len(), 2);
    let ns: Namespace = typed(&docs[0]);
    assert_eq!(ns.metadata.name.as_deref(), Some("ctrace"));
    let ds = daemonset();
    assert_eq!(ds.metadata.namespace.as_deref(), Some("ctrace"));
    let spec = ds.spec.as_ref().unwrap();
    assert_eq!(
        spec.selector.match_labels,
        spec.template.metadata.as_ref().unwrap().labels
    );
}

#[test]
fn the_daemon_is_privileged_and_sees_the_hosts_pids() {
    let ds = daemonset();
    let spec = pod(&ds);
    assert_eq!(spec.host_pid, Some(true));
    let sc = ctrace(spec).security_context.as_ref().unwrap();
    assert_eq!(sc.privileged, Some(true));
    // Docker's and containerd's default seccomp profiles refuse bpf(2).
    assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "Unconfined");
    // Every node: one toleration for every taint.
    let tolerations = spec.tolerations.as_ref().unwrap();
    assert!(tolerations
        .iter()
        .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none() && t.effect.is_none()));
}

#[test]
fn each_host_path_is_mounted_where_the_daemon_reads_it() {
    let ds = daemonset();
    let spec = pod(&ds);
    let mounts: BTreeMap<&str, (&str, bool)> = ctrace(spec)
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            (
                m.mount_path.as_str(),
                (m.name.as_str(), m.read_only.unwrap_or(false)),
            )
        })
        .collect();
    // mount path → host path, host path type, read only.
    let wanted = [
        ("/sys/fs/cgroup", "/sys/fs/cgroup", "Directory", true),
        ("/sys/kernel/btf", "/sys/kernel/btf", "Directory", true),
        (CONTAINERD_SOCKET, CONTAINERD_SOCKET, "Socket", false),
        (STORE_DIR, STORE_DIR, "DirectoryOrCreate", false),
    ];
    for (mount_path, host_path, kind, read_only) in wanted {
        let (name, ro) = mounts
            .get(mount_path)
            .unwrap_or_else(|| panic!("nothing mounted at {mount_path}"));
        assert_eq!(*ro, read_only, "{mount_path} readOnly");
        let host = volume(spec, name).host_path.as_ref().unwrap();
        assert_eq!(host.path, host_path, "{mount_path}");
        assert_eq!(host.type_.as_deref(), Some(kind), "{mount_path}");
    }
    assert_eq!(mounts.len(), wanted.len(), "{mounts:?}");
}

#[test]
fn the_daemon_gets_its_store_time_to_drain_and_a_readiness_probe() {
    let ds = daemonset();
    let spec = pod(&ds);
    // SIGTERM: the daemon drains and may wait 30 s for a store that refuses commits.
    assert!(spec.termination_grace_period_seconds.unwrap() >= 40);
    let c = ctrace(spec);
    let args = c.args.as_ref().unwrap();
    assert_eq!(args[0], "trace");
    let after = |flag: &str| {
        let i = args.iter().position(|a| a == flag).expect(flag);
        args[i + 1].clone()
    };
    assert_eq!(after("--db"), format!("{STORE_DIR}/ctrace.db"));
    assert_eq!(after("--data"), STORE_DIR);
    // The socket it watches is the one mounted (see the mounts test).
    assert_eq!(after("--containerd"), CONTAINERD_SOCKET);
    // And `trace` takes these arguments.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .args(["trace", "--containerd", CONTAINERD_SOCKET, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let probe = c.readiness_probe.as_ref().unwrap();
    let command = probe.exec.as_ref().unwrap().command.as_ref().unwrap();
    assert_eq!(
        c.command.as_ref().unwrap()[0],
        command[0],
        "the image's binary"
    );
    assert_eq!(
        &command[1..],
        [
            "status",
            "--check",
            "--db",
            &format!("{STORE_DIR}/ctrace.db")
        ]
    );
    // The probe's arguments are ones `ctrace status` accepts.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .args(&command[1..3])
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());

    let resources = c.resources.as_ref().unwrap();
    for (what, set) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        let set = set.as_ref().unwrap_or_else(|| panic!("no {what}"));
        assert!(
            set.contains_key("cpu") && set.contains_key("memory"),
            "{what}"
        );
    }
}
