//! How the restrictions are printed: `docker run` options, a compose snippet, Kubernetes
//! objects, or a JSON summary. YAML is written by hand: every value is either a capability
//! or syscall name (`[a-z0-9_]`, `[A-Z_]`) or a JSON string, which is valid YAML.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::abi::Abi;
use crate::profile::seccomp::{self, SeccompProfile};
use crate::store::coverage::{CoverageItem, CoverageTotals};
use crate::tracefile::Tracefile;

/// `net_raw` → `NET_RAW`, sorted: the `--cap-add` values.
pub fn cap_add(tracefile: &Tracefile) -> Vec<String> {
    let mut caps: Vec<String> = tracefile
        .capabilities
        .iter()
        .map(|c| c.to_ascii_uppercase())
        .collect();
    caps.sort();
    caps
}

/// `--cap-drop=ALL --cap-add=CHOWN --security-opt seccomp=FILE`
pub fn docker_options(tracefile: &Tracefile, profile_path: &Path) -> String {
    let mut out = String::from("--cap-drop=ALL");
    for cap in cap_add(tracefile) {
        out.push_str(" --cap-add=");
        out.push_str(&cap);
    }
    out.push_str(" --security-opt ");
    out.push_str(&shell_quote(&format!("seccomp={}", profile_path.display())));
    out
}

/// Quotes a word for a POSIX shell only when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn yaml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn yaml_list(out: &mut String, indent: usize, items: &[String]) {
    let pad = " ".repeat(indent);
    if items.is_empty() {
        out.push_str(" []\n");
        return;
    }
    out.push('\n');
    for item in items {
        out.push_str(&format!("{pad}- {item}\n"));
    }
}

/// The service keys of a docker-compose file. The profile path is absolute: compose files
/// usually live elsewhere.
pub fn compose(tracefile: &Tracefile, profile_path: &Path) -> String {
    let mut out = String::from("cap_drop:\n  - ALL\ncap_add:");
    yaml_list(&mut out, 2, &cap_add(tracefile));
    out.push_str("security_opt:\n");
    out.push_str(&format!(
        "  - {}\n",
        yaml_string(&format!("seccomp:{}", absolute(profile_path).display()))
    ));
    out
}

fn absolute(path: &Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A Kubernetes object name (RFC 1123 subdomain) from the profile's file name.
pub fn k8s_name(profile_path: &Path) -> String {
    let stem = profile_path
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mapped: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed: String = mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(253)
        .collect();
    let trimmed = trimmed.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "ctrace-profile".to_string()
    } else {
        trimmed.to_string()
    }
}

/// security-profiles-operator's API group and version for `SeccompProfile` (v1; operator
/// releases before v1 serve `v1beta1` with the same spec).
pub const SPO_API_VERSION: &str = "security-profiles-operator.x-k8s.io/v1";

/// A container `securityContext` and a security-profiles-operator `SeccompProfile` holding
/// the same rules as the profile file, as two YAML documents.
pub fn k8s(tracefile: &Tracefile, profile: &SeccompProfile, profile_path: &Path) -> String {
    let name = k8s_name(profile_path);
    let mut out = String::new();
    out.push_str("# Paste under each container it is for, in spec.containers[] (capabilities\n");
    out.push_str("# are per container, not pod-wide). The profile is installed on the nodes by\n");
    out.push_str("# the security-profiles-operator from the SeccompProfile below; use its\n");
    out.push_str("# status.localhostProfile (operator releases that namespace profiles name\n");
    out.push_str(&format!(
        "# operator/<namespace>/{name}.json). Without the operator, copy the profile file\n"
    ));
    out.push_str(&format!(
        "# to /var/lib/kubelet/seccomp/{name}.json on each node and use\n\
         # localhostProfile: {name}.json.\n"
    ));
    out.push_str("securityContext:\n  capabilities:\n    drop:\n      - ALL\n");
    let caps = cap_add(tracefile);
    if !caps.is_empty() {
        out.push_str("    add:");
        yaml_list(&mut out, 6, &caps);
    }
    out.push_str("  seccompProfile:\n    type: Localhost\n");
    out.push_str(&format!(
        "    localhostProfile: {}\n",
        yaml_string(&format!("operator/{name}.json"))
    ));
    out.push_str("---\n");
    out.push_str(&format!(
        "apiVersion: {SPO_API_VERSION}\nkind: SeccompProfile\n"
    ));
    out.push_str(&format!("metadata:\n  name: {}\n", yaml_string(&name)));
    out.push_str(&format!(
        "spec:\n  defaultAction: {}\n",
        profile.default_action
    ));
    out.push_str("  architectures:");
    yaml_list(&mut out, 4, &profile.architectures());
    out.push_str("  syscalls:");
    if profile.syscalls.is_empty() {
        out.push_str(" []\n");
    } else {
        out.push('\n');
        for rule in &profile.syscalls {
            out.push_str(&format!("    - action: {}\n", rule.action));
            if let Some(errno) = rule.errno_ret {
                out.push_str(&format!("      errnoRet: {errno}\n"));
            }
            out.push_str("      names:");
            yaml_list(&mut out, 8, &rule.names);
        }
    }
    out
}

