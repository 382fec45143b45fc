// SPDX-License-Identifier: GPL-2.0
/*
 * ctrace kernel side: per-cgroup bitmaps of syscalls (per ABI) and capabilities, set with an
 * atomic test-and-set; only a first sighting is sent to userspace over the ring buffer.
 * Userspace starts a new epoch now and then; each cgroup then forgets its sightings, so that
 * continued use is seen again. Per-cgroup state and the test-and-set are in state.h; how the
 * syscall program finds the running task's state without a helper call, in task_cache.h.
 * This file holds the syscall and exec programs (the phases); the capability programs are in
 * capabilities.h, the cgroup creation and removal programs in cgroups.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "event.h"
#include "state.h"
#include "task_cache.h"
#include "capabilities.h"
#include "cgroups.h"

char LICENSE[] SEC("license") = "GPL";

#define TS_COMPAT 0x0002
#define X32_SYSCALL_BIT 0x40000000ULL
#define SECCOMP_MODE_FILTER_ACTIVE 2

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
