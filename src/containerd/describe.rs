//! What containerd's container record says of a container: image, labels, and from its OCI
//! spec (JSON in the record) the cgroup runc puts it in, its pod sandbox and whether it has a
//! seccomp filter; and so its name, Tracefile name and whether the kernel sees its cgroup
//! being made.
//!
//! containerd's CRI plugin (1.6, `pkg/cri/server`): every container and sandbox gets
//! kubelet's `io.kubernetes.*` labels plus `io.cri-containerd.kind` (`sandbox` |
//! `container`); a sandbox's labels are the pod's labels; a container names its sandbox
//! only in the spec annotation `io.kubernetes.cri.sandbox-id` (`pkg/cri/annotations`).

use std::collections::HashMap;

use containerd_client::services::v1::Container as Record;

use crate::docker::pod::{Pod, Source};
use crate::runtimes::cgroup_path;
use crate::tracefile::label::LABEL;

/// containerd CRI's label telling a sandbox from a container.
pub const KIND: &str = "io.cri-containerd.kind";
pub const KIND_SANDBOX: &str = "sandbox";
/// containerd CRI's spec annotation naming a container's pod sandbox.
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Described {
    pub namespace: String,
    pub id: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    /// The spec's `linux.cgroupsPath`: a path (`/<namespace>/<id>` from `ctr run`) or the
    /// systemd driver's `slice:prefix:name`.
    pub cgroups_path: Option<String>,
    pub sandbox_id: Option<String>,
    /// The spec sets a seccomp filter (`ctr run` sets none unless asked).
    pub seccomp: bool,
}

impl Described {
    pub fn from_record(namespace: &str, record: &Record) -> Described {
        let spec: serde_json::Value = record
            .spec
            .as_ref()
            .and_then(|any| serde_json::from_slice(&any.value).ok())
            .unwrap_or_default();
        let text = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        Described {
            namespace: namespace.to_string(),
            id: record.id.clone(),
            image: record.image.clone(),
            labels: record.labels.clone(),
            cgroups_path: text(&spec["linux"]["cgroupsPath"]),
            sandbox_id: text(&spec["annotations"][SANDBOX_ID]),
            seccomp: !spec["linux"]["seccomp"].is_null(),
        }
    }

    pub fn is_sandbox(&self) -> bool {
        self.labels.get(KIND).map(String::as_str) == Some(KIND_SANDBOX)
    }

    /// `<pod>/<container>` for a Kubernetes container, else the container's id.
    pub fn name(&self) -> String {
        match Pod::from_labels(&self.labels) {
            Some(Pod {
                name,
                container: Some(container),
                ..
            }) => format!("{name}/{container}"),
            _ => self.id.clone(),
        }
    }

    /// The cgroup path relative to the cgroup2 mount, when the spec gives it as a path
    /// (cgroupfs driver); None for the systemd driver's form.
    pub fn cgroup_relative(&self) -> Option<&str> {
        let path = self.cgroups_path.as_deref()?;
        path.starts_with('/')
            .then(|| path.trim_matches('/'))
            .filter(|p| !p.is_empty())
    }

    /// Whether the kernel's `cgroup_mkdir` filter tracks its cgroup from creation (a leaf
    /// named like a container id). Otherwise it is traced only from when the watcher learns
    /// of its task.
    pub fn kernel_sees_creation(&self) -> bool {
        let leaf = match self.cgroups_path.as_deref() {
            Some(path) if path.starts_with('/') => path.to_string(),
            // runc's systemd driver: `slice:prefix:name` becomes `prefix-name.scope`.
            Some(systemd) => match systemd.splitn(3, ':').collect::<Vec<_>>()[..] {
                [_, prefix, name] if !prefix.is_empty() => format!("{prefix}-{name}.scope"),
                [_, _, name] => format!("{name}.scope"),
                _ => return false,
            },
            None => self.id.clone(),
        };
        cgroup_path::parse(&leaf).is_some()
    }

