/*
 * store.c - store config and session containers on disk; see store.h.
 *
 * Layout (doc/format.md): STORE/sessionfs.conf, STORE/sessions/ID/ and
 * STORE/archive/ID/, each container holding key, lock and root/. Must not
 * know FUSE or the control protocol.
 */
#include "store.h"
#include "eventlog.h"
#include "fileio.h"
#include "format.h"
#include "metadata.h"
#include "tree.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONF_MAX 65536

static int fail(char *why, size_t whylen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t whylen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/*
 * @doc as indented JSON and a newline, in malloc'd memory the caller frees
 * with free() (json_dumps would allocate through jansson's allocator).
 * NULL on ENOMEM.
 */
static char *dump(const json_t *doc)
{
	size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
	size_t n = doc ? json_dumpb(doc, NULL, 0, flags) : 0;
	char *out = n ? malloc(n + 2) : NULL;

	if (!out)
		return NULL;
	json_dumpb(doc, out, n, flags);
	out[n] = '\n';
	out[n + 1] = '\0';
	return out;
}

/* Does directory @fd hold any entry at all? 1, 0 or -errno. */
static int dir_has_entries(int fd)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int found = 0;

	if (dfd < 0)
		return sfs_neg_errno();
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -ENOMEM;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			found = 1;
			break;
		}
	closedir(d);
	return found;
}

