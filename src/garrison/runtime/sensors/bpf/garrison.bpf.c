// SPDX-License-Identifier: GPL-2.0
/*
 * Garrison's kernel programs (the "ebpf" sensor, loaded by ebpf.py through libbpf).
 *
 * - sched_process_exec (BTF tracepoint): every exec's path, the first ARGV_MAX bytes of its argv
 *   read from the new image, the superblock magic of the executable and, on overlayfs, whether
 *   its inode has an upper dentry (a file written in the container). Submitted without a wake-up:
 *   the reader drains the ring on a short timer, so an exec storm costs no wake-up per exec.
 * - open/openat (syscall exit): write opens and reads of credential files (the path's first bytes
 *   compared in the kernel, and /home/<user>/.ssh/ paths), with the result; the arguments come from the registers saved at
 *   syscall entry (bpf_task_pt_regs), so each call costs one program, not an entry and an exit
 *   one. Woken at once.
 * - unlink/unlinkat (exit), linkat/symlinkat (entry): every call, woken at once.
 *
 * Types are declared locally with preserve_access_index (CO-RE): libbpf relocates every field
 * access against the running kernel's BTF at load, so one object runs on any BTF kernel.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef __u8 u8;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;

struct pt_regs { unsigned long di, si, dx, r10; } __attribute__((preserve_access_index));
struct super_block { unsigned long s_magic; } __attribute__((preserve_access_index));
struct inode { struct super_block *i_sb; } __attribute__((preserve_access_index));
struct file { struct inode *f_inode; } __attribute__((preserve_access_index));
struct mm_struct { unsigned long arg_start, arg_end; struct file *exe_file; } __attribute__((preserve_access_index));
struct task_struct { struct mm_struct *mm; } __attribute__((preserve_access_index));
struct linux_binprm { const char *filename; } __attribute__((preserve_access_index));
struct trace_event_raw_sys_exit { long id; long ret; } __attribute__((preserve_access_index));
struct trace_event_raw_sys_enter { long id; unsigned long args[6]; } __attribute__((preserve_access_index));

char LICENSE[] SEC("license") = "GPL";

#define STR_MAX 256
#define ARGV_MAX 256
#define OVERLAYFS_MAGIC 0x794C7630

enum { REC_READY = 0, REC_EXEC = 1, REC_OPEN = 2, REC_OPENAT = 3, REC_UNLINK = 4, REC_UNLINKAT = 5, REC_LINKAT = 6, REC_SYMLINKAT = 7 };

struct rec {
	u32 type, pid, tid;
	s32 ret;
	u64 ktime, cgroup;
	char comm[16];
	u64 a0, a1;     /* exec: s_magic, upper; open: flags, mode; unlink: flags */
	u32 len0, len1; /* exec: -, argv length in the task (may exceed what s1 holds) */
	char s0[STR_MAX];
	char s1[STR_MAX];
};

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 22); } events SEC(".maps");
/* [0]: the reader's tgid (its own calls are not reported) */
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, u64); } config SEC(".maps");
/* records the ring had no room for, per CPU */
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, u64); } lost SEC(".maps");

static __always_inline u64 conf(u32 key)
{
	u64 *v = bpf_map_lookup_elem(&config, &key);
	return v ? *v : 0;
}

static __always_inline struct rec *reserve(u32 type)
{
	struct rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		u32 zero = 0;
		u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
		return 0;
	}
	u64 id = bpf_get_current_pid_tgid();
	r->type = type;
	r->pid = id >> 32;
	r->tid = (u32)id;
	r->ret = 0;
	r->ktime = bpf_ktime_get_ns();
	r->cgroup = bpf_get_current_cgroup_id();
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->a0 = r->a1 = 0;
	r->len0 = r->len1 = 0;
	r->s0[0] = r->s1[0] = 0;
	return r;
}

static __always_inline int is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == conf(0);
}

SEC("tp_btf/sched_process_exec")
int on_exec(u64 *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[2];
	if (is_self())
		return 0;
	struct rec *r = reserve(REC_EXEC);
	if (!r)
		return 0;
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long start = BPF_CORE_READ(mm, arg_start), end = BPF_CORE_READ(mm, arg_end);
	u32 len = end > start ? end - start : 0;
	struct inode *ino = BPF_CORE_READ(mm, exe_file, f_inode);
	u64 magic = BPF_CORE_READ(ino, i_sb, s_magic);
	r->a0 = magic;
	if (magic == OVERLAYFS_MAGIC) {
		/* struct ovl_inode: the __upperdentry pointer follows the embedded struct inode */
		u64 upper = 0;
		bpf_probe_read_kernel(&upper, sizeof(upper), (u8 *)ino + bpf_core_type_size(struct inode));
		r->a1 = upper != 0;
	}
	r->len1 = len;
	bpf_probe_read_kernel_str(r->s0, sizeof(r->s0), BPF_CORE_READ(bprm, filename));
	if (len >= ARGV_MAX) /* two reads so that the verifier sees each size bounded */
		bpf_probe_read_user(r->s1, ARGV_MAX, (void *)start);
	else
		bpf_probe_read_user(r->s1, len & (ARGV_MAX - 1), (void *)start);
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return 0;
}


