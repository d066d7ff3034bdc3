/*
 * cipher-cost.c - CPU cost of sealing and opening content blocks, content
 * cipher 2 (AES-256-GCM, one key per file: legacy) against 3 (a key per file
 * and write run), on one thread, in thread CPU time (steady on a busy
 * machine, where wall-clock FUSE figures move by 30 %):
 *   seal                   runs of 256 blocks, one key set-up per run
 *   open (one run)         the blocks of one run: cipher 3 derives one key
 *   open (a key per block) every block last written alone: cipher 3 derives
 *                          a key per block (its worst case)
 *
 *   gcc -O2 -I lib -I build bench/cipher-cost.c build/libsfscore.a \
 *       -lsodium -ljansson -lpthread -o /tmp/cipher-cost && /tmp/cipher-cost
 */
#include "format.h"
#include <stdio.h>
#include <string.h>
#include <time.h>
static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}
int main(void)
{
	static unsigned char plain[256 * 4096], c[256 * SFS_CBLOCK], out[256 * 4096];
	unsigned char master[32], id[16] = {1};
	sfs_crypto_init();
	for (int i = 0; i < 32; i++)
		master[i] = i;
	for (int ci = 2; ci <= 3; ci++) {
		struct sfs_keys *k = sfs_keys_new(master, ci);
		struct sfs_blockkey bk;
		int N = 200;
		double t = now();
		for (int r = 0; r < N; r++) {
			if (sfs_fmt_blockkey_init(&bk, id, k))
				return 1;
			sfs_crypto_random(c, 24 * 1);
			for (int i = 0; i < 256; i++) {
				unsigned char *ci_ = c + i * SFS_CBLOCK;
				sfs_crypto_random(ci_, 24);
				sfs_fmt_block_seal_nonce(ci_, plain + i * 4096, 4096, i, &bk);
			}
			sfs_fmt_blockkey_done(&bk);
		}
		double ts = now() - t;
		t = now();
		for (int r = 0; r < N; r++) {
			if (sfs_fmt_blockkey_init_open(&bk, id, k, c, 256))
				return 1;
			for (int i = 0; i < 256; i++)
				if (sfs_fmt_block_open_at(out + i * 4096, c + i * SFS_CBLOCK,
							  SFS_CBLOCK, i, &bk, i))
					return 2;
			sfs_fmt_blockkey_done(&bk);
		}
		double to = now() - t;
		/* every block sealed alone: its own half */
		for (int i = 0; i < 256; i++) {
			if (sfs_fmt_blockkey_init(&bk, id, k))
				return 1;
			unsigned char *ci_ = c + i * SFS_CBLOCK;
			sfs_crypto_random(ci_, 24);
			sfs_fmt_block_seal_nonce(ci_, plain + i * 4096, 4096, i, &bk);
			sfs_fmt_blockkey_done(&bk);
		}
		t = now();
		for (int r = 0; r < N; r++) {
			if (sfs_fmt_blockkey_init_open(&bk, id, k, c, 256))
				return 1;
			for (int i = 0; i < 256; i++)
				if (sfs_fmt_block_open_at(out + i * 4096, c + i * SFS_CBLOCK,
							  SFS_CBLOCK, i, &bk, i))
					return 2;
			sfs_fmt_blockkey_done(&bk);
		}
		double tm = now() - t;
		double mib = N * 256 * 4096 / 1048576.0;
		printf("cipher %d: seal %.0f MiB/s, open (one run) %.0f MiB/s, open (a key per "
		       "block) %.0f MiB/s\n",
		       ci, mib / ts, mib / to, mib / tm);
		sfs_keys_free(k);
	}
	return 0;
}
