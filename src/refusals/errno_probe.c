/*
 * errno probe: what does the seccomp filter this process runs under answer for every
 * x86_64 and i386 system call number? Nothing is ever executed.
 *
 * A probing thread stacks a filter of its own that answers every call with
 * SECCOMP_RET_USER_NOTIF. The kernel runs all filters and takes the most restrictive
 * action: when the outer (container) filter returns ERRNO(E), the call fails with -E at
 * once; when it allows the call, USER_NOTIF wins and the main thread, holding the
 * listener, answers with the sentinel -EHWPOISON without running it. After installing its
 * filter the probing thread makes no call other than the probes (all arguments 0).
 *
 * Output on stdout, one line each, per ABI (x86_64, then i386):
 *   refused <abi> <nr> <errno>   the outer filter answered nr with errno
 *   killed <abi> <nr>            the outer filter killed the thread on nr (probing resumes
 *                                at nr + 1 in a fresh thread)
 *   done <abi> <count>           numbers 0..count-1 were probed (but the exempt ones)
 * or, instead of all of these, one of
 *   killed <abi>                 every number killed the thread (architecture not in the
 *                                filter)
 *   unsupported <abi>            the kernel cannot run that ABI (SIGSEGV on the first call)
 * Exit status 0; on a failure, a message on stderr and status 2.
 *
 * Exempt, never probed: x86_64 uretprobe (335) and uprobe (336). Since Linux 6.13 seccomp
 * lets them through unfiltered, and outside a uprobe trampoline they raise SIGILL. No
 * filter can refuse them, so they have nothing to report.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NUMBERS 512
#define SENTINEL EHWPOISON
/* Per ABI: generous, each probe takes microseconds. */
#define ABI_TIMEOUT_NS (8LL * 1000 * 1000 * 1000)

enum outcome { UNPROBED, ANSWERED, KILLED, EXEMPT };
enum abi { X86_64, I386 };
static const char *const ABI_NAMES[] = {"x86_64", "i386"};

struct session {
    enum abi abi;
    int start;
    long *returns;          /* per number: the raw return value */
    enum outcome *outcomes; /* per number */
    atomic_int listener;    /* -1 until the filter is in place */
    atomic_int setup_errno; /* nonzero: prctl or seccomp failed */
    atomic_int progress;    /* the number being probed */
    atomic_int finished;
    atomic_int crashed;     /* SIGSEGV on a call of this ABI */
};

static _Thread_local struct session *current;

static inline long raw_x86_64(long nr)
{
    long ret;
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = 0;
    register long r9 __asm__("r9") = 0;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(nr), "D"(0L), "S"(0L), "d"(0L), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

/* int $0x80 takes its sixth argument in %ebp: zero it around the call, below the red zone. */
static inline long raw_i386(long nr)
{
    long ret;
    __asm__ volatile("sub $128, %%rsp\n\t"
                     "push %%rbp\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "int $0x80\n\t"
                     "pop %%rbp\n\t"
                     "add $128, %%rsp"
                     : "=a"(ret)
                     : "0"(nr), "b"(0L), "c"(0L), "d"(0L), "S"(0L), "D"(0L)
                     : "memory");
    return (int)ret;
}

static int exempt(enum abi abi, int nr)
{
    return abi == X86_64 && (nr == 335 || nr == 336);
}

static inline long raw_call(enum abi abi, long nr)
{
    return abi == X86_64 ? raw_x86_64(nr) : raw_i386(nr);
}

static void *probe(void *arg)
{
    struct session *s = arg;
    struct sock_filter notify_all[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF)};
    struct sock_fprog prog = {.len = 1, .filter = notify_all};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        atomic_store(&s->setup_errno, errno ? errno : EINVAL);
        return NULL;
    }
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                      &prog);
    if (fd < 0) {
        atomic_store(&s->setup_errno, errno ? errno : EINVAL);
        return NULL;
    }
    /* From here on: no call but the probes. */
    current = s;
    atomic_store(&s->listener, (int)fd);
    int park = -1;
    for (int nr = s->start; nr < NUMBERS; nr++) {
        if (exempt(s->abi, nr))
            continue;
        atomic_store(&s->progress, nr);
        s->returns[nr] = raw_call(s->abi, nr);
        s->outcomes[nr] = ANSWERED;
        if (park < 0 && s->returns[nr] == -SENTINEL)
            park = nr;
    }
    atomic_store(&s->finished, 1);
    /* Park in a call the outer filter passes: the main thread never answers it. */
    if (park >= 0)
        raw_call(s->abi, park);
    for (;;)
        __asm__ volatile("pause");
    return NULL;
}

/* Only a probing thread's fault is expected (int $0x80 without IA32 emulation). */
static void on_segv(int sig)
{
    (void)sig;
    if (current == NULL) {
        signal(SIGSEGV, SIG_DFL);
        return; /* the fault repeats, with the default action */
    }
    atomic_store(&current->crashed, 1);
    for (;;)
        __asm__ volatile("pause");
}

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static _Noreturn void fail(const char *abi, const char *what, int err)
{
    fprintf(stderr, "errno_probe: %s: %s: %s\n", abi, what, strerror(err));
    fflush(stdout);
    fflush(stderr);
    _exit(2);
}