int sfs_store_create(const char *path, enum sfs_kdf_level kdf, enum sfs_cipher cipher, char *why,
		     size_t whylen)
{
	json_t *conf;
	char *text;
	int fd, rc;

	/* Only a cipher new sessions may get (not the legacy AES-256-GCM file keys). */
	if (sfs_cipher_from_name(sfs_cipher_name(cipher)) != cipher)
		return fail(why, whylen, -EINVAL, "no new session uses cipher %s",
			    sfs_cipher_name(cipher));
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return fail(why, whylen, sfs_neg_errno(), "cannot create %s: %s", path,
			    strerror(errno));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail(why, whylen, sfs_neg_errno(), "%s: %s", path, strerror(errno));
	if (faccessat(fd, SFS_CONF_NAME, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		rc = fail(why, whylen, -EEXIST, "%s is already a sessionfs store", path);
		goto out;
	}
	rc = dir_has_entries(fd);
	if (rc != 0) {
		rc = rc > 0 ? fail(why, whylen, -ENOTEMPTY,
				   "%s is not empty (a store is made in an empty directory)", path)
			    : fail(why, whylen, rc, "cannot read %s", path);
		goto out;
	}
	if (fchmod(fd, 0700) < 0 || mkdirat(fd, SFS_SESSIONS_DIR, 0700) < 0 ||
	    mkdirat(fd, SFS_ARCHIVE_DIR, 0700) < 0) {
		rc = fail(why, whylen, sfs_neg_errno(), "cannot set up %s: %s", path,
			  strerror(errno));
		goto out;
	}
	conf = json_pack("{s:s, s:i, s:[], s:s, s:i, s:s}", "format", "sessionfs", "version",
			 SFS_FORMAT_VERSION, "features", "kdf", sfs_kdf_level_name(kdf),
			 "block_size", SFS_BLOCK, "cipher", sfs_cipher_name(cipher));
	text = dump(conf);
	json_decref(conf);
	if (!text) {
		rc = fail(why, whylen, -ENOMEM, "out of memory");
		goto out;
	}
	rc = sfs_write_atomic(fd, SFS_CONF_NAME, text, strlen(text));
	free(text);
	if (rc < 0)
		fail(why, whylen, rc, "cannot write %s/%s: %s", path, SFS_CONF_NAME, strerror(-rc));
out:
	close(fd);
	return rc;
}

/* Check the parsed config; see doc/format.md, "Store config". */
static int check_config(json_t *conf, struct sfs_store_config *cfg, char *why, size_t whylen)
{
	const char *format = NULL, *kdf = NULL, *cipher = "xchacha20poly1305";
	json_t *features = NULL;
	int version = 0, bs = 0;
	size_t i;
	json_t *f;

	/* "cipher" came later: a store without it makes XChaCha20-Poly1305 sessions. */
	if (json_unpack(conf, "{s:s, s:i, s:o, s:s, s:i, s?:s}", "format", &format, "version",
			&version, "features", &features, "kdf", &kdf, "block_size", &bs, "cipher",
			&cipher) != 0 ||
	    strcmp(format, "sessionfs") != 0 || !json_is_array(features))
		return fail(why, whylen, -EUCLEAN, "sessionfs.conf lacks the fields of a store");
	if (version > SFS_FORMAT_VERSION)
		return fail(why, whylen, -EPROTONOSUPPORT,
			    "store format version %d is newer than this sessionfs reads (%d)",
			    version, SFS_FORMAT_VERSION);
	if (version < 1)
		return fail(why, whylen, -EUCLEAN, "bad store format version %d", version);
	json_array_foreach(features, i, f) return fail(
		why, whylen, -EPROTONOSUPPORT, "store uses feature '%s', unknown to this sessionfs",
		json_is_string(f) ? json_string_value(f) : "?");
	if (bs != SFS_BLOCK)
		return fail(why, whylen, -EPROTONOSUPPORT, "unsupported block size %d", bs);
	cfg->version = version;
	cfg->kdf = sfs_kdf_level_from_name(kdf);
	if (!cfg->kdf)
		return fail(why, whylen, -EUCLEAN, "unknown kdf level '%s'", kdf);
	cfg->cipher = sfs_cipher_from_name(cipher);
	if (!cfg->cipher)
		return fail(why, whylen, -EPROTONOSUPPORT,
			    "store makes sessions with cipher '%s', unknown to this sessionfs",
			    cipher);
	return 0;
}

int sfs_store_open(const char *path, int *storefd, struct sfs_store_config *cfg, char *why,
		   size_t whylen)
{
	char *text = malloc(CONF_MAX + 1);
	json_error_t jerr;
	json_t *conf;
	ssize_t n;
	int fd, rc;

	*storefd = -1;
	if (!text)
		return -ENOMEM;
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? fail(why, whylen, -ENOENT, "%s does not exist", path)
		     : errno == ENOTDIR
			     ? fail(why, whylen, -ENOTDIR, "%s is not a directory", path)
			     : fail(why, whylen, sfs_neg_errno(), "%s: %s", path, strerror(errno));
		free(text);
		return rc;
	}
	n = sfs_read_small(fd, SFS_CONF_NAME, text, CONF_MAX);
	if (n < 0) {
		rc = n == -ENOENT ? fail(why, whylen, -EUCLEAN,
					 "%s is not a sessionfs store (no %s)", path, SFS_CONF_NAME)
				  : fail(why, whylen, (int)n, "cannot read %s/%s: %s", path,
					 SFS_CONF_NAME, strerror((int)-n));
		goto err;
	}
	conf = json_loadb(text, (size_t)n, 0, &jerr);
	if (!conf) {
		rc = fail(why, whylen, -EUCLEAN, "%s/%s is not valid JSON (line %d: %s)", path,
			  SFS_CONF_NAME, jerr.line, jerr.text);
		goto err;
	}
	rc = check_config(conf, cfg, why, whylen);
	json_decref(conf);
	if (rc < 0)
		goto err;
	if (faccessat(fd, SFS_SESSIONS_DIR, F_OK, AT_SYMLINK_NOFOLLOW) < 0 ||
	    faccessat(fd, SFS_ARCHIVE_DIR, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = fail(why, whylen, -EUCLEAN, "%s lacks its sessions/ or archive/ directory",
			  path);
		goto err;
	}
	free(text);
	*storefd = fd;
	return 0;
err:
	free(text);
	close(fd);
	return rc;
}

char *sfs_store_metadata_new(const char *id, const char *name)
{
	const struct sfs_new_session ns = {.id = id, .name = name};

	return sfs_store_metadata_first(&ns);
}

char *sfs_store_metadata_first(const struct sfs_new_session *ns)
{
	char now[32];
	json_t *doc;
	char *out;

	sfs_utc_now(now, sizeof(now));
	doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[]}", "id", ns->id, "name", ns->name,
			"created", ns->created ? ns->created : now, "updated", now, "status",
			ns->copy_of ? SFS_STATUS_COPYING : "active", "tags");
	if (doc && ns->copy_of)
		json_object_set_new(doc, SFS_COPY_OF, json_string(ns->copy_of));
	out = dump(doc);
	json_decref(doc);
	return out;
}

char *sfs_store_metadata_set_updated(const char *text, size_t len, const char *when)
{
	json_t *doc = json_loadb(text, len, 0, NULL);
	char *out = NULL;

	if (json_is_object(doc) && json_object_set_new(doc, "updated", json_string(when)) == 0)
		out = dump(doc);
	json_decref(doc);
	return out;
}

