/*
 * sodium_count.c - an LD_PRELOAD shim for tests/valgrind. sodium_malloc()
 * maps pages of its own (guard pages around, mlock'ed), so memcheck's leak
 * check never sees that memory: this counts sodium_malloc() against
 * sodium_free() and, at exit, writes "PID ALLOCS FREES" to
 * $SFS_SODIUM_COUNT_DIR/sodium-PID.txt. A process that exits with ALLOCS >
 * FREES left key memory behind.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_long allocs, frees;

void *sodium_malloc(size_t size);
void sodium_free(void *ptr);

void *sodium_malloc(size_t size)
{
	static void *(*real)(size_t);
	void *p;

	if (!real)
		real = (void *(*)(size_t))dlsym(RTLD_NEXT, "sodium_malloc");
	p = real(size);
	if (p)
		atomic_fetch_add(&allocs, 1);
	return p;
}

void sodium_free(void *ptr)
{
	static void (*real)(void *);

	if (!real)
		real = (void (*)(void *))dlsym(RTLD_NEXT, "sodium_free");
	if (ptr)
		atomic_fetch_add(&frees, 1);
	real(ptr);
}

__attribute__((destructor)) static void report(void)
{
	const char *dir = getenv("SFS_SODIUM_COUNT_DIR");
	char path[4096];
	FILE *f;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/sodium-%ld.txt", dir, (long)getpid());
	f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "%ld %ld %ld\n", (long)getpid(), atomic_load(&allocs), atomic_load(&frees));
	fclose(f);
}
