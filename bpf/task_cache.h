/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-CPU placement cache: where the running task's state is, known without a helper call.
 *
 * Finding the current task costs a helper call. On this machine kind a helper's return goes
 * through the SRSO safe-return thunk: about 6 ns, most of what the syscall program cost above
 * an empty one. The syscall program does get, for free, the task's pt_regs, which sit at the
 * top of the task's own kernel stack: a key no other live task has. So each CPU keeps one
 * entry: the pt_regs it was filled for, the task, its css_set, and where that css_set's state
 * is (a slot index, "untracked", or "look it up"). A syscall whose pt_regs match uses the
 * entry once three more checks pass, none of them a call:
 *
 *   - seq, a seqlock: even and unchanged across the reads, so no fill ran meanwhile (the
 *     syscall path is preemptible, and fills by other tasks on this CPU could interleave);
 *   - the generation in `word` is task_cache_generation: no placement changed owner and no
 *     task exited since the fill (a new task can get an exited task's stack);
 *   - task->cgroups is the entry's css_set: the task was not moved since (a migration changes
 *     a running task's css_set before the cgroup_attach_task tracepoint fires).
 *
 * A miss (another task ran a syscall on this CPU since, or a check failed) takes the helper
 * path and refills the entry. Nothing runs at context switches. The syscall program's fast
 * path (ctrace.bpf.c) is a lookup here and one bit test; everything else runs out of line.
 *
 * The generation is bumped after every migration (a css_set's address can be reused), at
 * every task exit, when userspace tracks a cgroup or starts an epoch, and around every release
 * of a slot. Fills catch a slot's state up with the epoch, so a valid entry's state needs no
 * check. Releases also hold the cache: while task_cache_holds is non-zero no entry is
 * written, so no placement read before a release can be used after it. The cache starts
 * held (1); userspace lets go once the hooks are attached. Held, every syscall takes the
 * helper path: slower, never wrong.
 *
 * Included once, by ctrace.bpf.c, after state.h.
 */
#ifndef CTRACE_TASK_CACHE_H
#define CTRACE_TASK_CACHE_H

#define TASK_CACHE_CPUS 1024 /* more CPUs than this: userspace turns the cache off */

/*
 * One cache line per CPU. Aligned, or each entry straddles two lines and one CPU's fills
 * invalidate the next CPU's line: the .bss placed the array at an offset of 32 mod 64.
 */
struct task_cache_entry {
	__u64 seq;  /* seqlock: odd while a fill writes */
	__u64 regs; /* struct pt_regs * of the task it was filled for */
	__u64 word; /* generation << 32 | placement */
	__u64 task; /* struct task_struct * */
	__u64 cset; /* struct css_set * the placement was found from */
	__u64 pad[3];
} __attribute__((aligned(64)));

struct task_cache_entry task_cache[TASK_CACHE_CPUS];
__u32 task_cache_generation = 1; /* entries start at 0: never valid */
__s32 task_cache_holds = 1;

#define compiler_barrier() asm volatile("" ::: "memory")

static __always_inline struct task_cache_entry *cache_entry(void)
{
	return &task_cache[bpf_get_smp_processor_id() & (TASK_CACHE_CPUS - 1)];
}

/*
 * Fills this CPU's entry for the running `task`, whose pt_regs are `regs`; returns its
 * placement. The generation is read before the holds and the placement, so a change that
 * starts meanwhile leaves the entry stale (refilled later), never wrong. A fill that finds the
 * seqlock taken (another task's fill, preempted midway) leaves the entry alone.
 */
static __always_inline __u32 cache_fill(struct task_cache_entry *e, struct task_struct *task,
					struct pt_regs *regs)
{
	__u32 generation = *(volatile __u32 *)&task_cache_generation;
	__s32 holds = *(volatile __s32 *)&task_cache_holds;

	compiler_barrier();
	struct css_set *cset = task->cgroups;
	__u32 place = placement_of(cset->dfl_cgrp);

	/* A valid entry's state is caught up with the epoch (an epoch bumps the generation). */
	if (place < PLACE_LOOKUP)
		catch_up(&slot_at(place)->state);
	compiler_barrier();
	__u64 seq = *(volatile __u64 *)&e->seq;

	if (holds || (seq & 1) || __sync_val_compare_and_swap(&e->seq, seq, seq + 1) != seq)
		return place;
	e->regs = (__u64)regs;
	e->task = (__u64)task;
	e->cset = (__u64)cset;
	e->word = ((__u64)generation << 32) | place;
	compiler_barrier();
	*(volatile __u64 *)&e->seq = seq + 2;
	return place;
}

/*
 * The running task's placement from its CPU's entry, or false (fill it the slow way).
 * `*taskp` is the task, for reading only.
 */
static __always_inline bool cache_lookup(struct task_cache_entry *e, struct pt_regs *regs,
					 __u32 *place, struct task_struct **taskp)
{
	__u64 seq = *(volatile __u64 *)&e->seq;

	compiler_barrier();
	if ((seq & 1) || e->regs != (__u64)regs)
		return false;
	__u64 word = e->word;
	struct task_struct *task = bpf_core_cast((void *)e->task, struct task_struct);
	__u64 cset = e->cset;

	if ((__u32)(word >> 32) != *(volatile __u32 *)&task_cache_generation ||
	    (__u64)task->cgroups != cset)
		return false;
	compiler_barrier();
	if (*(volatile __u64 *)&e->seq != seq)
		return false;
	*place = (__u32)word;
	*taskp = task;
	return true;
}

/* Everything cached may be stale from here on (a placement is changing owner). */
static __always_inline void cache_hold(void)
{
	__sync_fetch_and_add(&task_cache_holds, 1);
	__sync_fetch_and_add(&task_cache_generation, 1);
}

/* The change is complete: entries are completed again, under a new generation. */
static __always_inline void cache_release(void)
{
	__sync_fetch_and_add(&task_cache_generation, 1);
	__sync_fetch_and_add(&task_cache_holds, -1);
}

/*
 * A task moved to another cgroup. Its entry already fails the css_set check; the bump is for
 * a css_set freed and reallocated at the same address for a later move.
 */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(ctrace_migrated, struct cgroup *dst, const char *path, struct task_struct *task,
	     bool threadgroup)
{
	__sync_fetch_and_add(&task_cache_generation, 1);
	return 0;
}

/* A task exits: its stack, and so its pt_regs address, can go to a new task. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(ctrace_exited, struct task_struct *p)
{
	__sync_fetch_and_add(&task_cache_generation, 1);
	return 0;
}

#endif