/// Where the runtime baseline came from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BaselineSummary {
    /// `file`, `store` or `none`.
    pub source: String,
    /// The requirements Tracefile or the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub capabilities: usize,
    pub syscalls: usize,
    /// With several stores: each one's own baseline, added for its containers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<StoreBaseline>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The runtime baseline one store of several contributed.
#[derive(Debug, Clone, Serialize)]
pub struct StoreBaseline {
    pub node: String,
    pub path: String,
    pub engine_version: String,
    pub capabilities: usize,
    pub syscalls: usize,
}

#[derive(Debug, Serialize)]
pub struct Counts {
    pub capabilities: usize,
    /// Per ABI, as recorded (with the baseline).
    pub syscalls: BTreeMap<Abi, usize>,
    /// Names in the profile's allow rule.
    pub allowed_names: usize,
}

/// The `--format json` document.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub profile: String,
    pub capabilities: Vec<String>,
    pub cap_add: Vec<String>,
    pub syscalls: BTreeMap<Abi, Vec<String>>,
    /// Refused calls answered with an errno other than EPERM, as the traced profile did.
    pub errnos: BTreeMap<String, u32>,
    pub architectures: Vec<String>,
    /// Names also allowed on an ABI where they were not recorded (one list serves all).
    pub cross_abi: BTreeMap<Abi, Vec<String>>,
    pub baseline: BaselineSummary,
    pub inputs: Vec<String>,
    pub counts: Counts,
    pub docker_options: String,
    /// Per recorded item of the store selection: on how many nodes, containers and runs it
    /// was seen (the profile still allows every one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Vec<CoverageItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage_totals: Option<CoverageTotals>,
}

impl Summary {
    pub fn new(
        tracefile: &Tracefile,
        profile: &SeccompProfile,
        profile_path: &Path,
        baseline: BaselineSummary,
        inputs: Vec<String>,
    ) -> Summary {
        let syscalls: BTreeMap<Abi, Vec<String>> = tracefile
            .syscalls
            .iter()
            .filter(|(_, names)| !names.is_empty())
            .map(|(abi, names)| (*abi, names.iter().cloned().collect()))
            .collect();
        Summary {
            profile: profile_path.display().to_string(),
            capabilities: tracefile.capabilities.iter().cloned().collect(),
            cap_add: cap_add(tracefile),
            counts: Counts {
                capabilities: tracefile.capabilities.len(),
                syscalls: syscalls
                    .iter()
                    .map(|(abi, names)| (*abi, names.len()))
                    .collect(),
                allowed_names: profile.allowed().count(),
            },
            syscalls,
            errnos: seccomp::refused_with(tracefile, &seccomp::allowed_names(tracefile))
                .into_iter()
                .flat_map(|(errno, names)| names.into_iter().map(move |n| (n, errno)))
                .collect(),
            architectures: profile.architectures(),
            cross_abi: seccomp::cross_abi(tracefile)
                .into_iter()
                .map(|(abi, names)| (abi, names.into_iter().collect()))
                .collect(),
            baseline,
            inputs,
            docker_options: docker_options(tracefile, profile_path),
            coverage: None,
            coverage_totals: None,
        }
    }

    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracefile() -> Tracefile {
        let mut tf = Tracefile::default();
        for cap in ["sys_chroot", "chown", "net_raw"] {
            tf.add_capability(cap);
        }
        tf.add_syscall(Abi::X86_64, "read");
        tf.add_syscall(Abi::I386, "_llseek");
        tf.add_errno("clone3", 38);
        tf
    }

