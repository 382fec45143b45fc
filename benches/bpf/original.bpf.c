// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark only: the original ctrace design re-implemented as a comparison probe.
 * Every syscall on the host: look the task up in a per-task hash (pid -> container id, as the
 * original filled it from cgroup_attach_task / sched_process_fork); if it belongs to a
 * container, count the syscall in a hash keyed by the 65-byte container id string and the
 * syscall number. Attached with tp_btf like ctrace so that only the design differs (the
 * original used a classic tracepoint through BCC, which costs more again).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define CONTAINER_ID_LEN 65

struct container_id {
	char id[CONTAINER_ID_LEN];
};

struct counter_key {
	char id[CONTAINER_ID_LEN];
	__u32 nr;
};

/* Filled by userspace (the benchmark) with the container's processes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct container_id);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct counter_key);
	__type(value, __u64);
} counters SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(original_sys_enter, struct pt_regs *regs, long id)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct container_id *cid = bpf_map_lookup_elem(&tasks, &pid);

	if (!cid)
		return 0;
	struct counter_key key = {};

	__builtin_memcpy(key.id, cid->id, CONTAINER_ID_LEN);
	key.nr = (__u32)id;
	__u64 *count = bpf_map_lookup_elem(&counters, &key);

	if (count) {
		__sync_fetch_and_add(count, 1);
	} else {
		__u64 one = 1;

		bpf_map_update_elem(&counters, &key, &one, BPF_NOEXIST);
	}
	return 0;
}
