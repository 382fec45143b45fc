/* A real multi-threaded, dynamically linked workload for the enforcement tests.
 *
 *   threads          4 pthreads each write a file under /tmp, read it back and checksum it;
 *                    then the program re-execs itself as `threads child` and waits for it.
 *   threads child    writes, reads back and checksums one more file.
 *   threads mkdir    the same as `threads`, then mkdir("/tmp/extra"): a syscall the traced
 *                    run never made; prints the errno's name and exits 3 when it is refused.
 *
 * The output is the same bytes on every run. A thread that cannot be created prints the
 * error (strerror) to stderr and the program exits 2. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define BLOCK 4096
#define BLOCKS 16

struct job {
    int id;
    uint32_t checksum;
    size_t bytes;
    int error; /* errno of the first failure, 0 if none */
};

/* FNV-1a over the bytes. */
static uint32_t fnv1a(uint32_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* Writes BLOCKS blocks derived from `seed` to `path`, reads them back, checksums them. */
static int file_work(const char *path, int seed, uint32_t *checksum, size_t *bytes) {
    unsigned char block[BLOCK];
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0)
        return errno;
    for (int b = 0; b < BLOCKS; b++) {
        for (int i = 0; i < BLOCK; i++)
            block[i] = (unsigned char)((seed * 131 + b * 31 + i * 7) & 0xff);
        if (write(fd, block, BLOCK) != BLOCK) {
            int e = errno;
            close(fd);
            return e ? e : EIO;
        }
    }
    if (close(fd) != 0)
        return errno;
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return errno;
    uint32_t h = 2166136261u;
    size_t total = 0;
    ssize_t n;
    while ((n = read(fd, block, BLOCK)) > 0) {
        h = fnv1a(h, block, (size_t)n);
        total += (size_t)n;
    }
    int e = n < 0 ? errno : 0;
    close(fd);
    if (e)
        return e;
    if (unlink(path) != 0)
        return errno;
    *checksum = h;
    *bytes = total;
    return 0;
}

static void *worker(void *arg) {
    struct job *job = arg;
    char path[64];
    snprintf(path, sizeof path, "/tmp/thread-%d.dat", job->id);
    job->error = file_work(path, job->id + 1, &job->checksum, &job->bytes);
    return NULL;
}

static int child(void) {
    uint32_t h = 0;
    size_t bytes = 0;
    int e = file_work("/tmp/child.dat", 99, &h, &bytes);
    if (e) {
        fprintf(stderr, "child: %s\n", strerror(e));
        return 1;
    }
    printf("child: %zu bytes checksum %08x\n", bytes, h);
    return 0;
}

/* fork + execve of this very program (/proc/self/exe) with the argument `child`. */
static int run_child(void) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        char *argv[] = {"threads", "child", NULL};
        char *envp[] = {NULL};
        execve("/proc/self/exe", argv, envp);
        fprintf(stderr, "execve: %s\n", strerror(errno));
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) {
        fprintf(stderr, "waitpid: %s\n", strerror(errno));
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child failed: status %d\n", status);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child();
    int extra_mkdir = argc > 1 && strcmp(argv[1], "mkdir") == 0;
    if (argc > 1 && !extra_mkdir) {
        fprintf(stderr, "usage: threads [child|mkdir]\n");
        return 64;
    }

    pthread_t tids[THREADS];
    struct job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct job){.id = i};
        int e = pthread_create(&tids[i], NULL, worker, &jobs[i]);
        if (e != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(e));
            return 2;
        }
    }
    uint32_t total = 0;
    for (int i = 0; i < THREADS; i++) {
        int e = pthread_join(tids[i], NULL);
        if (e != 0) {
            fprintf(stderr, "pthread_join: %s\n", strerror(e));
            return 2;
        }
        if (jobs[i].error) {
            fprintf(stderr, "thread %d: %s\n", i, strerror(jobs[i].error));
            return 1;
        }
        printf("thread %d: %zu bytes checksum %08x\n", i, jobs[i].bytes, jobs[i].checksum);
        total ^= jobs[i].checksum;
    }
    printf("threads: %d joined, combined %08x\n", THREADS, total);
    if (run_child() != 0)
        return 1;

    if (extra_mkdir) {
        if (mkdir("/tmp/extra", 0700) != 0) {
            int e = errno;
            printf("mkdir: %s\n", e == EPERM ? "EPERM" : strerror(e));
            return 3;
        }
        printf("mkdir: ok\n");
    }
    printf("done\n");
    return 0;
}
