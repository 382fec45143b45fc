//! Kubernetes pods as a CRI runtime shows them through the Docker API (cri-dockerd): which
//! pod and pod container a Docker container is, and a Tracefile name set on the pod.
//!
//! Keys, as the runtimes set them:
//! - `io.kubernetes.pod.{name,namespace,uid}`, `io.kubernetes.container.name`: kubelet,
//!   `pkg/kubelet/types/labels.go` (`KubernetesPodNameLabel` …), put on every container's
//!   and sandbox's CRI labels; cri-dockerd and containerd's CRI plugin keep them as labels.
//! - `io.kubernetes.docker.type` (`podsandbox` | `container`) and `io.kubernetes.sandbox.id`:
//!   cri-dockerd `core/docker_service.go` (from dockershim), set in `core/container_create.go`.
//! - `annotation.<key>`: cri-dockerd's `makeLabels` (`core/helpers.go`, `annotationPrefix`)
//!   stores CRI annotations as Docker labels with this prefix.
//!
//! What reaches which container: kubelet gives the pod's labels and annotations to the
//! *sandbox* only (`RunPodSandbox`); an application container gets the `io.kubernetes.*`
//! labels and kubelet's own annotations (hash, restart count), never the pod's. So under
//! cri-dockerd a pod label `ctrace.tracefile` is a Docker label of the pause container, and a
//! pod annotation is its `annotation.ctrace.tracefile` label; each application container
//! names that sandbox in `io.kubernetes.sandbox.id`.

use std::collections::HashMap;

use crate::tracefile::label::LABEL;

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const CONTAINER_TYPE: &str = "io.kubernetes.docker.type";
pub const SANDBOX_TYPE: &str = "podsandbox";
pub const SANDBOX_ID: &str = "io.kubernetes.sandbox.id";
/// cri-dockerd's prefix for CRI annotations stored as Docker labels.
pub const ANNOTATION_PREFIX: &str = "annotation.";

/// The pod a container belongs to, from its `io.kubernetes.*` labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub uid: Option<String>,
    /// The container's name in the pod spec (`spec.containers[].name`).
    pub container: Option<String>,
}

impl Pod {
    /// None unless both the pod's name and namespace are labelled (and not empty).
    pub fn from_labels(labels: &HashMap<String, String>) -> Option<Pod> {
        let get = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
        Some(Pod {
            name: get(POD_NAME)?,
            namespace: get(POD_NAMESPACE)?,
            uid: get(POD_UID),
            container: get(CONTAINER_NAME),
        })
    }
}

/// A pod sandbox (pause container) under cri-dockerd: never traced itself, its labels carry
/// the pod's labels and annotations.
pub fn is_sandbox(labels: &HashMap<String, String>) -> bool {
    labels.get(CONTAINER_TYPE).map(String::as_str) == Some(SANDBOX_TYPE)
}

pub fn sandbox_id(labels: &HashMap<String, String>) -> Option<&str> {
    labels
        .get(SANDBOX_ID)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// Where a container's Tracefile name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `ctrace.tracefile` on the container itself.
    Container,
    /// `annotation.ctrace.tracefile` on the container (a CRI container annotation).
    ContainerAnnotation,
    /// `ctrace.tracefile` on its pod (a label of the sandbox).
    PodLabel,
    /// `ctrace.tracefile` annotation on its pod (`annotation.ctrace.tracefile` on the sandbox).
    PodAnnotation,
}

impl Source {
    pub fn describe(self) -> String {
        match self {
            Source::Container => format!("label {LABEL}"),
            Source::ContainerAnnotation => format!("label {ANNOTATION_PREFIX}{LABEL}"),
            Source::PodLabel => format!("pod label {LABEL}"),
            Source::PodAnnotation => format!("pod annotation {LABEL}"),
        }
    }
}

/// A pod's Tracefile name from its sandbox's labels: the pod label wins over the annotation.
pub fn pod_tracefile(sandbox_labels: &HashMap<String, String>) -> Option<(&str, Source)> {
    if let Some(v) = sandbox_labels.get(LABEL) {
        return Some((v, Source::PodLabel));
    }
    sandbox_labels
        .get(&format!("{ANNOTATION_PREFIX}{LABEL}"))
        .map(|v| (v.as_str(), Source::PodAnnotation))
}