static void answer(int fd, const char *abi)
{
    struct seccomp_notif req;
    memset(&req, 0, sizeof req);
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
        if (errno == EINTR || errno == ENOENT)
            return;
        fail(abi, "SECCOMP_IOCTL_NOTIF_RECV", errno);
    }
    struct seccomp_notif_resp resp = {.id = req.id, .val = 0, .error = -SENTINEL, .flags = 0};
    /* ENOENT: the caller is gone; nothing to answer. */
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0 && errno != ENOENT && errno != EINTR)
        fail(abi, "SECCOMP_IOCTL_NOTIF_SEND", errno);
}

enum end { FINISHED, THREAD_KILLED, CRASHED };

/* Runs one probing thread from s->start and answers its calls until it finishes or dies. */
static enum end run_session(struct session *s, long long deadline)
{
    const char *abi = ABI_NAMES[s->abi];
    const struct timespec tick = {.tv_sec = 0, .tv_nsec = 50 * 1000};
    pthread_t thread;
    int err = pthread_create(&thread, NULL, probe, s);
    if (err != 0)
        fail(abi, "pthread_create", err);
    int fd, joined = 0;
    while ((fd = atomic_load(&s->listener)) < 0) {
        if ((err = atomic_load(&s->setup_errno)) != 0)
            fail(abi, "installing the probing filter", err);
        if (pthread_tryjoin_np(thread, NULL) == 0) {
            /* Killed on its first probe, maybe, after the check above. */
            joined = 1;
            if ((fd = atomic_load(&s->listener)) >= 0)
                break;
            if ((err = atomic_load(&s->setup_errno)) != 0)
                fail(abi, "installing the probing filter", err);
            fail(abi, "the probing thread died before its filter was in place", ECHILD);
        }
        if (now_ns() > deadline)
            fail(abi, "waiting for the probing filter", ETIMEDOUT);
        nanosleep(&tick, NULL);
    }
    for (;;) {
        if (atomic_load(&s->finished))
            return FINISHED;
        if (atomic_load(&s->crashed))
            return CRASHED;
        struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
        int n = poll(&p, 1, 10);
        if (n < 0 && errno != EINTR)
            fail(abi, "poll", errno);
        /* The finished thread parks in a call that must stay unanswered. */
        if (atomic_load(&s->finished))
            return FINISHED;
        if (n > 0 && (p.revents & POLLIN)) {
            answer(fd, abi);
            continue;
        }
        if (n > 0 && (p.revents & (POLLHUP | POLLERR))) {
            close(fd);
            err = joined ? 0 : pthread_join(thread, NULL);
            if (err != 0)
                fail(abi, "joining the killed probing thread", err);
            return THREAD_KILLED;
        }
        if (now_ns() > deadline) {
            fprintf(stderr, "errno_probe: %s: stuck at number %d\n", abi,
                    atomic_load(&s->progress));
            fail(abi, "probing", ETIMEDOUT);
        }
    }
}

static void probe_abi(enum abi abi)
{
    /* Per ABI, never reused: a parked thread of the first ABI keeps its session. */
    static long all_returns[2][NUMBERS];
    static enum outcome all_outcomes[2][NUMBERS];
    static struct session all_sessions[2][NUMBERS];
    long *returns = all_returns[abi];
    enum outcome *outcomes = all_outcomes[abi];
    struct session *sessions = all_sessions[abi];
    const char *name = ABI_NAMES[abi];
    long long deadline = now_ns() + ABI_TIMEOUT_NS;
    int kills = 0;

    for (int start = 0; start < NUMBERS;) {
        /* One session per thread. */
        struct session *s = &sessions[start];
        s->abi = abi;
        s->start = start;
        s->returns = returns;
        s->outcomes = outcomes;
        atomic_init(&s->listener, -1);
        atomic_init(&s->setup_errno, 0);
        atomic_init(&s->progress, start);
        atomic_init(&s->finished, 0);
        atomic_init(&s->crashed, 0);
        enum end end = run_session(s, deadline);
        if (end == FINISHED)
            break;
        if (end == CRASHED) {
            if (start != 0 || atomic_load(&s->progress) != 0)
                fail(name, "SIGSEGV in the middle of probing", EFAULT);
            printf("unsupported %s\n", name);
            return;
        }
        int nr = atomic_load(&s->progress);
        outcomes[nr] = KILLED;
        kills++;
        start = nr + 1;
    }
    for (int nr = 0; nr < NUMBERS; nr++)
        if (exempt(abi, nr))
            outcomes[nr] = EXEMPT;
    if (kills == NUMBERS - (abi == X86_64 ? 2 : 0)) {
        printf("killed %s\n", name);
        return;
    }
    for (int nr = 0; nr < NUMBERS; nr++) {
        if (outcomes[nr] == EXEMPT) {
            continue;
        } else if (outcomes[nr] == KILLED) {
            printf("killed %s %d\n", name, nr);
        } else if (outcomes[nr] != ANSWERED) {
            fail(name, "a number was left unprobed", EPROTO);
        } else if (returns[nr] < 0 && returns[nr] >= -4095 && returns[nr] != -SENTINEL) {
            printf("refused %s %d %ld\n", name, nr, -returns[nr]);
        } else if (returns[nr] != -SENTINEL) {
            fprintf(stderr, "errno_probe: %s: number %d returned %ld\n", name, nr, returns[nr]);
            fail(name, "a probe ran instead of being refused or answered", EPROTO);
        }
    }
    printf("done %s %d\n", name, NUMBERS);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0)
        fail("setup", "sigaction", errno);
    probe_abi(X86_64);
    probe_abi(I386);
    if (fflush(stdout) != 0)
        fail("output", "writing the results", errno);
    _exit(0);
}
