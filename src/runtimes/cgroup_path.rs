//! One parser for the cgroup paths container runtimes and kubelet create: a path (relative
//! to the cgroup2 mount, or a full one under it) gives the runtime it hints at, the container
//! id and the pod's uid when kubelet made the parent. The kernel's `cgroup_mkdir` filter
//! (`bpf/cgroups.h`) accepts the same leaf names.
//!
//! Shapes, and where they come from:
//! - Docker, cgroupfs driver: `/docker/<id>`; systemd driver:
//!   `/system.slice/docker-<id>.scope` (moby `daemon/oci_linux.go`, `getCgroupsPath`: the
//!   systemd form is `system.slice:docker:<id>`, which runc's systemd driver turns into
//!   `docker-<id>.scope`).
//! - podman, cgroupfs manager: `/libpod_parent/libpod-<id>` (checked here: podman 4.3 on
//!   Debian); systemd manager: `/machine.slice/libpod-<id>.scope` (podman
//!   `libpod/runtime_ctr.go`: `CgroupParent` `machine.slice`, scope `libpod-<id>.scope`).
//!   conmon gets `libpod-conmon-<id>.scope`, which is not the container.
//! - containerd's CRI plugin: cgroupfs `/kubepods/<qos>/pod<uid>/<id>`; systemd
//!   `/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/cri-containerd-<id>.scope`
//!   (falcosecurity/libs `userspace/libsinsp/cri.cpp`, `CRI_CGROUP_LAYOUT`).
//! - CRI-O: cgroupfs `/kubepods/<qos>/pod<uid>/crio-<id>`; systemd `.../crio-<id>.scope`
//!   (same table; CJLove/rt-operator `notes/cgroupv1_notes.md`); conmon's is
//!   `crio-conmon-<id>.scope`.
//! - kubelet: `kubepods[/burstable|/besteffort]/pod<uid>` (cgroupfs; Guaranteed pods sit
//!   right under `kubepods`), and with the systemd driver each component becomes a slice
//!   named by its whole ancestry, `-` in the uid written `_` (kubernetes
//!   `pkg/kubelet/cm/cgroup_manager_linux.go`, `ToSystemd`/`escapeSystemdCgroupName`):
//!   `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice`.
//!   Qard/container-info `test/fixtures` has the cgroupfs form as read from a node.

use std::fmt;

/// The runtime a cgroup's name points at; `Unknown` when the name is a bare id outside
/// Docker's own parent (containerd and Docker look alike under kubelet's cgroupfs driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeHint {
    Docker,
    Podman,
    Containerd,
    CriO,
    Unknown,
}

impl fmt::Display for RuntimeHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuntimeHint::Docker => "docker",
            RuntimeHint::Podman => "podman",
            RuntimeHint::Containerd => "containerd",
            RuntimeHint::CriO => "cri-o",
            RuntimeHint::Unknown => "unknown runtime",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    pub runtime: RuntimeHint,
    /// The full 64-hex-digit id.
    pub id: String,
    /// The pod's uid (with dashes) when the container sits in a kubelet pod cgroup.
    pub pod_uid: Option<String>,
}

