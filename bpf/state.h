/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-cgroup state of the kernel programs: where it lives (slots or cgroup local storage),
 * how a task finds its cgroup's state, and the test-and-set that sends first sightings.
 * Included once, by ctrace.bpf.c.
 */
#ifndef CTRACE_STATE_H
#define CTRACE_STATE_H

/*
 * Chosen by userspace (see src/kernel/probe.rs): cgroup local storage, or slots (a global
 * array indexed by the cgroup id's low bits, `slot_mask`, with `cgroup_hash` for collisions).
 * The slots live in .bss: indexed directly, no helper or stack key, and userspace claims and
 * releases them with atomics through the same memory mapping.
 */
const volatile bool use_cgrp_storage = false;
const volatile __u32 slot_mask = CTRACE_SLOTS - 1;
const volatile bool debug = false;

/* Nothing is lost on a full ring buffer: the bit is rolled back and the miss counted. */
__u64 ringbuf_misses = 0;
/*
 * Cgroups given no state (slot taken, the collision hash refused them: full): their
 * containers go untraced. Counted here by cgroup_mkdir, and by userspace's track().
 */
__u64 claim_failures = 0;
/*
 * Epochs: userspace bumps this; each cgroup forgets its sightings on its next event, here in
 * the kernel, so that nothing outside ever rewrites a cgroup's state (and its phase).
 */
__u32 reset_generation = 0;
/* Cgroups whose state lives in cgroup_hash (slot taken); untracked tasks skip it while 0. */
__s64 overflow_count = 0;
/* Set by userspace while the syscall program is attached (reported with new cgroups). */
__u32 syscalls_attached = 0;

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ctrace_cgroup);
} cgroup_storage SEC(".maps");

struct ctrace_slot slots[CTRACE_SLOTS];

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ctrace_cgroup);
} cgroup_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CTRACE_RINGBUF_SIZE);
} events SEC(".maps");

static const struct ctrace_cgroup zero_state;

/* Referenced so that their layouts reach BTF and the skeleton's Rust types. */
struct ctrace_event _ctrace_event = {};
struct ctrace_cgroup_event _ctrace_cgroup_event = {};
struct ctrace_phase_event _ctrace_phase_event = {};

static __always_inline struct ctrace_slot *slot_at(__u32 idx)
{
	return &slots[idx & (CTRACE_SLOTS - 1)];
}

#define PLACE_UNTRACKED 0xffffffffU
#define PLACE_LOOKUP 0xfffffffeU /* local storage or the hash: a helper finds it */

/*
 * Where a cgroup's state is: a slot index, PLACE_LOOKUP or PLACE_UNTRACKED. Untracked
 * cgroups are told without a helper call (but for the hash, while some cgroup is in it).
 */
static __always_inline __u32 placement_of(struct cgroup *cgrp)
{
	if (use_cgrp_storage) {
		/* A cgroup with no local storage at all is not tracked: two loads. */
		if (!bpf_core_field_exists(cgrp->bpf_cgrp_storage) || !cgrp->bpf_cgrp_storage)
			return PLACE_UNTRACKED;
		return PLACE_LOOKUP;
	}
	/* Slots: an array index and one compare. */
	__u64 id = cgrp->kn->id;
	__u32 idx = id & slot_mask;

	if (slot_at(idx)->cgroup_id == id)
		return idx;
	if (*(volatile __s64 *)&overflow_count && bpf_map_lookup_elem(&cgroup_hash, &id))
		return PLACE_LOOKUP;
	return PLACE_UNTRACKED;
}

/*
 * The state of `cgrp` at its placement, or NULL. `*owner` is set for state in a slot (see
 * sight()), NULL otherwise. `cgrp` must be trusted for local storage.
 */
