/* Layout shared by the kernel programs and userspace (the skeleton carries the structs to Rust). */
#ifndef CTRACE_EVENT_H
#define CTRACE_EVENT_H

/*
 * The one definition of every code and size kernel and userspace share: build.rs turns the
 * enums and #defines below into Rust constants (src/kernel/codes.rs), and each Rust enum is
 * built from them with a check that a member added here without one there fails the build.
 */

/* System call ABIs (struct ctrace_event.abi). */
enum ctrace_abi {
	CTRACE_ABI_X86_64 = 0,
	CTRACE_ABI_I386 = 1,
	CTRACE_ABI_X32 = 2,
	CTRACE_ABI_COUNT
};

/* Syscall numbers per ABI fit in 512 bits (x86_64 and i386 top out near 470). */
#define CTRACE_SYSCALL_WORDS 8
#define CTRACE_SYSCALL_MAX (CTRACE_SYSCALL_WORDS * 64)

/* What a ring-buffer record is (its first __u32). */
enum ctrace_kind {
	CTRACE_KIND_SYSCALL = 1,
	CTRACE_KIND_CAP_GRANTED = 2,
	CTRACE_KIND_CAP_DENIED = 3,
	CTRACE_KIND_CGROUP_NEW = 4,
	CTRACE_KIND_PHASE = 5,
};

/*
 * Phases of a container's cgroup. A new cgroup starts in the runtime's set-up (runc init),
 * which installs the container's seccomp filter and then execs the entrypoint.
 */
enum ctrace_phase {
	CTRACE_PHASE_RUNTIME = 0,          /* set-up before the seccomp filter */
	CTRACE_PHASE_RUNTIME_FILTERED = 1, /* set-up under the filter, up to the exec */
	CTRACE_PHASE_APP = 2,              /* the application */
	CTRACE_PHASE_COUNT
};

/* Why a phase event was sent (struct ctrace_phase_event). */
enum ctrace_cause {
	CTRACE_CAUSE_FILTERED_CALL = 1, /* first call of a task under a seccomp filter */
	CTRACE_CAUSE_EXEC = 2,          /* an exec that moved the phase on */
	CTRACE_CAUSE_EXEC_KEPT = 3,     /* an exec before the application that did not */
};

/* struct ctrace_cgroup_event flags */
#define CTRACE_CGROUP_SYSCALLS_DETACHED 1 /* the syscall program was not attached */

/* The events ring buffer's default size in bytes (userspace may set another). */
#define CTRACE_RINGBUF_SIZE (1 << 22)

#define CTRACE_COMM_LEN 16
#define CTRACE_CONTAINER_ID_LEN 64
#define CTRACE_CGROUP_PATH_LEN 256
/* Longest cgroup path (with its NUL) userspace can announce before it is made. */
#define CTRACE_EXPECTED_PATH_LEN 128

/* Sightings of one phase (runtime init or application). */
struct ctrace_bits {
	__u64 syscalls[CTRACE_ABI_COUNT][CTRACE_SYSCALL_WORDS];
	__u64 caps_granted;
	__u64 caps_denied;
};

/* Per-cgroup state: cgroup local storage, or a hash keyed by cgroup id on older kernels. */
struct ctrace_cgroup {
	struct ctrace_bits phase[CTRACE_PHASE_COUNT];
	__u32 phase_now;   /* CTRACE_PHASE_*; zero (runtime) for a new cgroup */
	__u32 generation;  /* the reset_generation its bitmaps belong to */
	__u32 filter_tgid; /* the thread group whose calls were first seen under a filter */
	__u32 pad;
};

/*
 * The slots backend: per-cgroup state in an array indexed by the low bits of the cgroup id
 * (direct-mapped; ids of live cgroups rarely collide), with a hash for the collisions.
 * cgroup_id == 0 marks a free slot.
 */
#define CTRACE_SLOTS 4096
struct ctrace_slot {
	__u64 cgroup_id;
	struct ctrace_cgroup state;
};

/* One first sighting. kind selects the meaning of nr. */
struct ctrace_event {
	__u32 kind;
	__u32 nr;     /* syscall number (in its ABI's table) or capability number */
	__u64 cgroup_id;
	__u64 boot_ns; /* bpf_ktime_get_boot_ns() */
	__u32 pid;     /* thread-group id */
	__u8 abi;
	__u8 phase; /* CTRACE_PHASE_* */
	__u8 pad[2];
	char comm[CTRACE_COMM_LEN];
};

/* A new container-like cgroup on the default hierarchy. */
struct ctrace_cgroup_event {
	__u32 kind;  /* CTRACE_KIND_CGROUP_NEW */
	__u32 flags; /* CTRACE_CGROUP_* */
	__u64 cgroup_id;
	__u64 boot_ns;
	char container_id[CTRACE_CONTAINER_ID_LEN];
	char path[CTRACE_CGROUP_PATH_LEN]; /* relative to the cgroup2 mount */
};

#define CTRACE_FILENAME_LEN 64

/* A cgroup's phase moved on, or an exec before the application left it where it was. */
struct ctrace_phase_event {
	__u32 kind; /* CTRACE_KIND_PHASE */
	__u8 old_phase;
	__u8 new_phase;
	__u8 cause;    /* CTRACE_CAUSE_* */
	__u8 filtered; /* the task was under a seccomp filter */
	__u64 cgroup_id;
	__u64 boot_ns;
	__u32 pid; /* thread-group id */
	__u32 filter_tgid;
	char comm[CTRACE_COMM_LEN];
	char filename[CTRACE_FILENAME_LEN]; /* the exec's file, for exec causes */
};

#endif
