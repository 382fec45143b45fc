//! The seccomp-relevant settings of a container, and the keys its probe results are stored
//! under.

/// The seccomp-relevant settings of a traced container, as `docker inspect` gives them
/// (HostConfig.SecurityOpt, CapAdd, CapDrop, Privileged). The Docker CLI has already
/// inlined a custom profile's JSON into `seccomp=<json>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeTarget {
    pub security_opt: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
}

impl ProbeTarget {
    /// Canonical text for caching probe results: the security options verbatim and in
    /// order (a later `seccomp=` overrides an earlier one), capabilities spelled
    /// `CAP_X`, deduplicated and sorted.
    pub fn key(&self) -> String {
        serde_json::json!({
            "security_opt": self.security_opt,
            "cap_add": canonical_caps(&self.cap_add),
            "cap_drop": canonical_caps(&self.cap_drop),
            "privileged": self.privileged,
        })
        .to_string()
    }

    /// The setting's key in the store (`containers.seccomp`, `refusals.seccomp`): the
    /// engine's version (its default profile changes with it) and [`ProbeTarget::key`].
    pub fn setting_key(&self, engine: &str) -> String {
        format!("engine={engine} {}", self.key())
    }

    /// The engine version of a [`ProbeTarget::setting_key`], if `key` is the default
    /// setting's (no security options, no capabilities added or dropped, not privileged).
    pub fn default_setting_engine(key: &str) -> Option<&str> {
        let (engine, target) = key.strip_prefix("engine=")?.split_once(' ')?;
        (target == ProbeTarget::default().key()).then_some(engine)
    }

    /// No seccomp filter at all: privileged, or `seccomp=unconfined` (`seccomp:unconfined`).
    pub fn is_unconfined(&self) -> bool {
        self.privileged
            || self
                .security_opt
                .iter()
                .any(|o| matches!(o.trim(), "seccomp=unconfined" | "seccomp:unconfined"))
    }
}

/// Docker accepts `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN`, and `ALL`.
fn canonical_caps(caps: &[String]) -> Vec<String> {
    let mut out: Vec<String> = caps
        .iter()
        .map(|c| {
            let upper = c.trim().to_ascii_uppercase();
            if upper == "ALL" || upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(opts: &[&str], add: &[&str], drop: &[&str], privileged: bool) -> ProbeTarget {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        ProbeTarget {
            security_opt: v(opts),
            cap_add: v(add),
            cap_drop: v(drop),
            privileged,
        }
    }

    #[test]
    fn unconfined_spellings() {
        assert!(target(&["seccomp=unconfined"], &[], &[], false).is_unconfined());
        assert!(target(&["label=disable", "seccomp:unconfined"], &[], &[], false).is_unconfined());
        assert!(target(&[], &[], &[], true).is_unconfined());
        assert!(!target(&[], &[], &[], false).is_unconfined());
        assert!(!target(
            &["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"],
            &[],
            &[],
            false
        )
        .is_unconfined());
        assert!(!target(&["no-new-privileges"], &["ALL"], &[], false).is_unconfined());
    }

    #[test]
    fn key_is_canonical_in_caps_only() {
        let a = target(
            &["no-new-privileges"],
            &["net_admin", "CAP_SYS_ADMIN"],
            &["CHOWN"],
            false,
        );
        let b = target(
            &["no-new-privileges"],
            &["SYS_ADMIN", "NET_ADMIN", "net_admin"],
            &["cap_chown"],
            false,
        );
        assert_eq!(a.key(), b.key());
        assert!(a.key().contains(r#"["CAP_NET_ADMIN","CAP_SYS_ADMIN"]"#));
        assert_ne!(a.key(), target(&[], &[], &[], false).key());
        let mut c = a.clone();
        c.privileged = true;
        assert_ne!(a.key(), c.key());
        let mut d = a.clone();
        d.cap_drop = vec!["ALL".into()];
        assert_ne!(a.key(), d.key());
    }

    #[test]
    fn the_default_setting_is_found_by_its_key() {
        let default = ProbeTarget::default().setting_key("20.10.24");
        assert_eq!(
            ProbeTarget::default_setting_engine(&default),
            Some("20.10.24")
        );
        let other = target(&["no-new-privileges"], &[], &[], false).setting_key("20.10.24");
        assert_eq!(ProbeTarget::default_setting_engine(&other), None);
        let caps = target(&[], &["NET_ADMIN"], &[], false).setting_key("20.10.24");
        assert_eq!(ProbeTarget::default_setting_engine(&caps), None);
        assert_eq!(ProbeTarget::default_setting_engine("default"), None);
    }
}
