// SPDX-License-Identifier: GPL-2.0
/*
 * ctrace kernel side: per-cgroup bitmaps of syscalls (per ABI) and capabilities, set with an
 * atomic test-and-set; only a first sighting is sent to userspace over the ring buffer.
 * Userspace starts a new epoch now and then; each cgroup then forgets its sightings, so that
 * continued use is seen again. Per-cgroup state and the test-and-set are in state.h; how the
 * syscall program finds the running task's state without a helper call, in task_cache.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "event.h"
#include "state.h"
#include "task_cache.h"

char LICENSE[] SEC("license") = "GPL";

#define TS_COMPAT 0x0002
#define X32_SYSCALL_BIT 0x40000000ULL
#define CAP_OPT_NOAUDIT (1U << 1)
#define SECCOMP_MODE_FILTER_ACTIVE 2
#define STACK_FRAMES 8 /* tracepoint program, trace runner, cap_capable, callers */

/*
 * Phase changes are rare (a few per container) and say why: each is sent to userspace, which
 * logs it (--debug) and explains a recording that went wrong with it. Best effort: a full ring
 * buffer loses the report, never the change.
 */
static __noinline void report_phase(__u32 old_phase, __u32 new_phase, __u32 cause,
				    __u32 filter_tgid, struct linux_binprm *bprm)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ctrace_phase_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&ringbuf_misses, 1);
		return;
	}
	e->kind = CTRACE_KIND_PHASE;
	e->old_phase = old_phase;
	e->new_phase = new_phase;
	e->cause = cause;
	e->filtered = task->seccomp.mode == SECCOMP_MODE_FILTER_ACTIVE;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->boot_ns = bpf_ktime_get_boot_ns();
	e->pid = task->tgid;
	e->filter_tgid = filter_tgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->filename[0] = 0;
	if (bprm)
		bpf_probe_read_kernel_str(e->filename, sizeof(e->filename),
					  BPF_CORE_READ(bprm, filename));
	bpf_ringbuf_submit(e, 0);
}

/*
 * The runtime's set-up comes under the container's filter with the first call of a task that
 * has one: the thread group that installed it (runc init), which will exec the entrypoint.
 * Keyed on the task's own seccomp mode, not on seeing the seccomp() call, so a call missed
 * there cannot leave the phase behind.
 */
static __always_inline __u32 phase_for_call(struct ctrace_cgroup *st, struct task_struct *task)
{
	__u32 phase = st->phase_now;

	if (phase != CTRACE_PHASE_RUNTIME || task->seccomp.mode != SECCOMP_MODE_FILTER_ACTIVE)
		return phase;
	if (__sync_val_compare_and_swap(&st->phase_now, CTRACE_PHASE_RUNTIME,
					CTRACE_PHASE_RUNTIME_FILTERED) == CTRACE_PHASE_RUNTIME) {
		st->filter_tgid = task->tgid;
		report_phase(CTRACE_PHASE_RUNTIME, CTRACE_PHASE_RUNTIME_FILTERED,
			     CTRACE_CAUSE_FILTERED_CALL, task->tgid, NULL);
	}
	return CTRACE_PHASE_RUNTIME_FILTERED;
}

/* The ABI of this syscall; `*nr` becomes its number in that ABI's table. */
static __always_inline __u8 syscall_abi(struct task_struct *task, __u64 *nr)
{
	if (task->thread_info.status & TS_COMPAT)
		return CTRACE_ABI_I386;
	if (*nr & X32_SYSCALL_BIT) {
		*nr &= ~X32_SYSCALL_BIT;
		return CTRACE_ABI_X32;
	}
	return CTRACE_ABI_X86_64;
}

/*
 * Everything a syscall may have to do: send a first sighting, notice the runtime's set-up
 * coming under its filter. `place`: where the state of `task` (the current task) is.
 */
