/*
 * fsck.c - the top of fsck.sessionfs's walk: the store config, the
 * sessions/ and archive/ directories, the list of findings, their repair as
 * the mode says, and the exit bits.
 *
 * Store layer (lib/fsck.h): knows the store's layout; the containers and
 * their trees are fsck_container.c's and fsck_tree.c's. Nothing of
 * terminals, JSON output or FUSE.
 */
#include "audit.h"
#include "fsck.h"
#include "rekey.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool sfs_fsck_stop(struct sfs_fsck *c)
{
	if (c->cancel && *c->cancel)
		c->cancelled = true;
	return c->cancelled;
}

void sfs_fsck_bytes(struct sfs_fsck *c, uint64_t n)
{
	c->prog.bytes += n;
	if (c->progress)
		c->progress(c->arg, &c->prog);
}

static struct sfs_fsck_finding *new_finding(struct sfs_fsck *c, struct sfs_fsck_sess *s,
					    const char *path, bool plain, const char *code,
					    const char *fmt, va_list ap)
{
	struct sfs_fsck_finding *f;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		void *v = realloc(c->v, cap * sizeof(*c->v));

		if (!v)
			return NULL;
		c->v = v;
		c->cap = cap;
	}
	f = &c->v[c->n];
	memset(f, 0, sizeof(*f));
	snprintf(f->session, sizeof(f->session), "%s", s ? s->name : "");
	f->path = strdup(path ? path : "");
	f->plain = plain;
	f->code = code;
	if (vasprintf(&f->what, fmt, ap) < 0)
		f->what = NULL;
	if (!f->path || !f->what) {
		free(f->path);
		free(f->what);
		return NULL;
	}
	c->n++;
	return f;
}

/*
 * A repair tried goes to the store's audit trail as a "repair" record by
 * "fsck" with the finding's code (never its path or text: they may name
 * what is inside a session). A trail that cannot be written does not stop
 * the repair: the finding says what was done.
 */
static void audit_repair(struct sfs_fsck *c, const struct sfs_fsck_sess *s, const char *code,
			 int rc)
{
	const struct sfs_audit_who who = {
		.uid = getuid(), .pid = getpid(), .comm = "fsck.sessionfs", .by = "fsck"};
	json_t *extra = json_pack("{s:s, s:b}", "code", code, "ok", rc == 0);

	if (extra && rc < 0)
		json_object_set_new(extra, "error", json_string("io"));
	sfs_audit_write(c->storefd, "repair", s ? s->id : NULL, &who, extra);
}

enum sfs_fsck_state sfs_fsck_add(struct sfs_fsck *c, struct sfs_fsck_sess *s, const char *path,
				 bool plain, const char *code, const char *repair,
				 sfs_fsck_fix_fn fix, void *fixarg, const char *fmt, ...)
{
	struct sfs_fsck_finding *f;
	size_t idx;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	f = new_finding(c, s, path, plain, code, fmt, ap);
	va_end(ap);
	if (!f)
		return SFS_FSCK_FAILED;
	idx = f - c->v;
	f->repair = repair ? strdup(repair) : NULL;
	f->state = SFS_FSCK_LEFT;
	if (fix && c->mode != SFS_FSCK_CHECK && !sfs_fsck_stop(c) &&
	    (c->mode == SFS_FSCK_REPAIR || (c->ask && c->ask(c->arg, f)))) {
		rc = fix(c, s, fixarg);
		f = &c->v[idx];
		f->state = rc == 0 ? SFS_FSCK_FIXED : SFS_FSCK_FAILED;
		f->err = rc;
		audit_repair(c, s, code, rc);
	}
	if (c->report)
		c->report(c->arg, f);
	return f->state;
}

void sfs_fsck_add_state(struct sfs_fsck *c, struct sfs_fsck_sess *s, const char *path, bool plain,
			const char *code, enum sfs_fsck_state state, int err, const char *fmt, ...)
{
	struct sfs_fsck_finding *f;
	va_list ap;

	va_start(ap, fmt);
	f = new_finding(c, s, path, plain, code, fmt, ap);
	va_end(ap);
	if (!f)
		return;
	f->state = state;
	f->err = err;
	if (c->report)
		c->report(c->arg, f);
}

static int fix_remove(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg)
{
	(void)s;
	return sfs_remove_tree(c->storefd, arg);
}

