/*
 * Benchmark only: ns per getppid in a tight loop. Built static at bench time and put into an
 * image with `docker import`, so that it runs the same inside a container and on the host.
 *
 *   getppid_loop WARMUP_MS CHUNKS ITERATIONS
 *
 * Sleeps WARMUP_MS (the tracer under test settles), then times CHUNKS chunks of ITERATIONS
 * raw getppid syscalls and prints each chunk's ns per call on one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline long sys_getppid(void)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "0"(110L) : "rcx", "r11", "memory");
	return ret;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s WARMUP_MS CHUNKS ITERATIONS\n", argv[0]);
		return 2;
	}
	long warmup_ms = atol(argv[1]);
	int chunks = atoi(argv[2]);
	long iterations = atol(argv[3]);
	struct timespec warmup = { warmup_ms / 1000, (warmup_ms % 1000) * 1000000L };

	nanosleep(&warmup, NULL);
	for (int c = 0; c < chunks; c++) {
		double t0 = now_ns();

		for (long i = 0; i < iterations; i++)
			sys_getppid();
		printf("%s%.2f", c ? " " : "", (now_ns() - t0) / (double)iterations);
	}
	printf("\n");
	return 0;
}
