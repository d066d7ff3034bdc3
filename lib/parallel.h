/*
 * parallel.h - the iterations of a loop on the calling thread and helper
 * threads: sealing and opening the blocks of a large read or write (one
 * core opens or seals about 1 GB/s of XChaCha20-Poly1305, so a 1 MiB write
 * is a millisecond of crypto on one core while the writer sits idle).
 *
 * Knows POSIX threads only. The caller never waits for a helper to start:
 * it takes chunks of the loop itself and only waits for chunks a helper is
 * working on, so a busy machine costs nothing but a wakeup.
 */
#ifndef SFS_PARALLEL_H
#define SFS_PARALLEL_H

#include <stddef.h>

/*
 * Call @fn(i, @arg) for every i in [0, @n), in any order, possibly on
 * several threads at once (so @fn must only touch what belongs to i), and
 * return when all are done. Small loops run on the caller alone.
 */
void sfs_par_for(size_t n, void (*fn)(size_t i, void *arg), void *arg);

#endif
