/*
 * appendlat.c - per-append latency, for bench/run.
 *
 *   appendlat [-n COUNT] [-s SIZE] [-f] FILE
 *
 * COUNT times (default 5000): open(FILE, O_WRONLY|O_APPEND), write one
 * SIZE-byte line (default 200) that is a JSON object ending in "\n",
 * [fsync with -f], close. Each iteration is timed as a whole with
 * CLOCK_MONOTONIC. FILE must exist (bench/run creates it, or it is a
 * session's events.jsonl). Prints one line on stdout:
 *
 *   p50_us p99_us mean_us max_us
 *
 * Any failing call stops the run with a message on stderr naming the call,
 * the iteration and errno, and exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted v[0..n). */
static double pct(const double *v, long n, int p)
{
	long k = (n * p + 99) / 100;

	return v[k < 1 ? 0 : k - 1];
}

static void usage(void)
{
	fprintf(stderr, "usage: appendlat [-n COUNT] [-s SIZE] [-f] FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long n = 5000, size = 200;
	int do_fsync = 0, c;

	while ((c = getopt(argc, argv, "n:s:f")) != -1) {
		switch (c) {
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		case 's':
			size = strtol(optarg, NULL, 10);
			break;
		case 'f':
			do_fsync = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || n < 1 || size < 64 || size > 65536)
		usage();
	const char *path = argv[optind];

	double *lat = malloc(n * sizeof(*lat));
	char *line = malloc(size + 1);
	if (!lat || !line) {
		perror("appendlat: malloc");
		return 1;
	}

	double sum = 0;
	for (long i = 0; i < n; i++) {
		/* {"type":"bench","seq":123,"text":"xxx...x"}\n, exactly size bytes */
		int head =
			snprintf(line, size + 1, "{\"type\":\"bench\",\"seq\":%ld,\"text\":\"", i);
		long pad = size - head - 3;
		memset(line + head, 'x', pad);
		memcpy(line + head + pad, "\"}\n", 3);

		double t0 = now_us();
		int fd = open(path, O_WRONLY | O_APPEND);
		if (fd < 0) {
			fprintf(stderr, "appendlat: open %s (append %ld): %s\n", path, i,
				strerror(errno));
			return 1;
		}
		ssize_t w = write(fd, line, size);
		if (w != size) {
			fprintf(stderr, "appendlat: write %s (append %ld): %s\n", path, i,
				w < 0 ? strerror(errno) : "short write");
			return 1;
		}
		if (do_fsync && fsync(fd) < 0) {
			fprintf(stderr, "appendlat: fsync %s (append %ld): %s\n", path, i,
				strerror(errno));
			return 1;
		}
		if (close(fd) < 0) {
			fprintf(stderr, "appendlat: close %s (append %ld): %s\n", path, i,
				strerror(errno));
			return 1;
		}
		lat[i] = now_us() - t0;
		sum += lat[i];
	}
	qsort(lat, n, sizeof(*lat), cmp);
	printf("%.1f %.1f %.1f %.1f\n", pct(lat, n, 50), pct(lat, n, 99), sum / n, lat[n - 1]);
	return 0;
}