static unsigned long json_nomem_count(void);

/*
 * Parse metadata.json @text of @len bytes into *@doc: 0; -EINVAL not a JSON
 * object (damage); -ENOMEM. jansson reports most failed allocations inside
 * a parse as a syntax error: an allocation that failed on this thread
 * meanwhile (counted by sfs_store_json_wipe_on_free's functions, which the
 * daemon, sessionctl and fsck use) makes it -ENOMEM.
 */
static int load_object(const char *text, size_t len, json_t **doc)
{
	unsigned long nomem = json_nomem_count();
	json_error_t err = {0};

	*doc = json_loadb(text, len, 0, &err);
	if (!*doc &&
	    (json_nomem_count() != nomem || json_error_code(&err) == json_error_out_of_memory))
		return -ENOMEM;
	if (!json_is_object(*doc)) {
		json_decref(*doc);
		*doc = NULL;
		return -EINVAL;
	}
	return 0;
}

int sfs_store_metadata_set_status(const char *text, size_t len, const char *status,
				  const char *when, char **out)
{
	json_t *doc;
	int rc = load_object(text, len, &doc);

	*out = NULL;
	if (rc == 0 &&
	    (json_object_set_new(doc, "status", json_string(status)) < 0 ||
	     json_object_set_new(doc, "updated", json_string(when)) < 0 || !(*out = dump(doc))))
		rc = -ENOMEM;
	json_decref(doc);
	return rc;
}

int sfs_store_metadata_summary(const char *text, size_t len, json_t **out)
{
	static const char *const keys[] = {"status", "name", "created", "updated"};
	json_t *doc;
	int rc = load_object(text, len, &doc);

	*out = NULL;
	if (rc == 0 && !(*out = json_object()))
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(doc, keys[i]);

		if (json_is_string(v) && json_object_set(*out, keys[i], v) < 0)
			rc = -ENOMEM;
	}
	json_decref(doc);
	if (rc < 0) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* Create the empty event log events.jsonl in the new session root @dirfd. */
static int create_log(int dirfd, const unsigned char dirid[SFS_ID_BYTES],
		      const struct sfs_attrs *attrs, const struct sfs_keys *keys)
{
	struct sfs_ename en;
	unsigned char id[SFS_ID_BYTES];
	int fd, rc;

	rc = sfs_fmt_name_encrypt(&en, SFS_EVENTS_NAME, dirid, keys);
	if (rc < 0)
		return rc;
	fd = openat(dirfd, en.backing, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return sfs_neg_errno();
	sfs_crypto_random(id, sizeof(id));
	rc = sfs_log_create(fd, id, attrs, keys);
	if (rc == 0 && fsync(fd) < 0)
		rc = sfs_neg_errno();
	close(fd);
	return rc;
}

/*
 * Take the busy lock of container @cfd: an OFD write lock on its lock file.
 * A mount that is exiting (unmounted, still wiping keys) holds it for a
 * moment: try for up to @wait_ms before calling the session busy.
 */
static int take_lock(int cfd, int *lockfd, int wait_ms)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd = openat(cfd, SFS_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return sfs_neg_errno();
	for (int waited = 0;; waited += 50) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			break;
		if ((errno != EAGAIN && errno != EACCES) || waited >= wait_ms) {
			int rc = (errno == EAGAIN || errno == EACCES) ? -EBUSY : sfs_neg_errno();

			close(fd);
			return rc;
		}
		nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
	}
	*lockfd = fd;
	return 0;
}

void sfs_store_session_release(int lockfd)
{
	if (lockfd >= 0)
		close(lockfd);
}

int sfs_store_session_trylock(int cfd, int *lockfd)
{
	*lockfd = -1;
	return take_lock(cfd, lockfd, 0);
}

