/*
 * rekey.h - re-keying a session container: its whole content sealed anew
 * under a new session key in a new container built beside it, which then
 * takes its place in one atomic exchange (doc/format.md "Re-keying").
 *
 * The caller holds the old container's busy lock and its key file's edit
 * lock, and has the old keys, the new keys and the new key file (format.h,
 * sfs_fmt_keyfile_rekey). Knows the store, tree, fileio, eventlog, symlink,
 * xattr and rules layers; nothing of FUSE, the control protocol or slots.
 */
#ifndef SFS_REKEY_H
#define SFS_REKEY_H

#include "crypto.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The hidden name of a container being built beside (or left after) session @id. */
#define SFS_REKEY_PREFIX ".rekey-"
#define SFS_REKEY_NAME_MAX 64

/* Refused: the container keeps bytes under the old key (events.kept-*, torn.kept-*). */
#define SFS_REKEY_EKEPT (-ENOTNAM)

/* What a build has done so far (atomics: another thread may read them meanwhile). */
struct sfs_rekey_progress {
	_Atomic uint64_t nodes; /* files, directories, symlinks and file nodes done */
	_Atomic uint64_t bytes; /* plaintext bytes of file content and event log done */
};

/*
 * Build the re-keyed copy of container @oldcfd (session @id, whose keys are
 * @oldkeys) in top directory @topfd, as "SFS_REKEY_PREFIX@id-<12 hex>" (its
 * name into @tmp): key file @keyfile (@kflen bytes), a lock file whose busy
 * lock is taken into *@lockfd, the redaction rules and the whole tree
 * sealed under @newkeys, with the same node ids, backing times and hard
 * links; everything fsynced, @topfd too. Refused before anything is made:
 * SFS_REKEY_EKEPT the container keeps bytes under the old key (events.kept-*,
 * torn.kept-*). On error nothing is left (*@lockfd -1). -EBADMSG a node
 * fails under the old key (damage: fsck first); -errno.
 */
int sfs_rekey_build(int topfd, const char *id, int oldcfd, const struct sfs_keys *oldkeys,
		    const unsigned char *keyfile, size_t kflen, const struct sfs_keys *newkeys,
		    struct sfs_rekey_progress *p, char tmp[SFS_REKEY_NAME_MAX], int *lockfd);

/*
 * Put built container @tmp in the place of session @id in @topfd: one
 * renameat2(RENAME_EXCHANGE), then an fsync of @topfd. After it the old
 * container is at @tmp, to be removed (sfs_rekey_sweep). 0 or -errno.
 */
int sfs_rekey_switch(int topfd, const char *tmp, const char *id);

/*
 * Remove every "SFS_REKEY_PREFIX@id-*" of @topfd (what an interrupted
 * rekey leaves: a half-built container before the switch, the old one after
 * it), then fsync @topfd. How many were removed, or -errno.
 */
int sfs_rekey_sweep(int topfd, const char *id);

/* Is @name a container a rekey builds or leaves (of any session)? */
bool sfs_rekey_is_leftover(const char *name);

#endif