static __always_inline int record_syscall(long id, __u32 place, struct task_struct *task)
{
	__u64 *owner;
	struct ctrace_cgroup *st = state_at(place, task->cgroups->dfl_cgrp, &owner);
	if (!st)
		return 0;
	catch_up(st);

	__u64 nr = (__u64)id;
	__u8 abi = syscall_abi(task, &nr);

	if (nr >= CTRACE_SYSCALL_MAX)
		return 0;

	__u32 phase = phase_for_call(st, task);

	if (phase >= CTRACE_PHASE_COUNT)
		return 0;
	sight(&st->phase[phase].syscalls[abi][(nr / 64) & (CTRACE_SYSCALL_WORDS - 1)],
	      1ULL << (nr & 63), CTRACE_KIND_SYSCALL, nr, abi, phase, owner);
	return 0;
}

/* Out of line, so that the placement cache's fast path keeps nothing across helper calls. */
static __noinline int record_syscall_out_of_line(long id, __u32 place)
{
	return record_syscall(id, place, bpf_get_current_task_btf());
}

/*
 * Was this syscall's bit already set, outside the runtime's set-up? Then record_syscall()
 * would do nothing. `place`: a slot index; `task`: the current task, for reading only.
 */
static __always_inline bool seen_before(__u32 place, struct task_struct *task, long id)
{
	struct ctrace_cgroup *st = &slot_at(place)->state;
	__u32 phase = st->phase_now;
	__u64 nr = (__u64)id;
	__u8 abi = syscall_abi(task, &nr);

	if (phase == CTRACE_PHASE_RUNTIME || phase >= CTRACE_PHASE_COUNT ||
	    nr >= CTRACE_SYSCALL_MAX)
		return false;
	return *(volatile __u64 *)&st->phase[phase]
			.syscalls[abi][(nr / 64) & (CTRACE_SYSCALL_WORDS - 1)] &
	       (1ULL << (nr & 63));
}

/*
 * With the placement cache (task_cache.h). Nearly every syscall ends on the fast path: its
 * CPU's entry is the task's and valid, and says "untracked", or the bit is already set. A
 * miss takes the helper and fills the entry.
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(ctrace_sys_enter, struct pt_regs *regs, long id)
{
	struct task_cache_entry *e = cache_entry();
	struct task_struct *task;
	__u32 place;

	if (!cache_lookup(e, regs, &place, &task)) {
		task = bpf_get_current_task_btf();
		place = cache_fill(e, task, regs);
	}
	if (place == PLACE_UNTRACKED)
		return 0;
	if (place != PLACE_LOOKUP && seen_before(place, task, id))
		return 0;
	return record_syscall_out_of_line(id, place);
}

/* Without it (--no-task-cache, or a kernel that cannot have it): the helper path every call. */
SEC("tp_btf/sys_enter")
int BPF_PROG(ctrace_sys_enter_helper, struct pt_regs *regs, long id)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return record_syscall(id, placement_of(task->cgroups->dfl_cgrp), task);
}

/* An exec through a file descriptor: runc re-executing its own sealed copy (runc init). */
static __always_inline bool execs_through_fd(struct linux_binprm *bprm)
{
	char name[12] = {};

	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(bprm, filename));
	return (name[0] == '/' && name[1] == 'd' && name[2] == 'e' && name[3] == 'v' &&
		name[4] == '/' && name[5] == 'f' && name[6] == 'd' && name[7] == '/') ||
	       (name[0] == '/' && name[1] == 'p' && name[2] == 'r' && name[3] == 'o' &&
		name[4] == 'c' && name[5] == '/' && name[6] == 's' && name[7] == 'e' &&
		name[8] == 'l' && name[9] == 'f' && name[10] == '/');
}

