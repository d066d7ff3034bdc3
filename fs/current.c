/*
 * current.c - MOUNTPOINT/current, the session hooks write to: a symlink the
 * daemon shows at the mount root while `sessionctl use` has named a session,
 * pointing at "sessions/ID" (or "archive/ID", wherever the session is now).
 *
 * It lives in the daemon's memory only, one per mount: a remount, or another
 * mount of the store (another machine), starts without one (README "The
 * current session"). It is never cached by the kernel (timeouts 0), so a
 * change is seen at the next path walk. Knows the registry's view of where a
 * session is; nothing of keys, JSON or the store's format.
 */
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The session named: "" none. Protected by cur_mu (a leaf, doc/locking.md). */
static pthread_mutex_t cur_mu = PTHREAD_MUTEX_INITIALIZER;
static char cur_id[SFS_SESSION_ID_MAX + 1];
static time_t cur_when; /* when it was set: the symlink's times */

int sfs_current_set(const char *id)
{
	if (id && !sfs_id_valid(id))
		return -EINVAL;
	pthread_mutex_lock(&cur_mu);
	snprintf(cur_id, sizeof(cur_id), "%s", id ? id : "");
	cur_when = time(NULL);
	pthread_mutex_unlock(&cur_mu);
	return 0;
}

bool sfs_current_get(char id[SFS_SESSION_ID_MAX + 1])
{
	pthread_mutex_lock(&cur_mu);
	snprintf(id, SFS_SESSION_ID_MAX + 1, "%s", cur_id);
	pthread_mutex_unlock(&cur_mu);
	return id[0] != '\0';
}

void sfs_current_forget(const char *id)
{
	pthread_mutex_lock(&cur_mu);
	if (strcmp(cur_id, id) == 0)
		cur_id[0] = '\0';
	pthread_mutex_unlock(&cur_mu);
}

int sfs_current_target(char *buf, size_t sz)
{
	char id[SFS_SESSION_ID_MAX + 1];

	if (!sfs_current_get(id))
		return -ENOENT;
	/* Where it is now: a session archived since `use` is followed there. */
	snprintf(buf, sz, "%s/%s", sfs_session_where(id) == 1 ? SFS_ARCHIVE_DIR : SFS_SESSIONS_DIR,
		 id);
	return 0;
}

int sfs_current_stat(struct stat *st)
{
	char target[64];
	int rc = sfs_current_target(target, sizeof(target));

	if (rc < 0)
		return rc;
	memset(st, 0, sizeof(*st));
	st->st_ino = sfs_ino_of(&sfs->current);
	st->st_mode = S_IFLNK | 0777;
	st->st_nlink = 1;
	st->st_uid = sfs->owner;
	st->st_gid = sfs->owner_gid;
	st->st_size = (off_t)strlen(target);
	pthread_mutex_lock(&cur_mu);
	st->st_atime = st->st_mtime = st->st_ctime = cur_when;
	pthread_mutex_unlock(&cur_mu);
	return 0;
}
