/*
 * session.c - a session container opened with its key (session.h): open
 * by unlock or create, its event log, its metadata document, close, delete,
 * move, passwd, key slots (the logic; the key file's bytes are format.c's,
 * its edit lock and atomic replacement keyfile.c's); finding containers in
 * a store's top directories, and choosing a new session's id.
 *
 * Store layer: the container's files are store.c's and prepare.c's, the log
 * eventlog.c's, the document metadata.c's. Knows nothing of FUSE, the
 * control protocol, the daemon's registry or its locks.
 */
#include "session.h"
#include "rekey.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void sfs_container_init(struct sfs_container *c, const char *id)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->lockfd = -1;
	c->ev.fd = -1;
}

int sfs_container_dir(int topfd, const char *id)
{
	int fd;

	if (!sfs_id_valid(id))
		return -ENOENT;
	fd = openat(topfd, id, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? sfs_neg_errno() : fd;
}

int sfs_container_where(const int topfd[2], const char *id)
{
	for (int w = 0; w < 2; w++)
		if (faccessat(topfd[w], id, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return w;
	return -ENOENT;
}

int sfs_container_find(const int topfd[2], const char *id)
{
	int w = sfs_container_where(topfd, id);

	return w < 0 ? -ENOENT : sfs_container_dir(topfd[w], id);
}

void sfs_container_foreach(const int topfd[2], void (*fn)(const char *id, int where, void *arg),
			   void *arg)
{
	for (int w = 0; w < 2; w++) {
		int fd = openat(topfd[w], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		if (!d) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((de = readdir(d)) != NULL)
			if (sfs_id_valid(de->d_name))
				fn(de->d_name, w, arg);
		closedir(d);
	}
}

int sfs_container_rootfd(int cfd)
{
	int fd = openat(cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	return fd < 0 ? sfs_neg_errno() : fd;
}

int sfs_session_id_width(size_t n)
{
	int width = SFS_ID_HEX_MIN;

	while (width < SFS_ID_HEX_MAX && (double)(n + 1) * 16.0 > (double)(1ull << (4 * width)))
		width++;
	return width;
}

void sfs_session_id_random(char *out, size_t n)
{
	unsigned char rnd[8];
	char hex[17];

	sfs_crypto_random(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(out, SFS_SESSION_ID_MAX + 1, "INC-%.*s", sfs_session_id_width(n), hex);
}

static void count_one(const char *id, int where, void *arg)
{
	(void)id;
	(void)where;
	(*(size_t *)arg)++;
}

/* The sessions of the store of @topfd, in sessions/ and archive/. */
static size_t count_sessions(const int topfd[2])
{
	size_t n = 0;

	sfs_container_foreach(topfd, count_one, &n);
	return n;
}

int sfs_container_create_new(const int topfd[2], const char *want, const struct sfs_new_session *ns,
			     char *out_id, struct sfs_container_key *k)
{
	struct sfs_new_session one = *ns;
	char id[SFS_SESSION_ID_MAX + 1];
	int rc = -EEXIST;

	for (int tries = 0; tries < 64 && rc == -EEXIST; tries++) {
		if (want)
			snprintf(id, sizeof(id), "%s", want);
		else
			sfs_session_id_random(id, count_sessions(topfd));
		if (!sfs_id_valid(id))
			return -EINVAL;
		if (sfs_container_where(topfd, id) >= 0) {
			rc = -EEXIST;
		} else {
			one.id = id;
			rc = sfs_container_create(topfd[0], &one, k);
		}
		if (want)
			break;
	}
	if (rc == 0)
		snprintf(out_id, SFS_SESSION_ID_MAX + 1, "%s", id);
	return rc;
}

/* Is container @cfd still named @id in sessions/ or archive/ (not renamed away to be deleted)? */
static bool still_named(const int topfd[2], const char *id, int cfd)
{
	struct stat a, b;

	if (fstat(cfd, &a) < 0)
		return false;
	for (int w = 0; w < 2; w++)
		if (fstatat(topfd[w], id, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino)
			return true;
	return false;
}

int sfs_container_unlock(const int topfd[2], const char *id, int cfd, const char *pw, size_t pwlen,
			 struct sfs_container_key *k)
{
	int rc = sfs_store_session_unlock(cfd, pw, pwlen, &k->lockfd, &k->keys);

	/*
	 * The busy lock may have been waited for while another mount (or
	 * this one) deleted the session: a delete renames the container out
	 * of sight under that lock and then lets go of it. Checked under the
	 * lock, which a delete needs: a container still named here stays so.
	 */
	if (rc == 0 && !still_named(topfd, id, cfd)) {
		sfs_container_key_drop(k);
		rc = -ENOENT;
	}
	/*
	 * What an interrupted rekey left beside (rekey.h): under the busy lock
	 * no rekey of this session runs, whichever container has the name.
	 */
	for (int w = 0; rc == 0 && w < 2; w++)
		(void)sfs_rekey_sweep(topfd[w], id);
	return rc;
}

int sfs_container_create(int sessionsfd, const struct sfs_new_session *ns,
			 struct sfs_container_key *k)
{
	return sfs_store_session_create(sessionsfd, ns, &k->lockfd, &k->keys);
}

void sfs_container_key_drop(struct sfs_container_key *k)
{
	sfs_keys_free(k->keys); /* wipes them */
	k->keys = NULL;
	sfs_store_session_release(k->lockfd);
	k->lockfd = -1;
}

void sfs_container_open(struct sfs_container *c, struct sfs_container_key *k)
{
	c->keys = k->keys;
	c->lockfd = k->lockfd;
	k->keys = NULL;
	k->lockfd = -1;
}

bool sfs_container_is_open(const struct sfs_container *c)
{
	return c->keys != NULL;
}

int sfs_container_prepare(const struct sfs_container *c, int cfd, uint64_t recheck,
			  struct sfs_log *ev, struct sfs_session_report *rep)
{
	return sfs_store_session_prepare(cfd, c->keys, recheck, ev, rep);
}

void sfs_container_set_log(struct sfs_container *c, const struct sfs_log *ev, bool ok)
{
	sfs_log_close(&c->ev);
	c->ev_ok = ok;
	c->ev = *ev;
}

void sfs_container_close_log(struct sfs_container *c)
{
	c->ev_ok = false;
	sfs_log_close(&c->ev);
}

void sfs_container_close(struct sfs_container *c)
{
	sfs_container_close_log(c);
	sfs_keys_free(c->keys); /* wipes them */
	c->keys = NULL;
	sfs_store_session_release(c->lockfd);
	c->lockfd = -1;
}

int sfs_container_metadata(const struct sfs_container *c, int cfd, struct sfs_metadata *m)
{
	m->rootfd = -1;
	if (!c->keys)
		return -EACCES;
	return sfs_metadata_open(m, cfd, c->id, c->keys);
}

int sfs_container_delete_begin(int topfd, const char *id, char *gone)
{
	snprintf(gone, SFS_CONTAINER_GONE_MAX, ".del-%s-%ld", id, (long)getpid());
	return renameat(topfd, id, topfd, gone) < 0 ? sfs_neg_errno() : 0;
}

int sfs_container_delete_end(int topfd, const char *gone)
{
	int rc = sfs_remove_tree(topfd, gone);

	sfs_fsync_dirfd(topfd);
	return rc;
}

int sfs_container_delete(struct sfs_container *c, int topfd)
{
	char gone[SFS_CONTAINER_GONE_MAX];
	int rc;

	if (!c->keys)
		return -EACCES; /* only its holder may delete it */
	/* Out of sight while still holding its busy lock, then removed. */
	rc = sfs_container_delete_begin(topfd, c->id, gone);
	if (rc < 0)
		return rc;
	sfs_container_close(c);
	return sfs_container_delete_end(topfd, gone);
}

int sfs_container_move(int fromfd, int tofd, const char *id, bool held)
{
	int lockfd = -1, rc, cfd;

	if (!sfs_id_valid(id))
		return -EINVAL;
	if (!held) {
		cfd = sfs_container_dir(fromfd, id);
		if (cfd < 0)
			return cfd;
		rc = sfs_store_session_trylock(cfd, &lockfd);
		close(cfd);
		if (rc < 0)
			return rc;
	}
	rc = renameat2(fromfd, id, tofd, id, RENAME_NOREPLACE) < 0 ? sfs_neg_errno() : 0;
	sfs_store_session_release(lockfd);
	if (rc < 0)
		return rc;
	sfs_fsync_dirfd(fromfd);
	sfs_fsync_dirfd(tofd);
	return 0;
}

int sfs_container_passwd(int cfd, const char *old, size_t oldlen, const char *newpw, size_t newlen,
			 int *index)
{
	return sfs_store_session_passwd(cfd, old, oldlen, newpw, newlen, index);
}

void sfs_slot_recovery_new(unsigned char *key, char *text)
{
	sfs_crypto_random(key, SFS_RECOVERY_KEY_BYTES);
	sfs_fmt_recovery_encode(text, key);
}

bool sfs_slot_label_ok(const char *label, size_t len)
{
	if (len < 1 || len > SFS_SLOT_LABEL_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)label[i] < 0x20 || label[i] == 0x7f)
			return false;
	return true;
}

/* Slot @index of @kf, or NULL. */
static struct sfs_keyslot *slot_at(struct sfs_keyfile *kf, int index)
{
	for (unsigned int i = 0; i < kf->nslots; i++)
		if (kf->slots[i].index == index)
			return &kf->slots[i];
	return NULL;
}

/*
 * Make room for a slot in @kf at the lowest free index: the new slot, its
 * index set, at its place in ascending order.
 */
static struct sfs_keyslot *slot_insert(struct sfs_keyfile *kf)
{
	unsigned int at = 0;
	uint8_t index = 0;

	while (at < kf->nslots && kf->slots[at].index == index) {
		at++;
		index++;
	}
	memmove(&kf->slots[at + 1], &kf->slots[at], (kf->nslots - at) * sizeof(kf->slots[0]));
	kf->nslots++;
	memset(&kf->slots[at], 0, sizeof(kf->slots[at]));
	kf->slots[at].index = index;
	return &kf->slots[at];
}

int sfs_container_slot_add(int cfd, const char *pw, size_t pwlen, const struct sfs_slot_new *sn,
			   int *index)
{
	size_t labellen = sn->label ? strlen(sn->label) : 0;
	unsigned char *master;
	struct sfs_keyslot *s;
	struct sfs_keyedit e;
	int rc, proof;

	if (sn->label && !sfs_slot_label_ok(sn->label, labellen))
		return -EINVAL;
	master = sodium_malloc(SFS_KEY_BYTES);
	if (!master)
		return -ENOMEM;
	rc = sfs_store_keyfile_begin(cfd, &e);
	if (rc == 0 && e.kf.nslots >= SFS_SLOTS_MAX)
		rc = SFS_SLOT_EFULL;
	if (rc == 0)
		rc = sfs_fmt_keyfile_open(master, &e.kf, pw, pwlen, &proof);
	/* Version 1 or 2: its one slot, opened by @pw, re-sealed for version 3. */
	if (rc == 0 && e.kf.version < 3) {
		s = &e.kf.slots[0];
		e.kf.version = 3;
		rc = sfs_fmt_slot_seal(s, &e.kf, master, SFS_SLOT_ARGON2ID, pw, pwlen, s->opslimit,
				       s->memlimit, (uint64_t)e.mtime, NULL, 0);
	}
	if (rc == 0) {
		s = slot_insert(&e.kf);
		rc = sfs_fmt_slot_seal(s, &e.kf, master, sn->kdf, sn->secret, sn->len, sn->opslimit,
				       sn->memlimit, (uint64_t)time(NULL), sn->label, labellen);
		*index = s->index;
	}
	if (rc == 0)
		rc = sfs_store_keyfile_commit(cfd, &e);
	sfs_store_keyfile_end(&e);
	sodium_free(master);
	return rc;
}

int sfs_container_slot_remove(int cfd, int index, const char *pw, size_t pwlen)
{
	unsigned char *master = sodium_malloc(SFS_KEY_BYTES);
	struct sfs_keyslot *s = NULL;
	struct sfs_keyedit e;
	int rc, proof;

	if (!master)
		return -ENOMEM;
	rc = sfs_store_keyfile_begin(cfd, &e);
	if (rc == 0) {
		s = slot_at(&e.kf, index);
		rc = !s ? SFS_SLOT_ENONE : e.kf.nslots == 1 ? SFS_SLOT_ELAST : 0;
	}
	/*
	 * Proven by a slot that stays: the same password may sit in two slots,
	 * and either may go. Only a secret that opens slot @index alone is
	 * refused; to tell it from a wrong one, slot @index alone is tried
	 * (the others just were): one key derivation per slot in all, under
	 * the key file's lock.
	 */
	if (rc == 0)
		rc = sfs_fmt_keyfile_open_other(master, &e.kf, pw, pwlen, index, &proof);
	if (rc == -EKEYREJECTED && sfs_fmt_keyfile_open_slot(master, &e.kf, pw, pwlen, index) == 0)
		rc = SFS_SLOT_ESELF;
	if (rc == 0) {
		size_t at = (size_t)(s - e.kf.slots);

		memmove(s, s + 1, (e.kf.nslots - at - 1) * sizeof(*s));
		e.kf.nslots--;
		rc = sfs_store_keyfile_commit(cfd, &e);
	}
	sfs_store_keyfile_end(&e);
	sodium_free(master);
	return rc;
}

int sfs_container_slots(int cfd, const struct sfs_keys *keys, struct sfs_slot_info *out,
			unsigned int *n, int *version, enum sfs_cipher *cipher)
{
	struct sfs_keyedit e;
	int rc = sfs_store_keyfile_read(cfd, &e);

	*n = 0;
	if (rc < 0)
		return rc;
	*version = e.kf.version;
	*cipher = (enum sfs_cipher)e.kf.cipher;
	for (unsigned int i = 0; i < e.kf.nslots; i++) {
		const struct sfs_keyslot *s = &e.kf.slots[i];
		struct sfs_slot_info *o = &out[i];

		memset(o, 0, sizeof(*o));
		o->index = s->index;
		o->kdf = (enum sfs_slot_kdf)s->kdf;
		o->opslimit = s->opslimit;
		o->memlimit = s->memlimit;
		o->added = e.kf.version == 3 ? (int64_t)s->added : (int64_t)e.mtime;
		for (int l = SFS_KDF_INTERACTIVE;
		     s->kdf == SFS_SLOT_ARGON2ID && l <= SFS_KDF_SENSITIVE; l++) {
			uint64_t ops, mem;

			if (sfs_kdf_params((enum sfs_kdf_level)l, &ops, &mem) == 0 &&
			    ops == s->opslimit && mem == s->memlimit)
				o->level = (enum sfs_kdf_level)l;
		}
		/* Version 1 and 2 have no labels; a label that fails to open stays unknown. */
		o->label_known = e.kf.version < 3 ||
				 (keys && sfs_fmt_slot_label(o->label, s, keys->label) == 0);
	}
	*n = e.kf.nslots;
	sfs_store_keyfile_end(&e);
	return 0;
}

int sfs_container_redact_begin(const struct sfs_container *c, int cfd, const regex_t *re,
			       struct sfs_log_rewrite *rw, struct sfs_redact_stats *st)
{
	memset(rw, 0, sizeof(*rw));
	rw->nl.fd = rw->rootfd = -1;
	if (!c->keys || !c->ev_ok || c->ev.fd < 0)
		return -EIO;
	return sfs_log_redact_begin(cfd, &c->ev, re, rw, st);
}

int sfs_container_redact_commit(struct sfs_container *c, struct sfs_log_rewrite *rw)
{
	int rc = sfs_log_redact_publish(rw);

	if (rw->renamed) {
		sfs_container_set_log(c, &rw->nl, true);
		rw->nl.fd = -1; /* @c's now */
	}
	return rc;
}