/*
 * The entrypoint runs once an exec in the cgroup has succeeded: the runtime's other threads
 * are gone by then (they still make calls between execve's entry and here).
 *
 * Under a filter, only the thread group whose calls first showed it (runc init) moves the
 * phase on: nothing else the runtime runs can end its set-up early. An exec already under a
 * filter while the phase is still "runtime" means the filtered calls were not seen (the
 * syscall program was attached late); the application starts all the same. Without a filter
 * (an unconfined container), the first exec that is not the runtime re-executing itself
 * through a file descriptor (runc's sealed copy of its binary) is the entrypoint.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(ctrace_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 *owner;
	struct ctrace_cgroup *st = state_of(bpf_get_current_task_btf(), &owner);

	if (!st)
		return 0;
	__u32 phase = st->phase_now;
	bool filtered = BPF_CORE_READ(p, seccomp.mode) == SECCOMP_MODE_FILTER_ACTIVE;
	bool starts_app;

	if (phase == CTRACE_PHASE_APP || phase >= CTRACE_PHASE_COUNT)
		return 0;
	if (phase == CTRACE_PHASE_RUNTIME_FILTERED)
		starts_app = BPF_CORE_READ(p, tgid) == st->filter_tgid;
	else
		starts_app = filtered || !execs_through_fd(bprm);
	if (starts_app)
		st->phase_now = CTRACE_PHASE_APP;
	report_phase(phase, starts_app ? CTRACE_PHASE_APP : phase,
		     starts_app ? CTRACE_CAUSE_EXEC : CTRACE_CAUSE_EXEC_KEPT, st->filter_tgid, bprm);
	return 0;
}

/*
 * Address ranges of the kernel's audit-free capability wrappers (ns_capable_noaudit,
 * security_vm_enough_memory_mm, ...), from /proc/kallsyms; [0, 0) when unknown.
 */
#define NOAUDIT_RANGES 8
const volatile __u64 noaudit_ranges[NOAUDIT_RANGES][2] = {};

/*
 * The tracepoint carries no `opts`, so audit-free checks (probes such as memory accounting's
 * CAP_SYS_ADMIN test on every private writable mapping) would count as uses: they would put
 * SYS_ADMIN in every privileged container's needs. Their callers are found on the stack.
 */
static __always_inline bool from_noaudit_caller(void *ctx)
{
	__u64 frames[STACK_FRAMES] = {};
	long len = bpf_get_stack(ctx, frames, sizeof(frames), 0);

	for (int i = 0; i < STACK_FRAMES; i++) {
		if (i * (long)sizeof(__u64) >= len)
			break;
		for (int r = 0; r < NOAUDIT_RANGES; r++) {
			if (frames[i] >= noaudit_ranges[r][0] && frames[i] < noaudit_ranges[r][1])
				return true;
		}
	}
	return false;
}

static __always_inline void record_cap(void *ctx, const struct cred *cred, int cap, int ret,
				       bool audit_unknown)
{
	if (cap < 0 || cap >= 64)
		return;
	/*
	 * Checks made with borrowed credentials (overlayfs copy-up with the mounter's, for one)
	 * say nothing about what the container's own capabilities must allow.
	 */
	struct task_struct *task = bpf_get_current_task_btf();
	if ((__u64)cred != (__u64)BPF_CORE_READ(task, real_cred))
		return;
	__u64 *owner;
	struct ctrace_cgroup *st = state_now(task, &owner);
	if (!st)
		return;
	__u32 phase = st->phase_now;

	if (phase >= CTRACE_PHASE_COUNT)
		return;
	struct ctrace_bits *bits = &st->phase[phase];

	if (ret == 0) {
		if (*(volatile __u64 *)&bits->caps_granted & (1ULL << cap))
			return;
		if (audit_unknown && noaudit_ranges[0][1] && from_noaudit_caller(ctx))
			return;
		sight(&bits->caps_granted, 1ULL << cap, CTRACE_KIND_CAP_GRANTED, cap, 0, phase,
		      owner);
	} else
		sight(&bits->caps_denied, 1ULL << cap, CTRACE_KIND_CAP_DENIED, cap, 0, phase,
		      owner);
}

/* Kernel 6.14+: a stable tracepoint with the result. It carries no `opts`. */
SEC("tp_btf/cap_capable")
int BPF_PROG(ctrace_cap_tracepoint, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	record_cap(ctx, cred, cap, ret, true);
	return 0;
}

/* Older kernels with BPF trampolines: the result and `opts`, so audit-free probes are skipped. */
SEC("fexit/cap_capable")
int BPF_PROG(ctrace_cap_fexit, const struct cred *cred, struct user_namespace *target_ns, int cap,
	     unsigned int opts, int ret)
{
	if (opts & CAP_OPT_NOAUDIT)
		return 0;
	record_cap(ctx, cred, cap, ret, false);
	return 0;
}