/// The Tracefile name of a container: its own label, then its own annotation label, then its
/// pod's (`pods`: sandbox id → the pod's value and source). None for sandboxes.
pub fn tracefile<'a>(
    labels: &'a HashMap<String, String>,
    pods: &'a HashMap<String, (String, Source)>,
) -> Option<(&'a str, Source)> {
    if is_sandbox(labels) {
        return None;
    }
    if let Some(v) = labels.get(LABEL) {
        return Some((v, Source::Container));
    }
    if let Some(v) = labels.get(&format!("{ANNOTATION_PREFIX}{LABEL}")) {
        return Some((v, Source::ContainerAnnotation));
    }
    let (value, source) = pods.get(sandbox_id(labels)?)?;
    Some((value, *source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The labels cri-dockerd gives an application container (core/container_create.go).
    fn app(sandbox: &str) -> HashMap<String, String> {
        labels(&[
            (POD_NAME, "web-7d4b9c-x2x"),
            (POD_NAMESPACE, "shop"),
            (POD_UID, "0b1c2d3e-aaaa-bbbb-cccc-111122223333"),
            (CONTAINER_NAME, "nginx"),
            (CONTAINER_TYPE, "container"),
            (SANDBOX_ID, sandbox),
            ("annotation.io.kubernetes.container.hash", "8e1e3a4f"),
            ("annotation.io.kubernetes.container.restartCount", "0"),
        ])
    }

    #[test]
    fn pod_from_cri_labels() {
        let pod = Pod::from_labels(&app("s1")).unwrap();
        assert_eq!(pod.name, "web-7d4b9c-x2x");
        assert_eq!(pod.namespace, "shop");
        assert_eq!(pod.container.as_deref(), Some("nginx"));
        assert!(pod.uid.unwrap().starts_with("0b1c"));
        // Not a pod: plain Docker, or half the keys, or empty values.
        assert_eq!(Pod::from_labels(&labels(&[("a", "b")])), None);
        assert_eq!(Pod::from_labels(&labels(&[(POD_NAME, "x")])), None);
        assert_eq!(
            Pod::from_labels(&labels(&[(POD_NAME, ""), (POD_NAMESPACE, "ns")])),
            None
        );
        let no_container = Pod::from_labels(&labels(&[(POD_NAME, "p"), (POD_NAMESPACE, "n")]));
        assert_eq!(no_container.unwrap().container, None);
    }

    #[test]
    fn pod_label_wins_over_pod_annotation() {
        let both = labels(&[
            (CONTAINER_TYPE, SANDBOX_TYPE),
            (LABEL, "from-label"),
            ("annotation.ctrace.tracefile", "from-annotation"),
        ]);
        assert_eq!(pod_tracefile(&both), Some(("from-label", Source::PodLabel)));
        let annotated = labels(&[("annotation.ctrace.tracefile", "a-%Y")]);
        assert_eq!(
            pod_tracefile(&annotated),
            Some(("a-%Y", Source::PodAnnotation))
        );
        assert_eq!(pod_tracefile(&labels(&[("app", "web")])), None);
    }

    #[test]
    fn the_container_wins_over_its_pod() {
        let pods = HashMap::from([("s1".to_string(), ("pod".to_string(), Source::PodLabel))]);
        assert_eq!(
            tracefile(&app("s1"), &pods),
            Some(("pod", Source::PodLabel))
        );
        assert_eq!(tracefile(&app("s2"), &pods), None, "another pod");
        let mut own = app("s1");
        own.insert("annotation.ctrace.tracefile".into(), "ann".into());
        assert_eq!(
            tracefile(&own, &pods),
            Some(("ann", Source::ContainerAnnotation))
        );
        own.insert(LABEL.into(), "mine".into());
        assert_eq!(tracefile(&own, &pods), Some(("mine", Source::Container)));
        // The sandbox carries the pod's label but is not traced.
        let sandbox = labels(&[(CONTAINER_TYPE, SANDBOX_TYPE), (LABEL, "pod")]);
        assert_eq!(tracefile(&sandbox, &pods), None);
        assert!(is_sandbox(&sandbox) && !is_sandbox(&app("s1")));
        assert_eq!(sandbox_id(&labels(&[(SANDBOX_ID, "")])), None);
    }

    #[test]
    fn plain_docker_is_unchanged() {
        let pods = HashMap::new();
        let plain = labels(&[(LABEL, "web-%F")]);
        assert_eq!(
            tracefile(&plain, &pods),
            Some(("web-%F", Source::Container))
        );
        assert_eq!(tracefile(&labels(&[]), &pods), None);
    }
}