    /// Its Tracefile name: its own label, else its pod's (`pods`: sandbox id → the pod's
    /// value). None for sandboxes, which are never traced.
    pub fn tracefile<'a>(
        &'a self,
        pods: &'a HashMap<String, (String, Source)>,
    ) -> Option<(&'a str, Source)> {
        if self.is_sandbox() {
            return None;
        }
        if let Some(v) = self.labels.get(LABEL) {
            return Some((v, Source::Container));
        }
        let (value, source) = pods.get(self.sandbox_id.as_deref()?)?;
        Some((value, *source))
    }

    /// The store's seccomp key (`containers.seccomp`): the engine and whether the spec
    /// filters. containerd's filters are not probed (the errno probe runs Docker
    /// containers), so these keys never get an `ERRNO` section.
    pub fn seccomp_key(&self, engine: &str) -> String {
        let filter = if self.seccomp { "spec" } else { "none" };
        format!(
            "engine={engine} {}",
            serde_json::json!({ "seccomp": filter })
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::pod::{CONTAINER_NAME, POD_NAME, POD_NAMESPACE};

    const ID: &str = "0d52706f66bf76eeb663d1b2643722d053a29cba0b2fbf70b3dc1541a641f174";

    fn record(labels: &[(&str, &str)], spec: serde_json::Value) -> Record {
        Record {
            id: ID.into(),
            image: "docker.io/library/busybox:latest".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                value: serde_json::to_vec(&spec).unwrap(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_ctr_run_container() {
        let spec = serde_json::json!({"linux": {"cgroupsPath": format!("/ctrace-test/{ID}")}});
        let d = Described::from_record("ctrace-test", &record(&[(LABEL, "web-%F")], spec));
        assert_eq!(d.name(), ID);
        assert_eq!(
            d.cgroup_relative(),
            Some(format!("ctrace-test/{ID}").as_str())
        );
        assert!(d.kernel_sees_creation());
        assert!(!d.seccomp && !d.is_sandbox());
        assert_eq!(
            d.tracefile(&HashMap::new()),
            Some(("web-%F", Source::Container))
        );
        assert_eq!(
            d.seccomp_key("containerd-1.6.20"),
            r#"engine=containerd-1.6.20 {"seccomp":"none"}"#
        );
    }

    #[test]
    fn which_cgroups_the_kernel_sees_made() {
        let with = |path: &str| Described {
            id: "web".into(),
            cgroups_path: Some(path.into()),
            ..Default::default()
        };
        assert!(!with("/default/web").kernel_sees_creation(), "not an id");
        assert!(with(&format!("/kubepods/besteffort/pod1/{ID}")).kernel_sees_creation());
        assert!(!with("/kubepods/besteffort/pod1/app").kernel_sees_creation());
        assert!(with(&format!("kubepods.slice:cri-containerd:{ID}")).kernel_sees_creation());
        assert!(!with(&format!("system.slice:ctr:{ID}")).kernel_sees_creation());
        assert_eq!(
            with(&format!("system.slice:ctr:{ID}")).cgroup_relative(),
            None
        );
        let no_path = Described {
            id: ID.into(),
            ..Default::default()
        };
        assert!(no_path.kernel_sees_creation());
    }

    #[test]
    fn a_cri_container_takes_its_pods_tracefile_and_the_sandbox_is_not_traced() {
        let pod = [(POD_NAME, "web-7d4b9c-x2x"), (POD_NAMESPACE, "shop")];
        let sandbox_labels = [pod[0], pod[1], (KIND, KIND_SANDBOX), (LABEL, "shop-web")];
        let sandbox =
            Described::from_record("k8s.io", &record(&sandbox_labels, Default::default()));
        assert!(sandbox.is_sandbox());
        assert_eq!(sandbox.tracefile(&HashMap::new()), None);

        let labels = [
            pod[0],
            pod[1],
            (CONTAINER_NAME, "nginx"),
            (KIND, "container"),
        ];
        let spec = serde_json::json!({
            "annotations": {SANDBOX_ID: "s1"},
            "linux": {"cgroupsPath": "/kubepods/besteffort/pod1/x", "seccomp": {}},
        });
        let app = Described::from_record("k8s.io", &record(&labels, spec));
        assert_eq!(app.name(), "web-7d4b9c-x2x/nginx");
        assert!(app.seccomp);
        let pods = HashMap::from([("s1".to_string(), ("shop-web".to_string(), Source::PodLabel))]);
        assert_eq!(app.tracefile(&pods), Some(("shop-web", Source::PodLabel)));
        assert_eq!(app.tracefile(&HashMap::new()), None, "another pod");
    }
}
