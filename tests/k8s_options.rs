//! `options --format k8s` is what a user pastes into a pod spec: its first document, put
//! under a container of `spec.containers[]`, reads as Kubernetes' own `Container` type with
//! the capabilities and the Localhost seccomp profile; the second is a security-profiles-
//! operator `SeccompProfile` with the same rules as the profile file kubelet would read.

mod common;

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;

use common::fixtures::{APP, BASELINE};
use common::{code, ctrace, path, stderr, stdout, write};

/// A pod with one container whose keys are `snippet` (indented as a list item's).
fn pod_with(snippet: &str) -> String {
    let mut pod = String::from(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  containers:\n    - name: app\n      image: app:1\n",
    );
    for line in snippet.lines() {
        pod.push_str("      ");
        pod.push_str(line);
        pod.push('\n');
    }
    pod
}

#[test]
fn the_k8s_snippet_is_a_container_security_context_and_a_seccomp_profile() {
    let dir = tempfile::tempdir().unwrap();
    let app = write(dir.path(), "app", APP);
    let req = write(dir.path(), "req", BASELINE);
    let profile = dir.path().join("My_App.json");
    let out = ctrace(&[
        "options",
        "--format",
        "k8s",
        "--requirements",
        path(&req),
        "-o",
        path(&profile),
        path(&app),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let docs: Vec<&str> = text.split("\n---\n").collect();
    assert_eq!(docs.len(), 2, "{text}");

    // 1. The container's securityContext, read as Kubernetes reads it.
    let yaml = pod_with(docs[0]);
    let pod: Pod = serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{e}:\n{yaml}"));
    let original: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(
        serde_json::to_value(&pod).unwrap(),
        original,
        "keys the API does not know"
    );
    let container = &pod.spec.as_ref().unwrap().containers[0];
    let sc = container.security_context.as_ref().unwrap();
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    assert_eq!(
        caps.add.as_deref(),
        Some(&["CHOWN".to_string(), "NET_RAW".to_string()][..])
    );
    let seccomp = sc.seccomp_profile.as_ref().unwrap();
    assert_eq!(seccomp.type_, "Localhost");
    let local = seccomp.localhost_profile.as_deref().unwrap();
    assert_eq!(local, "operator/my-app.json");
    assert!(
        docs[0].contains("/var/lib/kubelet/seccomp/my-app.json"),
        "{}",
        docs[0]
    );

    // 2. The SeccompProfile: the profile file's rules, in the operator's spec.
    let spo = serde_yaml::Value::deserialize(serde_yaml::Deserializer::from_str(docs[1])).unwrap();
    assert_eq!(spo["apiVersion"], "security-profiles-operator.x-k8s.io/v1");
    assert_eq!(spo["kind"], "SeccompProfile");
    assert_eq!(spo["metadata"]["name"], "my-app");
    let spec = serde_json::to_value(&spo["spec"]).unwrap();
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    assert_eq!(spec["defaultAction"], file["defaultAction"]);
    let rules = |v: &serde_json::Value| -> Vec<(String, Vec<String>)> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let names = r["names"].as_array().unwrap();
                (
                    format!("{} {}", r["action"], r["errnoRet"]),
                    names
                        .iter()
                        .map(|n| n.as_str().unwrap().to_string())
                        .collect(),
                )
            })
            .collect()
    };
    assert_eq!(rules(&spec), rules(&file));
    // The file's archMap: each architecture, then its sub-architectures.
    let arches: Vec<serde_json::Value> = file["archMap"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            let subs = a["subArchitectures"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            std::iter::once(a["architecture"].clone()).chain(subs)
        })
        .collect();
    assert_eq!(spec["architectures"], serde_json::Value::Array(arches));
}
