/*
 * Benchmark only: ns per getppid in a tight loop. Built static at bench time and put into an
 * image with `docker import`, so that it runs the same inside a container and on the host.
 *
 *   getppid_loop WARMUP_MS CHUNKS ITERATIONS [getppid|pingpong]
 *
 * Sleeps WARMUP_MS (the tracer under test settles), then times CHUNKS chunks of ITERATIONS
 * raw getppid syscalls and prints, on one line, each chunk's ns per call and, after a slash,
 * ns per step of a fixed userspace spin timed right after it (how busy the machine was: the
 * spin is the same work in every variant). CHUNKS 0: one chunk per line read on stdin, its
 * `NS/SPIN` on a line of its own, until end of input (the bench changes what is attached
 * between chunks). With `pingpong`, an
 * iteration is a round trip of one byte through two pipes to a child on the same CPU: each
 * process's first syscall after a switch comes after the other's, the placement cache's worst
 * case (every other call misses).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

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

#define SPIN_STEPS 1000000L

static double spin_ns_per_step(void)
{
	volatile unsigned long x = 0;
	double t0 = now_ns();

	for (long i = 0; i < SPIN_STEPS; i++)
		x += (unsigned long)i * (unsigned long)i;
	return (now_ns() - t0) / (double)SPIN_STEPS;
}

static int to_child[2], from_child[2];

/* The child echoes every byte until its input closes. */
static void start_echo_child(void)
{
	char byte;

	if (pipe(to_child) || pipe(from_child)) {
		perror("pipe");
		exit(1);
	}
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		close(to_child[1]);
		close(from_child[0]);
		while (read(to_child[0], &byte, 1) == 1)
			if (write(from_child[1], &byte, 1) != 1)
				_exit(1);
		_exit(0);
	}
	close(to_child[0]);
	close(from_child[1]);
}

static void round_trip(void)
{
	char byte = 0;

	if (write(to_child[1], &byte, 1) != 1 || read(from_child[0], &byte, 1) != 1) {
		perror("round trip");
		exit(1);
	}
}

/* ns per iteration over one chunk. */
static double chunk_ns(long iterations, int pingpong)
{
	double t0 = now_ns();

	for (long i = 0; i < iterations; i++) {
		if (pingpong)
			round_trip();
		else
			sys_getppid();
	}
	return (now_ns() - t0) / (double)iterations;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s WARMUP_MS CHUNKS ITERATIONS [getppid|pingpong]\n",
			argv[0]);
		return 2;
	}
	long warmup_ms = atol(argv[1]);
	int chunks = atoi(argv[2]);
	long iterations = atol(argv[3]);
	int pingpong = argc == 5 && strcmp(argv[4], "pingpong") == 0;
	struct timespec warmup = { warmup_ms / 1000, (warmup_ms % 1000) * 1000000L };

	if (pingpong)
		start_echo_child();
	nanosleep(&warmup, NULL);
	if (chunks == 0) {
		char line[64];

		while (fgets(line, sizeof(line), stdin)) {
			double ns = chunk_ns(iterations, pingpong);

			printf("%.2f/%.4f\n", ns, spin_ns_per_step());
			fflush(stdout);
		}
	}
	for (int c = 0; c < chunks; c++) {
		double ns = chunk_ns(iterations, pingpong);

		printf("%s%.2f/%.4f", c ? " " : "", ns, spin_ns_per_step());
	}
	if (chunks)
		printf("\n");
	if (pingpong) {
		close(to_child[1]);
		wait(NULL);
	}
	return 0;
}
