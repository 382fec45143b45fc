//! The Docker seccomp profile made from a Tracefile: deny (EPERM) everything but what was
//! recorded, and answer the calls the traced container's own profile refused with another
//! errno (the Tracefile's `ERRNO` section) with that errno, in explicit rules: a program then
//! takes the fallback it took while traced (glibc's `clone3` → `clone` on ENOSYS).
//!
//! Explicit rules also keep runc's ENOSYS stub (which answers ENOSYS for numbers above the
//! profile's highest named call) from changing answers: every number the traced profile
//! answered ENOSYS is named, and every name below the highest one falls to the default.
//!
//! Docker (20.10 and newer) and runc turn the profile into one libseccomp filter holding
//! every architecture of the `archMap` entry for the host; each allowed *name* is resolved
//! once and added for every architecture of the filter where it exists (libseccomp skips an
//! architecture whose table lacks the name; runc ignores names libseccomp does not know).
//! So:
//!
//! - the filter holds x86_64 plus only the ABIs that were recorded: a container that never
//!   made an i386 or x32 call cannot make one (the filter's bad-architecture action);
//! - an i386-only name (`socketcall`, `_llseek`) allows that call on i386 and nothing on
//!   x86_64, and is accepted by Docker;
//! - one name list serves all ABIs of the filter, so a name recorded for one ABI is also
//!   allowed on the others that have it (`write` seen on x86_64 is allowed on i386 once
//!   i386 is in the filter). The profile format has no per-ABI rules; [`cross_abi`] lists
//!   what this widens, so it can be reported and counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::abi::Abi;
use crate::atomic_write::{write_atomically, WriteError};
use crate::names;
use crate::tracefile::Tracefile;

pub const ACT_ALLOW: &str = "SCMP_ACT_ALLOW";
pub const ACT_ERRNO: &str = "SCMP_ACT_ERRNO";
/// The errno denied calls get: EPERM, what a program expects of a forbidden operation.
pub const DENIED_ERRNO: u32 = libc::EPERM as u32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    pub default_action: String,
    pub default_errno_ret: u32,
    pub arch_map: Vec<ArchMap>,
    pub syscalls: Vec<SyscallRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    pub sub_architectures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: String,
    /// With SCMP_ACT_ERRNO: the errno the calls get.
    #[serde(rename = "errnoRet", default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("writing seccomp profile: {0}")]
    Write(#[from] WriteError),
    #[error("encoding seccomp profile: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The ABIs in the filter: the host's, and every other one with recorded syscalls.
pub fn abis(tracefile: &Tracefile) -> Vec<Abi> {
    let mut abis = vec![Abi::NATIVE];
    abis.extend(
        tracefile
            .syscalls
            .iter()
            .filter(|(abi, names)| **abi != Abi::NATIVE && !names.is_empty())
            .map(|(abi, _)| *abi),
    );
    abis
}

/// The kernel's returns from a signal handler and its restart of an interrupted call, per
/// ABI. A program does not call them: the kernel arranges them whenever a handler runs,
/// which depends on timing (runc init is Go, whose scheduler preempts its threads with
/// SIGURG under the container's filter), so a trace holds them only by chance. Refused,
/// the task dies of SIGSEGV. Every profile allows them; they grant nothing.
pub fn signal_returns(abi: Abi) -> &'static [&'static str] {
    match abi {
        Abi::I386 => &["restart_syscall", "rt_sigreturn", "sigreturn"],
        Abi::X86_64 | Abi::X32 => &["restart_syscall", "rt_sigreturn"],
    }
}

/// Every name the Tracefile recorded, sorted: the union over the ABIs.
fn recorded_names(tracefile: &Tracefile) -> BTreeSet<String> {
    tracefile.syscalls.values().flatten().cloned().collect()
}