impl ContainerCgroup {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

/// Leaf prefixes, longest first where one is a prefix of another's start.
const PREFIXES: [(&str, RuntimeHint); 4] = [
    ("docker-", RuntimeHint::Docker),
    ("libpod-", RuntimeHint::Podman),
    ("cri-containerd-", RuntimeHint::Containerd),
    ("crio-", RuntimeHint::CriO),
];

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The container a cgroup path belongs to, if its leaf is named like one.
pub fn parse(path: &str) -> Option<ContainerCgroup> {
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let leaf = parts.next()?;
    let parents: Vec<&str> = parts.collect(); // nearest first
    let name = leaf.strip_suffix(".scope").unwrap_or(leaf);
    let (runtime, id) = PREFIXES
        .iter()
        .find_map(|(prefix, hint)| name.strip_prefix(prefix).map(|id| (*hint, id)))
        .unwrap_or((RuntimeHint::Unknown, name));
    if !is_container_id(id) {
        return None;
    }
    let pod_uid = parents.first().and_then(|p| pod_uid(p));
    let runtime = match runtime {
        RuntimeHint::Unknown if pod_uid.is_none() && parents.first() == Some(&"docker") => {
            RuntimeHint::Docker
        }
        r => r,
    };
    Some(ContainerCgroup {
        runtime,
        id: id.to_string(),
        pod_uid,
    })
}

/// The uid of a kubelet pod cgroup: `pod<uid>` (cgroupfs) or
/// `kubepods[-<qos>]-pod<uid with _>.slice` (systemd).
fn pod_uid(component: &str) -> Option<String> {
    let uid = match component.strip_suffix(".slice") {
        Some(slice) if slice.starts_with("kubepods") => {
            slice.rsplit_once("-pod")?.1.replace('_', "-")
        }
        Some(_) => return None,
        None => component.strip_prefix("pod")?.to_string(),
    };
    let uuid_like = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    uuid_like.then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "2a09f2e45c80d3b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c";
    const UID: &str = "74c13223-5a00-11e9-b385-42010a80018d";
    const UID_: &str = "74c13223_5a00_11e9_b385_42010a80018d";

    fn check(path: &str, runtime: RuntimeHint, pod: Option<&str>) {
        let got = parse(path).unwrap_or_else(|| panic!("{path} not recognized"));
        assert_eq!(got.id, ID, "{path}");
        assert_eq!(got.runtime, runtime, "{path}");
        assert_eq!(got.pod_uid.as_deref(), pod, "{path}");
    }

    #[test]
    fn docker_both_drivers() {
        check(&format!("/docker/{ID}"), RuntimeHint::Docker, None);
        check(
            &format!("/sys/fs/cgroup/unified/docker/{ID}"),
            RuntimeHint::Docker,
            None,
        );
        check(
            &format!("/system.slice/docker-{ID}.scope"),
            RuntimeHint::Docker,
            None,
        );
    }

    #[test]
    fn podman_both_managers() {
        check(
            &format!("/libpod_parent/libpod-{ID}"),
            RuntimeHint::Podman,
            None,
        );
        check(
            &format!("/machine.slice/libpod-{ID}.scope"),
            RuntimeHint::Podman,
            None,
        );
    }

    #[test]
    fn kubelet_cgroupfs_every_qos_class() {
        for qos in ["", "/burstable", "/besteffort"] {
            check(
                &format!("/kubepods{qos}/pod{UID}/{ID}"),
                RuntimeHint::Unknown,
                Some(UID),
            );
            check(
                &format!("/kubepods{qos}/pod{UID}/crio-{ID}"),
                RuntimeHint::CriO,
                Some(UID),
            );
        }
    }

    #[test]
    fn kubelet_systemd_every_qos_class() {
        let slices = [
            format!("/kubepods.slice/kubepods-pod{UID_}.slice"),
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice"),
            format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice"
            ),
        ];
        for pod in &slices {
            let c = format!("{pod}/cri-containerd-{ID}.scope");
            check(&c, RuntimeHint::Containerd, Some(UID));
            check(
                &format!("{pod}/crio-{ID}.scope"),
                RuntimeHint::CriO,
                Some(UID),
            );
            check(
                &format!("{pod}/docker-{ID}.scope"),
                RuntimeHint::Docker,
                Some(UID),
            );
        }
    }

    #[test]
    fn runtime_helpers_and_parents_are_not_containers() {
        for path in [
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            format!("/kubepods.slice/kubepods-pod{UID_}.slice/crio-conmon-{ID}.scope"),
            format!("/kubepods/burstable/pod{UID}"),
            "/kubepods.slice/kubepods-burstable.slice".to_string(),
            "/libpod_parent/conmon".to_string(),
            "/docker".to_string(),
            format!("/docker/{}", &ID[..12]),
            format!("/docker/{}", ID.to_uppercase()),
            format!("/system.slice/podman-{ID}.scope"),
            String::new(),
        ] {
            assert_eq!(parse(&path), None, "{path}");
        }
    }

    #[test]
    fn a_pod_uid_must_look_like_one() {
        let c = parse(&format!("/kubepods/podnotauid/{ID}")).unwrap();
        assert_eq!(c.pod_uid, None);
        assert_eq!(c.short_id(), &ID[..12]);
    }
}
