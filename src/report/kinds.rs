//! What kind of thing a system call does, to group a profile for a reader.
//!
//! No maintained crate carries syscall categories (the `syscalls` crate has names and numbers
//! only), so this is a compact table. It follows strace's documented trace classes (strace(1),
//! `-e trace=%file`, `%network`, `%process`, `%memory`, `%signal`, `%ipc`, `%desc`; strace's
//! `sysent` flags TF, TN, TP, TM, TS, TI, TD), with three groups strace has no class for —
//! time, system information, and the privileged/security calls (those that need a capability
//! such as CAP_SYS_ADMIN or change credentials and security policy: what Docker's default
//! profile holds back) — taken out of the rest first. A call is in exactly one kind: the first
//! of [`TABLE`] that names it, else a file call by its name's pattern (strace's `%file` is
//! "takes a file name"), else [`Kind::Other`].
//!
//! i386 variants (`getuid32`, `fcntl64`, `clock_gettime64`, `*_time64`, `oldstat`,
//! `_llseek`) are looked up under their base name.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    File,
    Descriptor,
    Network,
    Process,
    Memory,
    Signal,
    Ipc,
    Time,
    Privileged,
    SystemInfo,
    Other,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::File,
        Kind::Descriptor,
        Kind::Network,
        Kind::Process,
        Kind::Memory,
        Kind::Signal,
        Kind::Ipc,
        Kind::Time,
        Kind::Privileged,
        Kind::SystemInfo,
        Kind::Other,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Kind::File => "Files and directories",
            Kind::Descriptor => "I/O on descriptors",
            Kind::Network => "Network",
            Kind::Process => "Processes and threads",
            Kind::Memory => "Memory",
            Kind::Signal => "Signals",
            Kind::Ipc => "IPC and synchronisation",
            Kind::Time => "Time and timers",
            Kind::Privileged => "Security and privileged",
            Kind::SystemInfo => "System information",
            Kind::Other => "Other",
        }
    }

    /// A CSS class name (and colour key) for the kind.
    pub fn css(self) -> &'static str {
        match self {
            Kind::File => "k-file",
            Kind::Descriptor => "k-desc",
            Kind::Network => "k-net",
            Kind::Process => "k-proc",
            Kind::Memory => "k-mem",
            Kind::Signal => "k-sig",
            Kind::Ipc => "k-ipc",
            Kind::Time => "k-time",
            Kind::Privileged => "k-priv",
            Kind::SystemInfo => "k-info",
            Kind::Other => "k-other",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// Explicit names per kind, searched in order (privileged first: `mount` is a file call too).
#[rustfmt::skip]
pub const TABLE: &[(Kind, &[&str])] = &[
    (
        Kind::Privileged,
        &[
            "mount", "umount", "umount2", "pivot_root", "chroot", "swapon", "swapoff", "reboot",
            "sethostname", "setdomainname", "iopl", "ioperm", "vm86", "vm86old", "create_module",
            "init_module", "finit_module", "delete_module", "get_kernel_syms", "query_module",
            "quotactl", "quotactl_fd", "nfsservctl", "kexec_load", "kexec_file_load", "acct",
            "syslog", "vhangup", "uselib", "lookup_dcookie", "bpf", "perf_event_open", "ptrace",
            "process_vm_readv", "process_vm_writev", "kcmp", "setns", "unshare", "fanotify_init",
            "open_by_handle_at", "name_to_handle_at", "userfaultfd", "open_tree", "open_tree_attr",
            "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "statmount",
            "listmount", "_sysctl", "bdflush", "keyctl", "add_key", "request_key", "seccomp",
            "capget", "capset", "setuid", "setgid", "setreuid", "setregid", "setresuid",
            "setresgid", "setfsuid", "setfsgid", "setgroups", "personality", "modify_ldt",
            "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
            "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules", "settimeofday",
            "clock_settime", "clock_adjtime", "adjtimex", "stime",
        ],
    ),
    (
        Kind::Network,
        &[
            "socket", "socketpair", "socketcall", "bind", "listen", "connect", "accept",
            "accept4", "send", "recv", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg",
            "recvmmsg", "shutdown", "getsockname", "getpeername", "setsockopt", "getsockopt",
        ],
    ),
    (
        Kind::Ipc,
        &[
            "ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semctl",
            "semtimedop", "shmget", "shmat", "shmdt", "shmctl", "mq_open", "mq_unlink",
            "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr", "futex",
            "futex_waitv", "futex_wake", "futex_wait", "futex_requeue", "set_robust_list",
            "get_robust_list", "membarrier",
        ],
    ),
    (
        Kind::Signal,
        &[
            "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
            "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "kill",
            "tkill", "tgkill", "pause", "signalfd", "signalfd4", "pidfd_send_signal",
            "restart_syscall", "signal", "sigaction", "sigprocmask", "sigreturn", "sigpending",
            "sigsuspend", "sgetmask", "ssetmask",
        ],
    ),
    (
        Kind::Memory,
        &[
            "mmap", "mmap2", "munmap", "mprotect", "brk", "mremap", "msync", "mincore", "madvise",
            "mlock", "mlock2", "munlock", "mlockall", "munlockall", "mbind", "set_mempolicy",
            "get_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages",
            "remap_file_pages", "pkey_mprotect", "pkey_alloc", "pkey_free", "memfd_secret",
            "process_madvise", "process_mrelease", "map_shadow_stack", "mseal",
        ],
    ),
    (
        Kind::Time,
        &[
            "time", "ftime", "gettimeofday", "clock_gettime", "clock_getres", "clock_nanosleep",
            "nanosleep", "alarm", "getitimer", "setitimer", "timer_create", "timer_settime",
            "timer_gettime", "timer_getoverrun", "timer_delete", "timerfd_create",
            "timerfd_settime", "timerfd_gettime", "times",
        ],
    ),
    (
        Kind::SystemInfo,
        &[
            "uname", "olduname", "oldolduname", "sysinfo", "sysfs", "getcpu", "getrandom",
            "ustat",
        ],
    ),
    (
        Kind::Process,
        &[
            "clone", "clone3", "fork", "vfork", "execve", "execveat", "exit", "exit_group",
            "wait4", "waitid", "waitpid", "getpid", "getppid", "gettid", "getuid", "getgid",
            "geteuid", "getegid", "getresuid", "getresgid", "getgroups", "getpgid", "setpgid",
            "getpgrp", "setsid", "getsid", "prctl", "arch_prctl", "set_tid_address",
            "set_thread_area", "get_thread_area", "rseq", "sched_yield", "sched_setparam",
            "sched_getparam", "sched_setscheduler", "sched_getscheduler",
            "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
            "sched_setaffinity", "sched_getaffinity", "sched_setattr", "sched_getattr",
            "getpriority", "setpriority", "nice", "getrlimit", "ugetrlimit", "setrlimit",
            "prlimit", "ulimit", "getrusage", "pidfd_open", "pidfd_getfd", "ioprio_set",
            "ioprio_get", "idle",
        ],
    ),
    (
        Kind::Descriptor,
        &[
            "read", "write", "close", "close_range", "readv", "writev", "pread", "pwrite",
            "preadv", "pwritev", "preadv2", "pwritev2", "lseek", "llseek", "ioctl", "fcntl",
            "dup", "dup2", "dup3", "pipe", "pipe2", "select", "pselect6", "poll", "ppoll",
            "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
            "epoll_pwait2", "eventfd", "eventfd2", "inotify_init", "inotify_init1",
            "inotify_add_watch", "inotify_rm_watch", "fanotify_mark", "sendfile", "splice",
            "tee", "vmsplice", "copy_file_range", "sync_file_range", "io_setup", "io_destroy",
            "io_getevents", "io_pgetevents", "io_submit", "io_cancel", "io_uring_setup",
            "io_uring_enter", "io_uring_register", "memfd_create", "flock", "fsync", "fdatasync",
            "syncfs", "readahead", "fadvise", "fallocate", "readdir", "getdents",
        ],
    ),
];

/// Name fragments of calls that take a file name or act on file metadata (strace's `%file`
/// and `%stat`-like classes), checked after [`TABLE`].
#[rustfmt::skip]
const FILE_PATTERNS: &[&str] = &[
    "open", "creat", "stat", "xattr", "chmod", "chown", "link", "rename", "mkdir", "rmdir",
    "mknod", "access", "truncate", "chdir", "getcwd", "utime", "sync", "umask", "file_getattr",
    "cachestat",
];

fn explicit(name: &str) -> Option<Kind> {
    TABLE
        .iter()
        .find(|(_, names)| names.contains(&name))
        .map(|(kind, _)| *kind)
        .or_else(|| {
            FILE_PATTERNS
                .iter()
                .any(|p| name.contains(p))
                .then_some(Kind::File)
        })
}

/// The names an i386 variant may stand for: itself, then without `r#`, `_time64`, a trailing
/// `64`/`32`/`_64`, a leading `_`, `old` or `new`.
fn candidates(name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    let mut i = 0;
    while i < out.len() && out.len() < 16 {
        let n = out[i].clone();
        let mut push = |s: Option<&str>| {
            if let Some(s) = s.filter(|s| !s.is_empty()) {
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
        };
        push(n.strip_prefix("r#"));
        push(n.strip_suffix("_time64"));
        push(n.strip_suffix("_64"));
        push(n.strip_suffix("64"));
        push(n.strip_suffix("32"));
        push(n.strip_prefix('_'));
        push(n.strip_prefix("old"));
        push(n.strip_prefix("new"));
        i += 1;
    }
    out
}

/// The kind of a syscall name of any ABI's table; [`Kind::Other`] when none fits.
pub fn kind_of(name: &str) -> Kind {
    candidates(name)
        .iter()
        .find_map(|c| explicit(c))
        .unwrap_or(Kind::Other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Abi;
    use crate::names;

    #[test]
    fn every_x86_64_and_i386_name_has_a_kind_and_few_are_other() {
        for abi in [Abi::X86_64, Abi::I386] {
            let all = names::syscalls(abi);
            let other: Vec<&str> = all
                .iter()
                .map(|(_, n)| *n)
                .filter(|n| kind_of(n) == Kind::Other)
                .collect();
            eprintln!(
                "{abi}: {} names, {} other: {other:?}",
                all.len(),
                other.len()
            );
            // The leftovers are unimplemented or obsolete entry points (afs_syscall, tuxcall,
            // security, vserver, getpmsg, ...), not calls programs make.
            assert!(other.len() <= 20, "{abi}: too many unclassified: {other:?}");
            for unused in [
                "read", "openat", "socket", "clone3", "mmap", "kill", "futex",
            ] {
                assert_ne!(kind_of(unused), Kind::Other, "{unused}");
            }
        }
    }

    #[test]
    fn kinds_of_well_known_calls() {
        let cases = [
            ("openat", Kind::File),
            ("newfstatat", Kind::File),
            ("fchownat", Kind::File),
            ("read", Kind::Descriptor),
            ("_llseek", Kind::Descriptor),
            ("fcntl64", Kind::Descriptor),
            ("connect", Kind::Network),
            ("socketcall", Kind::Network),
            ("execve", Kind::Process),
            ("getuid32", Kind::Process),
            ("mmap2", Kind::Memory),
            ("rt_sigaction", Kind::Signal),
            ("shmget", Kind::Ipc),
            ("futex_time64", Kind::Ipc),
            ("clock_gettime64", Kind::Time),
            ("clock_settime64", Kind::Privileged),
            ("mount", Kind::Privileged),
            ("umount2", Kind::Privileged),
            ("setuid32", Kind::Privileged),
            ("chroot", Kind::Privileged),
            ("uname", Kind::SystemInfo),
            ("tuxcall", Kind::Other),
        ];
        for (name, kind) in cases {
            assert_eq!(kind_of(name), kind, "{name}");
        }
    }

    #[test]
    fn no_name_is_listed_twice() {
        let mut seen = std::collections::BTreeSet::new();
        for (_, names) in TABLE {
            for n in *names {
                assert!(seen.insert(*n), "{n} listed twice");
            }
        }
    }
}
