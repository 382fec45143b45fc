/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The cgroup programs: a container-like cgroup gets its state at creation (and userspace is
 * told), and its slot is released at removal. Included once, by ctrace.bpf.c, after state.h
 * and task_cache.h.
 */
#ifndef CTRACE_CGROUPS_H
#define CTRACE_CGROUPS_H

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

/*
 * Leaf names of a container's cgroup, by runtime and cgroup driver (the same list, with its
 * sources, is parsed in userspace by src/runtimes/cgroup_path.rs):
 *   <64 hex>                      Docker and containerd (cgroupfs; kubepods/.../pod<uid>/<id>)
 *   docker-<64 hex>.scope         Docker (systemd)
 *   libpod-<64 hex>[.scope]       podman (cgroupfs under libpod_parent; systemd)
 *   cri-containerd-<64 hex>.scope containerd's CRI plugin (systemd)
 *   crio-<64 hex>[.scope]         CRI-O (cgroupfs; systemd)
 * conmon's own cgroups (libpod-conmon-<id>, crio-conmon-<id>) fail the hex check.
 */
#define LEAF_LEN 96
#define LONGEST_PREFIX 15 /* "cri-containerd-" */

static __always_inline bool has_prefix(const char *leaf, const char *prefix, __u32 len)
{
	/* Bounded by a constant length at every call: unrolled, or a loop the verifier bounds. */
	for (__u32 i = 0; i < len && i < LONGEST_PREFIX; i++)
		if (leaf[i] != prefix[i])
			return false;
	return true;
}

/* Where the container id starts in the leaf: after a known runtime prefix, else at 0. */
static __always_inline __u32 container_id_offset(const char *leaf)
{
	if (leaf[0] == 'd' && has_prefix(leaf, "docker-", 7))
		return 7;
	if (leaf[0] == 'l' && has_prefix(leaf, "libpod-", 7))
		return 7;
	if (leaf[0] == 'c' && has_prefix(leaf, "crio-", 5))
		return 5;
	if (leaf[0] == 'c' && has_prefix(leaf, "cri-containerd-", 15))
		return 15;
	return 0; /* a bare id (a bare hex id may well start with 'c' or 'd') */
}

/*
 * Cgroups userspace expects, by path (relative to the cgroup2 mount): containers whose
 * runtime names their cgroup otherwise (containerd: `/<namespace>/<id>` for any id), known
 * from the engine's `create` before the task's cgroup is made. Keys are NUL-padded.
 */
struct ctrace_expected_path {
	char path[CTRACE_EXPECTED_PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ctrace_expected_path);
	__type(value, __u8);
} expected_cgroups SEC(".maps");

static __always_inline bool is_expected(const char *path)
{
	struct ctrace_expected_path key = {};

	if (bpf_probe_read_kernel_str(key.path, sizeof(key.path), path) <= 0)
		return false;
	return bpf_map_lookup_elem(&expected_cgroups, &key) != NULL;
}

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

	long len = bpf_probe_read_kernel_str(leaf, sizeof(leaf), name);
	/* Only if the name cannot be an id: the map is looked up for the rare cgroups. */
	bool expected = len > 0 && len < CTRACE_CONTAINER_ID_LEN && is_expected(path);

	if (len < CTRACE_CONTAINER_ID_LEN && !expected)
		return 0;

	struct ctrace_cgroup_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&ringbuf_misses, 1);
		return 0;
	}
	__u32 offset = container_id_offset(leaf);

	if (expected) {
		/* The leaf as it is (under 64 characters): userspace matches it by path. */
		if (bpf_probe_read_kernel_str(e->container_id, sizeof(e->container_id), name) < 0)
			goto discard;
	} else if (offset > LONGEST_PREFIX || !copy_container_id(leaf, offset, e->container_id)) {
		goto discard;
	}
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

#endif
