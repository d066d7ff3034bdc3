/*
 * metadata.h - a session's metadata.json as one object: read the stored
 * document (peek), check a new one against it (the rules of documents.c),
 * replace it crash-safely, set its "updated" (and say when that is due),
 * make the first one.
 *
 * Replacing is the ".sfs-meta-*" protocol: the new document is written
 * whole under an internal name in the session root, fsynced, renamed over
 * the stored one, and the root fsynced; a crash leaves the old document or
 * the new one, and at worst an internal file that the next unlock sweeps
 * (prepare.c). A refused document changes nothing.
 *
 * Store layer: knows the tree, fileio, format and crypto layers and the
 * document rules; nothing of FUSE, file handles, the control protocol or
 * logging. Not locked: the caller keeps two replacements (and a read that
 * decides one) of one session apart (the daemon: doc/locking.md, meta_mu).
 * Documents are plaintext: every buffer given out is malloc'd, NUL-terminated
 * and goes back through sfs_metadata_free, which wipes it.
 */
#ifndef SFS_METADATA_H
#define SFS_METADATA_H

#include "format.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

/* The largest metadata.json, NUL included: a longer one is -EFBIG. */
#define SFS_METADATA_MAX (1u << 20)

/*
 * The stored document decrypts but is no JSON object: damage (no sessionfs
 * writes one; another file put in its place in the store), not a bad request.
 * lib/proto.c answers it as "io" (sessionctl exit 1) with its own text.
 */
#define SFS_METADATA_EDAMAGED (-EBADE)

/* metadata.json of one session, its session root open. */
struct sfs_metadata {
	const char *sid;		   /* the session's id (borrowed) */
	int rootfd;			   /* O_PATH of the session root (owned; -1: none) */
	unsigned char dirid[SFS_ID_BYTES]; /* the root's directory id */
	const struct sfs_keys *keys;	   /* the session's keys (borrowed) */
};

/* Why a document was refused: a static string that never quotes it, and its JSON error line. */
struct sfs_metadata_refusal {
	const char *why; /* NULL: not refused */
	int line;	 /* 0: no line */
};

/*
 * Open the metadata of session @sid whose container is @cfd (its root's
 * header is read with @keys): 0 or -errno (-EBADMSG a foreign or damaged
 * root). Close with sfs_metadata_close.
 */
int sfs_metadata_open(struct sfs_metadata *m, int cfd, const char *sid,
		      const struct sfs_keys *keys);
void sfs_metadata_close(struct sfs_metadata *m);

/*
 * The whole plaintext of backing file @fd (its header checked; a regular
 * file, else -EINVAL) into *@text (*@len bytes, NUL after them), its
 * attributes into *@attrs unless NULL. -EFBIG over SFS_METADATA_MAX; -errno.
 */
int sfs_metadata_read_fd(int fd, const struct sfs_keys *keys, struct sfs_attrs *attrs, char **text,
			 size_t *len);

/* Wipe and free a document given out here. Accepts NULL. */
void sfs_metadata_free(char *text, size_t len);

/* The stored document, as sfs_metadata_read_fd: 0, -ENOENT if none is stored, -errno. */
int sfs_metadata_peek(const struct sfs_metadata *m, char **text, size_t *len,
		      struct sfs_attrs *attrs);

/*
 * Is @text (@len bytes) a valid document to replace the stored one (if it
 * can be read)? 0, or -EINVAL with @r saying why (lib/documents.c rules).
 */
int sfs_metadata_check(const struct sfs_metadata *m, const char *text, size_t len,
		       struct sfs_metadata_refusal *r);

/*
 * Check @text as sfs_metadata_check and replace the stored document with
 * it (a new file of attributes @attrs, see above). 0; -EINVAL refused
 * (@r says why; the stored document is kept); -errno (kept too).
 */
int sfs_metadata_replace(const struct sfs_metadata *m, const char *text, size_t len,
			 const struct sfs_attrs *attrs, struct sfs_metadata_refusal *r);

/*
 * Set "updated" to @when (a UTC time) in the stored document, its other
 * members and attributes kept. 0; -EINVAL if it is no JSON object (left to
 * its writer); -errno.
 */
int sfs_metadata_touch(const struct sfs_metadata *m, const char *when);

/*
 * When "updated" is due to be set: changes are pending (the last at
 * @last, UTC seconds; 0 none pending) and have settled (none for
 * SFS_METADATA_SETTLE seconds) or have gone on since @first for
 * SFS_METADATA_MAX_DELAY; with @force whenever one is pending. Is it due
 * at @now? Decides only: the caller keeps the times and calls
 * sfs_metadata_touch.
 */
#define SFS_METADATA_SETTLE 1
#define SFS_METADATA_MAX_DELAY 5
bool sfs_metadata_touch_due(long long last, long long first, long long now, bool force);

/*
 * Set "status" to @status and "updated" to @when (a UTC time) in the stored
 * document, its other members and attributes kept, through the same check
 * and replacement as any new document (sfs_metadata_replace). 0; -ENODATA
 * none is stored; SFS_METADATA_EDAMAGED the stored document is no JSON
 * object (@r says so); -EINVAL refused (@r says why); -errno. The stored
 * document is kept on every error.
 */
int sfs_metadata_set_status(const struct sfs_metadata *m, const char *status, const char *when,
			    struct sfs_metadata_refusal *r);

/*
 * A node to be written as metadata.json where none is stored: a new empty
 * file of @attrs (a new file id into @id) that no name shows (made and
 * unlinked at once), so nothing is stored until a replace publishes a
 * valid document. Its read-write descriptor, -EEXIST if a document is
 * stored, or -errno. Works on session root @rootfd (id @dirid) directly.
 */
int sfs_metadata_new_unlinked(int rootfd, const unsigned char dirid[SFS_ID_BYTES],
			      const struct sfs_attrs *attrs, const struct sfs_keys *keys,
			      unsigned char id[SFS_ID_BYTES]);

/*
 * The first metadata.json of new session @ns (store.h,
 * sfs_store_metadata_first) in the new session root @rootfd (id @dirid):
 * written and fsynced under its name (the container is not published yet).
 * 0 or -errno.
 */
struct sfs_new_session;
int sfs_metadata_create(int rootfd, const unsigned char dirid[SFS_ID_BYTES],
			const struct sfs_new_session *ns, const struct sfs_attrs *attrs,
			const struct sfs_keys *keys);

#endif
