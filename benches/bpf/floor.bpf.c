// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark only: the floor. An empty program on the same attach point ctrace uses
 * (tp_btf/sys_enter) — what any syscall tracer pays before doing any work. An empty
 * raw_tp program is kept beside it for reference.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sys_enter")
int BPF_PROG(floor_tp_btf, struct pt_regs *regs, long id)
{
	return 0;
}

SEC("raw_tp/sys_enter")
int floor_raw_tp(void *ctx)
{
	return 0;
}