/* Backing bytes of regular files below @dirfd/@name (no symlinks followed). */
static uint64_t tree_bytes(int pfd, const char *name, unsigned depth)
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint64_t sum = 0;
	struct stat st;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
		else if (S_ISDIR(st.st_mode) && depth < 256)
			sum += tree_bytes(dirfd(d), de->d_name, depth + 1);
	}
	closedir(d);
	return sum;
}

/* The containers of sessions/ or archive/; how many there are in *@count if @count. */
static int walk_area(struct sfs_fsck *c, const char *area, bool count_only, unsigned *count)
{
	int fd = openat(c->storefd, area, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *d;

	if (fd < 0) {
		if (!count_only)
			sfs_fsck_add_state(c, NULL, area, false, "layout", SFS_FSCK_LEFT, -errno,
					   "%s/ is missing or not a directory: %s", area,
					   strerror(errno));
		return 0;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			char **v = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof(*names));

			if (!v)
				break;
			names = v;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = names[i];
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", area, name);
		if (sfs_id_valid(name)) {
			if (count_only) {
				(*count)++;
				if (c->measure)
					c->prog.total += tree_bytes(dirfd(d), name, 0);
			} else if (!sfs_fsck_stop(c))
				sfs_fsck_container(c, dirfd(d), area, name);
		} else if (count_only) {
		} else if (sfs_rekey_is_leftover(name)) {
			sfs_fsck_add(c, NULL, path, false, "leftover", "remove it", fix_remove,
				     path,
				     "an interrupted `sessionctl rekey` left this container beside "
				     "the session (half-built, or the one before the rekey, under "
				     "the retired key; never a session)");
		} else if (strncmp(name, ".new-", 5) == 0) {
			sfs_fsck_add(c, NULL, path, false, "leftover", "remove it", fix_remove,
				     path,
				     "an interrupted `sessionctl new` left this half-built "
				     "container (never a session)");
		} else {
			sfs_fsck_add_state(c, NULL, path, false, "unknown", SFS_FSCK_NOTE, 0,
					   "not a session id: ignored by sessionfs, left as it is");
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return 0;
}

int sfs_fsck_run(struct sfs_fsck *c)
{
	struct sfs_store_config cfg;
	char why[512];
	int rc;

	c->storefd = -1;
	rc = sfs_store_open(c->store, &c->storefd, &cfg, why, sizeof(why));
	if (rc < 0) {
		sfs_fsck_add_state(c, NULL, SFS_CONF_NAME, false, "config", SFS_FSCK_FAILED, rc,
				   "%s", why);
		return rc;
	}
	/* sfs_store_open gives an O_PATH descriptor: reopen it for listings. */
	{
		int fd = openat(c->storefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd >= 0) {
			close(c->storefd);
			c->storefd = fd;
		}
	}
	c->prog.current = "";
	walk_area(c, SFS_SESSIONS_DIR, true, &c->prog.sessions);
	walk_area(c, SFS_ARCHIVE_DIR, true, &c->prog.sessions);
	walk_area(c, SFS_SESSIONS_DIR, false, NULL);
	if (!sfs_fsck_stop(c))
		walk_area(c, SFS_ARCHIVE_DIR, false, NULL);
	close(c->storefd);
	c->storefd = -1;
	return 0;
}

int sfs_fsck_exit_bits(const struct sfs_fsck *c)
{
	int bits = 0;

	for (size_t i = 0; i < c->n; i++) {
		switch (c->v[i].state) {
		case SFS_FSCK_FIXED:
			bits |= SFS_FSCK_EXIT_CORRECTED;
			break;
		case SFS_FSCK_LEFT:
		case SFS_FSCK_SKIPPED:
			bits |= SFS_FSCK_EXIT_UNCORRECTED;
			break;
		case SFS_FSCK_FAILED:
			bits |= SFS_FSCK_EXIT_ERROR;
			break;
		case SFS_FSCK_NOTE:
			break;
		}
	}
	if (c->cancelled)
		bits |= SFS_FSCK_EXIT_CANCELLED;
	return bits;
}

void sfs_fsck_free(struct sfs_fsck *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].path);
		free(c->v[i].what);
		free(c->v[i].repair);
	}
	free(c->v);
	c->v = NULL;
	c->n = c->cap = 0;
}