    #[test]
    fn docker_options_use_the_equals_form() {
        assert_eq!(
            docker_options(&tracefile(), Path::new("data/app.json")),
            "--cap-drop=ALL --cap-add=CHOWN --cap-add=NET_RAW --cap-add=SYS_CHROOT \
             --security-opt seccomp=data/app.json"
        );
        assert_eq!(
            docker_options(&Tracefile::default(), Path::new("my dir/it's.json")),
            r"--cap-drop=ALL --security-opt 'seccomp=my dir/it'\''s.json'"
        );
    }

    #[test]
    fn compose_snippet() {
        let out = compose(&tracefile(), Path::new("/p/app.json"));
        assert_eq!(
            out,
            "cap_drop:\n  - ALL\ncap_add:\n  - CHOWN\n  - NET_RAW\n  - SYS_CHROOT\n\
             security_opt:\n  - \"seccomp:/p/app.json\"\n"
        );
        assert!(compose(&Tracefile::default(), Path::new("/p/x.json")).contains("cap_add: []\n"));
    }

    #[test]
    fn k8s_objects() {
        let tf = tracefile();
        let profile = SeccompProfile::from_tracefile(&tf);
        let out = k8s(&tf, &profile, Path::new("out/My_App.json"));
        assert!(
            out.contains("    drop:\n      - ALL\n    add:\n      - CHOWN\n"),
            "{out}"
        );
        assert!(
            out.contains("localhostProfile: \"operator/my-app.json\""),
            "{out}"
        );
        assert!(out.contains("apiVersion: security-profiles-operator.x-k8s.io/v1\n"));
        assert!(
            out.contains("kind: SeccompProfile\nmetadata:\n  name: \"my-app\"\n"),
            "{out}"
        );
        assert!(out.contains("  architectures:\n    - SCMP_ARCH_X86_64\n    - SCMP_ARCH_X86\n"));
        assert!(out.contains(
            "    - action: SCMP_ACT_ALLOW\n      names:\n        - _llseek\n        - read\n"
        ));
        assert!(
            out.contains(
                "    - action: SCMP_ACT_ERRNO\n      errnoRet: 38\n      names:\n        - clone3\n"
            ),
            "{out}"
        );
        assert_eq!(k8s_name(Path::new("__.json")), "ctrace-profile");
    }

    #[test]
    fn summary_counts() {
        let tf = tracefile();
        let profile = SeccompProfile::from_tracefile(&tf);
        let baseline = BaselineSummary {
            source: "none".into(),
            path: None,
            capabilities: 0,
            syscalls: 0,
            ..BaselineSummary::default()
        };
        let s = Summary::new(
            &tf,
            &profile,
            Path::new("p.json"),
            baseline,
            vec!["t".into()],
        );
        let v: serde_json::Value = serde_json::from_str(&s.to_json().unwrap()).unwrap();
        assert_eq!(
            v["counts"]["allowed_names"], 5,
            "read, and the signal returns of both ABIs"
        );
        assert_eq!(v["counts"]["syscalls"]["i386"], 1);
        assert_eq!(v["syscalls"]["x86_64"][0], "read");
        assert_eq!(v["cross_abi"]["i386"][0], "read");
        assert_eq!(v["cap_add"][2], "SYS_CHROOT");
        assert_eq!(v["errnos"]["clone3"], 38);
    }
}