/* the path prefixes whose read-only opens are reported (write opens always are); the same list
 * as bpftrace.py's READ_PREFIXES, which the loader checks */
#define NPREFIX 10
#define PREFIX_MAX 20
static const char prefixes[NPREFIX][PREFIX_MAX] = {
	"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/pam", "/etc/security/",
	"/etc/master.passwd", "/etc/ssh/", "/root/", "/var/run/secrets/", "/run/secrets/",
};

/* /home/<user>/.ssh/...: the first '/' after "/home/" opens ".ssh/" (what the glob of Falco's
 * user_ssh_directory macro matches), within the first HOME_MAX bytes */
#define HOME_MAX 64
static __always_inline int home_ssh(const char *path)
{
	char buf[HOME_MAX] = {};
	if (bpf_probe_read_user_str(buf, sizeof(buf), path) <= 0)
		return 0;
#pragma unroll
	for (int i = 6; i < HOME_MAX - 6; i++) {
		if (!buf[i])
			return 0;
		if (buf[i] == '/')
			return buf[i + 1] == '.' && buf[i + 2] == 's' && buf[i + 3] == 's' && buf[i + 4] == 'h' && buf[i + 5] == '/';
	}
	return 0;
}

static __always_inline int wanted_read(const char *path)
{
	char head[PREFIX_MAX] = {};
	if (bpf_probe_read_user_str(head, sizeof(head), path) <= 0)
		return 0;
#pragma unroll
	for (int i = 0; i < NPREFIX; i++) {
		int match = 1;
#pragma unroll
		for (int j = 0; j < PREFIX_MAX; j++) {
			char want = prefixes[i][j];
			if (!want)
				break;
			if (head[j] != want) {
				match = 0;
				break;
			}
		}
		if (match)
			return 1;
	}
	if (head[0] == '/' && head[1] == 'h' && head[2] == 'o' && head[3] == 'm' && head[4] == 'e' && head[5] == '/')
		return home_ssh(path);
	return 0;
}

static __always_inline int on_open(struct trace_event_raw_sys_exit *ctx, u32 type, int at)
{
	/* BTF pointer: plain loads, no helper call per register */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	const char *path = (const char *)(at ? regs->si : regs->di);
	u64 flags = at ? regs->dx : regs->si;
	if (!(flags & 3) && !wanted_read(path))
		return 0;
	if (is_self())
		return 0;
	struct rec *r = reserve(type);
	if (!r)
		return 0;
	r->ret = ctx->ret;
	r->a0 = flags;
	r->a1 = at ? regs->r10 : regs->dx;
	bpf_probe_read_user_str(r->s0, sizeof(r->s0), path);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int on_openat(struct trace_event_raw_sys_exit *ctx) { return on_open(ctx, REC_OPENAT, 1); }

SEC("tracepoint/syscalls/sys_exit_open")
int on_open_legacy(struct trace_event_raw_sys_exit *ctx) { return on_open(ctx, REC_OPEN, 0); }

static __always_inline int on_unlink(struct trace_event_raw_sys_exit *ctx, u32 type, int at)
{
	if (is_self())
		return 0;
	struct rec *r = reserve(type);
	if (!r)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	const char *path = (const char *)(at ? regs->si : regs->di);
	r->ret = ctx->ret;
	r->a0 = at ? regs->dx : 0;
	bpf_probe_read_user_str(r->s0, sizeof(r->s0), path);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int on_unlinkat(struct trace_event_raw_sys_exit *ctx) { return on_unlink(ctx, REC_UNLINKAT, 1); }

SEC("tracepoint/syscalls/sys_exit_unlink")
int on_unlink_legacy(struct trace_event_raw_sys_exit *ctx) { return on_unlink(ctx, REC_UNLINK, 0); }

static __always_inline int on_link(struct trace_event_raw_sys_enter *ctx, u32 type, int old, int new)
{
	if (is_self())
		return 0;
	struct rec *r = reserve(type);
	if (!r)
		return 0;
	bpf_probe_read_user_str(r->s0, sizeof(r->s0), (const char *)BPF_CORE_READ(ctx, args[old]));
	bpf_probe_read_user_str(r->s1, sizeof(r->s1), (const char *)BPF_CORE_READ(ctx, args[new]));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* linkat(olddfd, oldname, newdfd, newname, flags); symlinkat(oldname, newdfd, newname) */
SEC("tracepoint/syscalls/sys_enter_linkat")
int on_linkat(struct trace_event_raw_sys_enter *ctx) { return on_link(ctx, REC_LINKAT, 1, 3); }

SEC("tracepoint/syscalls/sys_enter_symlinkat")
int on_symlinkat(struct trace_event_raw_sys_enter *ctx) { return on_link(ctx, REC_SYMLINKAT, 0, 2); }

/* readiness: the reader calls sched_getscheduler(its own pid) until this record arrives */
SEC("tracepoint/syscalls/sys_enter_sched_getscheduler")
int on_ready(struct trace_event_raw_sys_enter *ctx)
{
	if (!is_self())
		return 0;
	struct rec *r = reserve(REC_READY);
	if (!r)
		return 0;
	r->a0 = BPF_CORE_READ(ctx, args[0]);
	bpf_ringbuf_submit(r, 0);
	return 0;
}