static __always_inline struct ctrace_cgroup *state_at(__u32 place, struct cgroup *cgrp,
						      __u64 **owner)
{
	*owner = NULL;
	if (place == PLACE_UNTRACKED)
		return NULL;
	if (place == PLACE_LOOKUP) {
		if (use_cgrp_storage)
			return bpf_cgrp_storage_get(&cgroup_storage, cgrp, 0, 0);
		__u64 id = cgrp->kn->id;

		return bpf_map_lookup_elem(&cgroup_hash, &id);
	}
	struct ctrace_slot *slot = slot_at(place);

	*owner = &slot->cgroup_id;
	return &slot->state;
}

/* The state of the current task's cgroup; `task` is the current task. */
static __always_inline struct ctrace_cgroup *state_of(struct task_struct *task, __u64 **owner)
{
	struct cgroup *cgrp = task->cgroups->dfl_cgrp;

	return state_at(placement_of(cgrp), cgrp, owner);
}

/* A new epoch started since this cgroup's last event: forget its sightings. */
static __always_inline void catch_up(struct ctrace_cgroup *st)
{
	__u32 generation = *(volatile __u32 *)&reset_generation;

	if (st->generation == generation)
		return;
	st->generation = generation;
	__u64 *word = (__u64 *)&st->phase;

	for (int i = 0; i < sizeof(st->phase) / (sizeof(__u64)); i++)
		word[i] = 0;
}

/* state_of(), caught up with the epoch. */
static __always_inline struct ctrace_cgroup *state_now(struct task_struct *task, __u64 **owner)
{
	struct ctrace_cgroup *st = state_of(task, owner);

	if (st)
		catch_up(st);
	return st;
}

/*
 * Sets `bit` in `*word`; sends an event only if this call set it first. `owner`, for state in
 * a slot, is the slot's cgroup id: a program that found the slot just before its cgroup let it
 * go (untracked, removed) could set a bit in the next cgroup's state, which would then never
 * report that item. The owner is checked once the bit is set; a bit set for a former owner is
 * cleared again.
 */
static __always_inline void sight(__u64 *word, __u64 bit, __u32 kind, __u32 nr, __u8 abi,
				  __u8 phase, __u64 *owner)
{
	/* Nearly every call was seen before: a plain read spares them the locked instruction. */
	if (*(volatile __u64 *)word & bit)
		return;
	if (__sync_fetch_and_or(word, bit) & bit)
		return;

	struct ctrace_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_and(word, ~bit);
		__sync_fetch_and_add(&ringbuf_misses, 1);
		return;
	}
	e->cgroup_id = bpf_get_current_cgroup_id();
	if (owner && *(volatile __u64 *)owner != e->cgroup_id) {
		__sync_fetch_and_and(word, ~bit);
		bpf_ringbuf_discard(e, 0);
		return;
	}
	e->kind = kind;
	e->nr = nr;
	e->boot_ns = bpf_ktime_get_boot_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->abi = abi;
	e->phase = phase;
	e->pad[0] = 0;
	e->pad[1] = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (debug)
		bpf_printk("ctrace: cgroup %llu kind %u nr %u abi %u", e->cgroup_id, kind, nr, abi);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void clear_state(struct ctrace_cgroup *st)
{
	__u64 *word = (__u64 *)st;

	for (int i = 0; i < sizeof(*st) / sizeof(__u64); i++)
		word[i] = 0;
}

/*
 * A free slot is taken atomically. Its state was zeroed when it was released; it is zeroed
 * again, for a bit a former owner's late program may have set (see sight()).
 */
static __always_inline bool claim_slot(__u64 id)
{
	struct ctrace_slot *slot = slot_at(id & slot_mask);

	if (__sync_val_compare_and_swap(&slot->cgroup_id, 0, id) == 0) {
		clear_state(&slot->state);
		return true;
	}
	if (bpf_map_update_elem(&cgroup_hash, &id, &zero_state, BPF_NOEXIST)) {
		__sync_fetch_and_add(&claim_failures, 1);
		if (debug)
			bpf_printk("ctrace: no state for cgroup %llu (collision hash full)", id);
		return false;
	}
	__sync_fetch_and_add(&overflow_count, 1);
	return true;
}

#endif