/// Every allowed name, sorted: what was recorded (the union over the ABIs) and the
/// [`signal_returns`] of the filter's ABIs.
pub fn allowed_names(tracefile: &Tracefile) -> BTreeSet<String> {
    let mut names = recorded_names(tracefile);
    for abi in abis(tracefile) {
        names.extend(signal_returns(abi).iter().map(|n| n.to_string()));
    }
    names
}

/// Per ABI of the filter, the recorded names that exist in that ABI's table although they
/// were not recorded for it: what the single name list widens.
pub fn cross_abi(tracefile: &Tracefile) -> BTreeMap<Abi, BTreeSet<String>> {
    let all = recorded_names(tracefile);
    let empty = BTreeSet::new();
    abis(tracefile)
        .into_iter()
        .map(|abi| {
            let recorded = tracefile.syscalls.get(&abi).unwrap_or(&empty);
            let extra = all
                .iter()
                .filter(|name| !recorded.contains(*name))
                .filter(|name| names::syscall_number(abi, name).is_some())
                .cloned()
                .collect();
            (abi, extra)
        })
        .filter(|(_, extra): &(Abi, BTreeSet<String>)| !extra.is_empty())
        .collect()
}

/// The refused calls that need a rule of their own, by errno: those the traced profile
/// answered with something other than the default (EPERM), unless they are allowed.
pub fn refused_with(
    tracefile: &Tracefile,
    allowed: &BTreeSet<String>,
) -> BTreeMap<u32, Vec<String>> {
    let mut rules: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (name, errno) in &tracefile.errnos {
        if *errno != DENIED_ERRNO && !allowed.contains(name) {
            rules.entry(*errno).or_default().push(name.clone());
        }
    }
    rules
}

impl SeccompProfile {
    pub fn from_tracefile(tracefile: &Tracefile) -> SeccompProfile {
        let subs = abis(tracefile)
            .into_iter()
            .filter(|abi| *abi != Abi::NATIVE)
            .map(|abi| abi.seccomp_arch().to_string())
            .collect();
        let allowed = allowed_names(tracefile);
        let mut syscalls = Vec::new();
        if !allowed.is_empty() {
            syscalls.push(SyscallRule {
                names: allowed.iter().cloned().collect(),
                action: ACT_ALLOW.to_string(),
                errno_ret: None,
            });
        }
        for (errno, names) in refused_with(tracefile, &allowed) {
            syscalls.push(SyscallRule {
                names,
                action: ACT_ERRNO.to_string(),
                errno_ret: Some(errno),
            });
        }
        SeccompProfile {
            default_action: ACT_ERRNO.to_string(),
            default_errno_ret: DENIED_ERRNO,
            arch_map: vec![ArchMap {
                architecture: Abi::NATIVE.seccomp_arch().to_string(),
                sub_architectures: subs,
            }],
            syscalls,
        }
    }

    /// The architectures of the filter, host first (`SCMP_ARCH_X86_64`, `SCMP_ARCH_X86`).
    pub fn architectures(&self) -> Vec<String> {
        self.arch_map
            .iter()
            .flat_map(|a| {
                std::iter::once(a.architecture.clone()).chain(a.sub_architectures.clone())
            })
            .collect()
    }

    pub fn allowed(&self) -> impl Iterator<Item = &str> {
        self.syscalls
            .iter()
            .filter(|rule| rule.action == ACT_ALLOW)
            .flat_map(|rule| rule.names.iter().map(String::as_str))
    }

    pub fn to_json(&self) -> Result<String, ProfileError> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }
}