/* Last resort: no result is known at entry, so every audited check counts as granted. */
SEC("kprobe/cap_capable")
int BPF_KPROBE(ctrace_cap_kprobe, const struct cred *cred, struct user_namespace *target_ns,
	       int cap, unsigned int opts)
{
	if (opts & CAP_OPT_NOAUDIT)
		return 0;
	record_cap(ctx, cred, cap, 0, false);
	return 0;
}

static __always_inline bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Copies a 64-hex-digit container id found at a fixed offset of the leaf name. */
static __always_inline bool copy_container_id(const char *leaf, __u32 offset, char *id)
{
	for (__u32 i = 0; i < CTRACE_CONTAINER_ID_LEN; i++) {
		char c = leaf[offset + i];

		if (!is_hex(c))
			return false;
		id[i] = c;
	}
	char end = leaf[offset + CTRACE_CONTAINER_ID_LEN];

	return end == 0 || end == '.';
}

/* Leaf names: <64 hex> (cgroupfs driver) or docker-<64 hex>.scope (systemd driver). */
#define LEAF_LEN 80
#define SYSTEMD_PREFIX_LEN 7

/*
 * A container cgroup is tracked from its creation, before any process runs in it, so that a
 * container living a few milliseconds is still recorded. Userspace confirms it (the container
 * carries the label) or drops it.
 */
SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(ctrace_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	/* On a hybrid host every hierarchy makes the directory; keep the unified one (id 0). */
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return 0;

	char leaf[LEAF_LEN] = {};
	const char *name = BPF_CORE_READ(cgrp, kn, name);

	if (bpf_probe_read_kernel_str(leaf, sizeof(leaf), name) < CTRACE_CONTAINER_ID_LEN)
		return 0;

	struct ctrace_cgroup_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&ringbuf_misses, 1);
		return 0;
	}
	if (!copy_container_id(leaf, 0, e->container_id) &&
	    !(leaf[0] == 'd' && leaf[SYSTEMD_PREFIX_LEN - 1] == '-' &&
	      copy_container_id(leaf, SYSTEMD_PREFIX_LEN, e->container_id)))
		goto discard;
	if (bpf_probe_read_kernel_str(e->path, sizeof(e->path), path) < 0)
		goto discard;

	__u64 id = BPF_CORE_READ(cgrp, kn, id);
	if (use_cgrp_storage) {
		if (!bpf_cgrp_storage_get(&cgroup_storage, cgrp, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
			goto discard;
	} else if (!claim_slot(id)) {
		goto discard;
	}

	e->kind = CTRACE_KIND_CGROUP_NEW;
	e->flags = syscalls_attached ? 0 : CTRACE_CGROUP_SYSCALLS_DETACHED;
	e->cgroup_id = id;
	e->boot_ns = bpf_ktime_get_boot_ns();
	if (debug)
		bpf_printk("ctrace: new container cgroup %llu %s", id, e->path);
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
discard:
	bpf_ringbuf_discard(e, 0);
	return 0;
}

/* Local storage dies with its cgroup; slots are released here. */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(ctrace_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	if (use_cgrp_storage)
		return 0;
	/*
	 * Ids are per hierarchy: on a hybrid host a v1 cgroup can carry a traced container's
	 * unified id, and removing it must not release that container's slot (as in mkdir).
	 */
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return 0;
	__u64 id = BPF_CORE_READ(cgrp, kn, id);
	struct ctrace_slot *slot = slot_at(id & slot_mask);

	/* A cached placement must not outlive the slot's owner (task_cache.h). */
	cache_hold();
	if (slot->cgroup_id == id) {
		clear_state(&slot->state);
		__sync_lock_test_and_set(&slot->cgroup_id, 0);
	} else if (!bpf_map_delete_elem(&cgroup_hash, &id)) {
		__sync_fetch_and_add(&overflow_count, -1);
	}
	cache_release();
	return 0;
}