int sfs_store_session_held(int cfd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd = openat(cfd, SFS_LOCK_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc;

	if (fd < 0)
		return errno == ENOENT ? 0 : sfs_neg_errno();
	/* F_OFD_GETLK: what a write lock would conflict with, taking nothing. */
	rc = fcntl(fd, F_OFD_GETLK, &fl) < 0 ? sfs_neg_errno() : fl.l_type != F_UNLCK;
	close(fd);
	return rc;
}

/*
 * A version 3 key file for new session @ns into @out: slot 0 its password
 * (Argon2id @ops/@mem), slot 1 its recovery key. Its length or -errno.
 */
static ssize_t wrap_with_recovery(unsigned char out[SFS_KEYFILE_MAX],
				  const unsigned char master[SFS_KEY_BYTES],
				  const struct sfs_new_session *ns, uint64_t ops, uint64_t mem)
{
	struct sfs_keyfile kf = {.version = 3, .cipher = (uint16_t)ns->cipher, .nslots = 2};
	uint64_t now = (uint64_t)time(NULL);
	int rc;

	if (!sfs_cipher_available(ns->cipher))
		return -EINVAL;
	kf.slots[1].index = SFS_NEW_RECOVERY_SLOT;
	rc = sfs_fmt_slot_seal(&kf.slots[0], &kf, master, SFS_SLOT_ARGON2ID, ns->password,
			       ns->pwlen, ops, mem, now, NULL, 0);
	if (rc == 0)
		rc = sfs_fmt_slot_seal(&kf.slots[1], &kf, master, SFS_SLOT_RECOVERY, ns->recovery,
				       SFS_RECOVERY_KEY_BYTES, 0, 0, now, NULL, 0);
	return rc < 0 ? rc : sfs_fmt_keyfile_pack(out, &kf);
}

/* Fill the new container @cfd; on success *keys holds the session keys. */
static int populate(int cfd, const struct sfs_new_session *ns, struct sfs_keys **keys)
{
	unsigned char kf[SFS_KEYFILE_MAX], dirid[SFS_ID_BYTES];
	unsigned char *master = sodium_malloc(SFS_KEY_BYTES);
	ssize_t kflen = 0;
	struct sfs_attrs dattrs = {S_IFDIR | 0700, ns->uid, ns->gid, 0, SFS_KIND_BLOCKS};
	struct sfs_attrs fattrs = {S_IFREG | 0600, ns->uid, ns->gid, 0, SFS_KIND_BLOCKS};
	uint64_t ops, mem;
	int rootfd = -1, rc;

	if (!master)
		return -ENOMEM;
	sfs_crypto_random(master, SFS_KEY_BYTES);
	rc = sfs_kdf_params(ns->kdf, &ops, &mem);
	if (rc == 0) {
		kflen = ns->recovery ? wrap_with_recovery(kf, master, ns, ops, mem)
				     : sfs_fmt_keyfile_wrap(kf, master, ns->password, ns->pwlen,
							    ops, mem, ns->cipher);
		rc = kflen < 0 ? (int)kflen
			       : sfs_write_atomic(cfd, SFS_KEY_NAME, kf, (size_t)kflen);
	}
	if (rc == 0) {
		*keys = sfs_keys_new(master, ns->cipher);
		if (!*keys)
			rc = -ENOMEM;
	}
	sodium_free(master);
	if (rc < 0)
		return rc;
	if (mkdirat(cfd, SFS_ROOT_NAME, 0700) < 0 ||
	    (rootfd = openat(cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = sfs_neg_errno();
		goto out;
	}
	sfs_crypto_random(dirid, sizeof(dirid));
	rc = sfs_tree_dir_init(rootfd, dirid, &dattrs, *keys);
	if (rc == 0)
		rc = sfs_metadata_create(rootfd, dirid, ns, &fattrs, *keys);
	fattrs.kind = SFS_KIND_LOG;
	if (rc == 0)
		rc = create_log(rootfd, dirid, &fattrs, *keys);
	if (rc == 0)
		rc = sfs_fsync_dirfd(rootfd);
	if (rc == 0)
		rc = sfs_fsync_dirfd(cfd);
out:
	if (rootfd >= 0)
		close(rootfd);
	if (rc < 0) {
		sfs_keys_free(*keys);
		*keys = NULL;
	}
	return rc;
}

int sfs_store_session_create(int parentfd, const struct sfs_new_session *ns, int *lockfd,
			     struct sfs_keys **keys)
{
	unsigned char rnd[6];
	char tmp[64], hex[13];
	int cfd, rc;

	*keys = NULL;
	*lockfd = -1;
	if (!sfs_id_valid(ns->id))
		return -EINVAL;
	if (faccessat(parentfd, ns->id, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	sfs_crypto_random(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(tmp, sizeof(tmp), ".new-%s-%s", ns->id, hex);
	if (mkdirat(parentfd, tmp, 0700) < 0)
		return sfs_neg_errno();
	cfd = openat(parentfd, tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cfd < 0) {
		rc = sfs_neg_errno();
		goto err;
	}
	rc = take_lock(cfd, lockfd, 0);
	if (rc == 0)
		rc = populate(cfd, ns, keys);
	close(cfd);
	if (rc == 0 && renameat2(parentfd, tmp, parentfd, ns->id, RENAME_NOREPLACE) < 0)
		rc = sfs_neg_errno();
	if (rc == 0)
		rc = sfs_fsync_dirfd(parentfd);
	if (rc == 0)
		return 0;
err:
	sfs_remove_tree(parentfd, tmp);
	sfs_keys_free(*keys);
	*keys = NULL;
	sfs_store_session_release(*lockfd);
	*lockfd = -1;
	return rc;
}

/*
 * Unwrap the master key of container @cfd with @password: 0 with *master in
 * sodium_malloc memory (the caller sodium_frees it), or -errno as
 * sfs_fmt_keyfile_unwrap gives them (-EUCLEAN for a missing key file).
 */
static int unwrap_container(int cfd, const char *password, size_t pwlen, unsigned char **master,
			    struct sfs_keyfile *info)
{
	unsigned char kf[SFS_KEYFILE_MAX + 1];
	ssize_t n = sfs_read_small(cfd, SFS_KEY_NAME, kf, sizeof(kf));
	int rc;

	*master = NULL;
	if (n < 0)
		return n == -ENOENT ? -EUCLEAN : (int)n;
	*master = sodium_malloc(SFS_KEY_BYTES);
	if (!*master)
		return -ENOMEM;
	rc = sfs_fmt_keyfile_unwrap(*master, kf, (size_t)n, password, pwlen, info);
	if (rc < 0) {
		sodium_free(*master);
		*master = NULL;
	}
	return rc;
}

int sfs_store_session_params(int cfd, struct sfs_session_params *p)
{
	unsigned char kf[SFS_KEYFILE_MAX + 1];
	ssize_t n = sfs_read_small(cfd, SFS_KEY_NAME, kf, sizeof(kf));
	struct sfs_keyfile info;
	int rc;

	memset(p, 0, sizeof(*p));
	if (n < 0)
		return n == -ENOENT ? -EUCLEAN : (int)n;
	rc = sfs_fmt_keyfile_info(kf, (size_t)n, &info);
	if (rc < 0)
		return rc;
	p->opslimit = info.opslimit;
	p->memlimit = info.memlimit;
	p->cipher = (enum sfs_cipher)info.cipher;
	for (int l = SFS_KDF_INTERACTIVE; l <= SFS_KDF_SENSITIVE; l++) {
		uint64_t ops, mem;

		if (sfs_kdf_params((enum sfs_kdf_level)l, &ops, &mem) == 0 && ops == p->opslimit &&
		    mem == p->memlimit)
			p->kdf = (enum sfs_kdf_level)l;
	}
	return 0;
}

int sfs_store_session_unlock(int cfd, const char *password, size_t pwlen, int *lockfd,
			     struct sfs_keys **keys)
{
	struct sfs_keyfile info;
	unsigned char *master;
	int rc;

	*keys = NULL;
	*lockfd = -1;
	if (faccessat(cfd, SFS_KEY_NAME, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? -EUCLEAN : sfs_neg_errno();
	/* The busy lock first: a session open elsewhere is refused before the KDF runs. */
	rc = take_lock(cfd, lockfd, 2000);
	if (rc < 0)
		return rc;
	rc = unwrap_container(cfd, password, pwlen, &master, &info);
	if (rc == 0) {
		*keys = sfs_keys_new(master, info.cipher);
		sodium_free(master);
		if (!*keys)
			rc = -ENOMEM;
	}
	if (rc < 0) {
		sfs_store_session_release(*lockfd);
		*lockfd = -1;
	}
	return rc;
}

int sfs_store_session_verify(int cfd, const char *password, size_t pwlen)
{
	unsigned char *master;
	int rc = unwrap_container(cfd, password, pwlen, &master, NULL);

	if (rc == 0)
		sodium_free(master);
	return rc;
}

/*
 * Re-wrap slot @s of @e.kf (which @master's key it wraps) under @newpw,
 * keeping its label (version 3), cost and the time it was added.
 */
static int passwd_slot(struct sfs_keyedit *e, struct sfs_keyslot *s, const unsigned char *master,
		       const char *newpw, size_t newlen, char *label, unsigned char *lkey)
{
	int rc = 0;

	label[0] = '\0';
	if (e->kf.version == 3) {
		sfs_crypto_label_key(lkey, master);
		rc = sfs_fmt_slot_label(label, s, lkey); /* -EBADMSG: tampered */
	}
	if (rc == 0)
		rc = sfs_fmt_slot_seal(s, &e->kf, master, SFS_SLOT_ARGON2ID, newpw, newlen,
				       s->opslimit, s->memlimit, s->added, label, strlen(label));
	return rc;
}

int sfs_store_session_passwd(int cfd, const char *old, size_t oldlen, const char *newpw,
			     size_t newlen, int *index)
{
	char *label = sodium_malloc(SFS_SLOT_LABEL_MAX + 1 + SFS_KEY_BYTES * 3);
	unsigned char *master = (unsigned char *)label + SFS_SLOT_LABEL_MAX + 1;
	unsigned char *lkey = master + SFS_KEY_BYTES;
	unsigned char *other = lkey + SFS_KEY_BYTES;
	struct sfs_keyslot *s = NULL;
	struct sfs_keyedit e;
	int rc, at;

	if (!label)
		return -ENOMEM;
	rc = sfs_store_keyfile_begin(cfd, &e);
	if (rc == 0)
		rc = sfs_fmt_keyfile_open(master, &e.kf, old, oldlen, &at);
	for (unsigned int i = 0; rc == 0 && i < e.kf.nslots; i++)
		if (e.kf.slots[i].index == at)
			s = &e.kf.slots[i];
	if (rc == 0 && s->kdf != SFS_SLOT_ARGON2ID)
		rc = -EMEDIUMTYPE;
	if (rc == 0)
		rc = passwd_slot(&e, s, master, newpw, newlen, label, lkey);
	/*
	 * The old password in another slot too (slots after @at: the first it
	 * opens is @at): changed there as well, or it would still open the
	 * session. One key derivation per other password slot.
	 */
	for (unsigned int i = 0; rc == 0 && i < e.kf.nslots; i++) {
		struct sfs_keyslot *o = &e.kf.slots[i];
		int r;

		if (o->index <= at || o->kdf != SFS_SLOT_ARGON2ID)
			continue;
		r = sfs_fmt_keyfile_open_slot(other, &e.kf, old, oldlen, o->index);
		if (r == 0 && sodium_memcmp(other, master, SFS_KEY_BYTES) == 0)
			rc = passwd_slot(&e, o, master, newpw, newlen, label, lkey);
		else if (r < 0 && r != -EKEYREJECTED)
			rc = r;
	}
	if (rc == 0)
		rc = sfs_store_keyfile_commit(cfd, &e);
	if (rc == 0 && index)
		*index = at;
	sfs_store_keyfile_end(&e);
	sodium_free(label);
	return rc;
}

/* jansson allocations carry their size in front so that free can wipe them. */
#define WIPE_HDR 16

/* This thread's arena (sfs_store_json_arena), or NULL. */
static _Thread_local struct sfs_json_arena *arena;
/* How many of this thread's jansson allocations failed (load_object). */
static _Thread_local unsigned long json_nomem;

static unsigned long json_nomem_count(void)
{
	return json_nomem;
}

void sfs_store_json_arena(struct sfs_json_arena *a)
{
	arena = a;
}

static void *wipe_malloc(size_t n)
{
	struct sfs_json_arena *a = arena;
	unsigned char *p;

	if (a && n <= a->cap - a->used) {
		p = a->buf + a->used;
		a->used += (n + 15) / 16 * 16 < a->cap - a->used ? (n + 15) / 16 * 16
								 : a->cap - a->used;
		return p;
	}
	p = malloc(n + WIPE_HDR);

	if (!p) {
		json_nomem++;
		return NULL;
	}
	memcpy(p, &n, sizeof(n));
	return p + WIPE_HDR;
}

static void wipe_free(void *ptr)
{
	unsigned char *p = ptr;
	size_t n;

	if (!p)
		return;
	/* The arena's owner wipes it whole. */
	if (arena && p >= arena->buf && p < arena->buf + arena->cap)
		return;
	p -= WIPE_HDR;
	memcpy(&n, p, sizeof(n));
	sodium_memzero(p, n + WIPE_HDR);
	free(p);
}

void sfs_store_json_wipe_on_free(void)
{
	json_set_alloc_funcs(wipe_malloc, wipe_free);
}