/// Writes the profile of `tracefile` to `path` atomically (a temporary file beside it,
/// synced, then renamed over it): readers see the old file or the whole new one, and a
/// failure leaves no partial file. Parent directories are created.
pub fn write_profile(tracefile: &Tracefile, path: &Path) -> Result<SeccompProfile, ProfileError> {
    let profile = SeccompProfile::from_tracefile(tracefile);
    write_atomically(path, profile.to_json()?.as_bytes())?;
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracefile() -> Tracefile {
        let mut tf = Tracefile::default();
        tf.add_capability("chown");
        for name in ["execve", "exit_group", "write"] {
            tf.add_syscall(Abi::X86_64, name);
        }
        for name in ["exit", "socketcall", "write"] {
            tf.add_syscall(Abi::I386, name);
        }
        tf
    }

    #[test]
    fn profile_denies_with_eperm_and_allows_the_union() {
        let profile = SeccompProfile::from_tracefile(&tracefile());
        let json: serde_json::Value = serde_json::from_str(&profile.to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "archMap": [{
                    "architecture": "SCMP_ARCH_X86_64",
                    "subArchitectures": ["SCMP_ARCH_X86"]
                }],
                "syscalls": [{
                    "names": [
                        "execve", "exit", "exit_group", "restart_syscall", "rt_sigreturn",
                        "sigreturn", "socketcall", "write"
                    ],
                    "action": "SCMP_ACT_ALLOW"
                }]
            })
        );
        assert_eq!(
            profile.architectures(),
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
        );
    }

    #[test]
    fn refused_calls_keep_the_errno_they_got_when_traced() {
        let mut tf = tracefile();
        tf.add_errno("clone3", libc::ENOSYS as u32);
        tf.add_errno("fchmodat2", libc::ENOSYS as u32);
        tf.add_errno("mkdirat", libc::EOPNOTSUPP as u32);
        tf.add_errno("write", libc::ENOSYS as u32); // allowed: no rule
        tf.add_errno("mount", libc::EPERM as u32); // the default already
        let json: serde_json::Value =
            serde_json::from_str(&SeccompProfile::from_tracefile(&tf).to_json().unwrap()).unwrap();
        assert_eq!(
            json["syscalls"],
            serde_json::json!([
                {
                    "names": [
                        "execve", "exit", "exit_group", "restart_syscall", "rt_sigreturn",
                        "sigreturn", "socketcall", "write"
                    ],
                    "action": "SCMP_ACT_ALLOW"
                },
                {"names": ["clone3", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}
            ])
        );
        let profile = SeccompProfile::from_tracefile(&tf);
        assert_eq!(
            profile.allowed().count(),
            8,
            "recorded, and i386's and x86_64's returns"
        );
    }

    #[test]
    fn only_recorded_abis_are_in_the_filter() {
        let mut tf = Tracefile::default();
        tf.add_syscall(Abi::X86_64, "read");
        tf.syscalls.entry(Abi::I386).or_default(); // an empty section adds nothing
        let profile = SeccompProfile::from_tracefile(&tf);
        assert!(profile.arch_map[0].sub_architectures.is_empty());
        tf.add_syscall(Abi::X32, "read");
        let profile = SeccompProfile::from_tracefile(&tf);
        assert_eq!(profile.arch_map[0].sub_architectures, ["SCMP_ARCH_X32"]);
        // Nothing recorded: only the kernel's signal returns.
        let empty = SeccompProfile::from_tracefile(&Tracefile::default());
        assert_eq!(
            empty.allowed().collect::<Vec<_>>(),
            signal_returns(Abi::X86_64)
        );
    }

    #[test]
    fn cross_abi_lists_what_one_name_list_widens() {
        let widened = cross_abi(&tracefile());
        // execve and exit_group exist on i386 too; socketcall and exit do not on x86_64
        // (exit does: it is recorded only for i386).
        assert_eq!(
            widened[&Abi::I386]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["execve", "exit_group"]
        );
        assert_eq!(
            widened[&Abi::X86_64]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["exit"]
        );
    }

    #[test]
    fn writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/profile.json");
        let profile = write_profile(&tracefile(), &path).unwrap();
        let back: SeccompProfile =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, profile);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1);
        assert!(matches!(
            write_profile(&tracefile(), dir.path()),
            Err(ProfileError::Write(WriteError::IsDirectory { .. }))
        ));
    }
}
