/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The capability programs: one of tp_btf/cap_capable (6.14+), fexit or kprobe on cap_capable
 * is loaded (userspace probes which). Checks made with borrowed credentials, and audit-free
 * probes, are skipped. Included once, by ctrace.bpf.c, after state.h.
 */
#ifndef CTRACE_CAPABILITIES_H
#define CTRACE_CAPABILITIES_H

#define CAP_OPT_NOAUDIT (1U << 1)
#define STACK_FRAMES 8 /* tracepoint program, trace runner, cap_capable, callers */

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

#endif
