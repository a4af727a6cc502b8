// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// Creation sites (issue 14): for each thread, process and file descriptor a watched process
// creates, an event with the creating thread's user stack. One raw tracepoint (no tracefs
// needed): sys_exit, in the thread whose clone/clone3/fork or fd-creating call returned.
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define MAX_TARGETS 64
#define STACK_DEPTH 64
#define CLONE_THREAD 0x00010000

// What was created (the loader's `Kind`).
enum kind {
	K_THREAD = 0,
	K_PROCESS = 1,
	K_FILE = 2,
	K_SOCKET = 3,
	K_ACCEPT = 4,
	K_PIPE = 5,
	K_EVENTFD = 6,
	K_EPOLL = 7,
	K_DUP = 8,
	K_OTHER_FD = 9,
};

#define SCAN_WORDS 512

// One creation: who, what, and the user stack two ways (the kernel's walk along frame
// pointers, and the words from the stack pointer up, which the loader scans for return
// addresses where the walk breaks, e.g. in a C library built without frame pointers).
struct event {
	__u32 tgid;
	__u32 kind;
	__u64 ip;
	__u64 sp;
	__s64 fp_bytes;
	__s64 scan_bytes;
	// What the call returned: the new thread's id, the child's pid, or the new fd.
	__s64 ret;
	__u64 fp[STACK_DEPTH];
	__u64 scan[SCAN_WORDS];
};

// Processes watched (tgid -> 1); filled by the loader.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} events SEC(".maps");

// [0]: a mask of the kinds to report (1 << kind); filled by the loader.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} wanted SEC(".maps");

// [0] creations seen, [1] creations dropped (the ring buffer full).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} totals SEC(".maps");

static __always_inline void bump(__u32 index)
{
	__u64 *n = bpf_map_lookup_elem(&totals, &index);
	if (n)
		__sync_fetch_and_add(n, 1);
}

// pt_regs on x86-64, in words: di 14, orig_ax 15, ip 16, sp 19.
static __always_inline __u64 reg(void *regs, int word)
{
	__u64 value = 0;
	bpf_probe_read_kernel(&value, sizeof(value), regs + word * 8);
	return value;
}

static __always_inline void emit(struct bpf_raw_tracepoint_args *ctx, __u32 tgid, __u32 kind,
				 void *regs, long ret)
{
	bump(0);
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		bump(1);
		return;
	}
	e->tgid = tgid;
	e->kind = kind;
	e->ret = ret;
	e->ip = reg(regs, 16);
	e->sp = reg(regs, 19);
	e->fp_bytes = bpf_get_stack(ctx, e->fp, sizeof(e->fp), BPF_F_USER_STACK);
	// The top of a stack may be closer than the whole window: then take an eighth.
	e->scan_bytes = sizeof(e->scan);
	if (bpf_probe_read_user(e->scan, sizeof(e->scan), (void *)e->sp) != 0) {
		e->scan_bytes = sizeof(e->scan) / 8;
		if (bpf_probe_read_user(e->scan, sizeof(e->scan) / 8, (void *)e->sp) != 0)
			e->scan_bytes = 0;
	}
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int watched(__u32 *tgid)
{
	*tgid = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&targets, tgid) != 0;
}

// x86-64 syscall numbers of the calls that create a file descriptor.
static __always_inline int fd_kind(long nr)
{
	switch (nr) {
	case 2:   // open
	case 85:  // creat
	case 257: // openat
	case 437: // openat2
	case 304: // open_by_handle_at
		return K_FILE;
	case 41:  // socket
	case 53:  // socketpair
		return K_SOCKET;
	case 43:  // accept
	case 288: // accept4
		return K_ACCEPT;
	case 22:  // pipe
	case 293: // pipe2
		return K_PIPE;
	case 284: // eventfd
	case 290: // eventfd2
		return K_EVENTFD;
	case 213: // epoll_create
	case 291: // epoll_create1
		return K_EPOLL;
	case 32:  // dup
	case 33:  // dup2
	case 292: // dup3
		return K_DUP;
	case 283: // timerfd_create
	case 282: // signalfd
	case 289: // signalfd4
	case 253: // inotify_init
	case 294: // inotify_init1
	case 300: // fanotify_init
	case 319: // memfd_create
	case 434: // pidfd_open
	case 298: // perf_event_open
	case 323: // userfaultfd
	case 425: // io_uring_setup
	case 428: // open_tree
	case 430: // fsopen
	case 432: // fsmount
	case 433: // fspick
	case 438: // pidfd_getfd
		return K_OTHER_FD;
	default:
		return -1;
	}
}

// sys_exit(struct pt_regs *regs, long ret), in the thread whose call returned.
SEC("raw_tracepoint/sys_exit")
int on_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tgid;
	if (!watched(&tgid))
		return 0;
	long ret = (long)ctx->args[1];
	if (ret < 0)
		return 0;
	void *regs = (void *)ctx->args[0];
	// A 32-bit process (cs 0x23) numbers its system calls differently: not decoded.
	if (reg(regs, 17) == 0x23)
		return 0;
	long nr = (long)reg(regs, 15);
	int kind;
	if (nr == 56 || nr == 435) {
		// clone, clone3: in the parent (the child returns 0); a thread when CLONE_THREAD.
		if (ret == 0)
			return 0;
		__u64 flags = reg(regs, 14);
		if (nr == 435) {
			__u64 args = flags;
			flags = 0;
			bpf_probe_read_user(&flags, sizeof(flags), (void *)args);
		}
		kind = (flags & CLONE_THREAD) ? K_THREAD : K_PROCESS;
	} else if (nr == 57 || nr == 58) {
		// fork, vfork
		if (ret == 0)
			return 0;
		kind = K_PROCESS;
	} else if (nr == 72) {
		// fcntl(F_DUPFD = 0 or F_DUPFD_CLOEXEC = 1030): a new fd.
		__u64 cmd = reg(regs, 13);
		if (cmd != 0 && cmd != 1030)
			return 0;
		kind = K_DUP;
	} else if (nr == 321) {
		// bpf: an fd for the commands that make one, 0 for the rest.
		if (ret == 0)
			return 0;
		kind = K_OTHER_FD;
	} else {
		kind = fd_kind(nr);
		if (kind < 0)
			return 0;
	}
	__u32 zero = 0;
	__u32 *mask = bpf_map_lookup_elem(&wanted, &zero);
	if (!mask || !(*mask & (1u << kind)))
		return 0;
	emit(ctx, tgid, kind, regs, ret);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
