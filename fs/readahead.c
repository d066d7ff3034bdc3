/*
 * readahead.c - set the kernel's readahead window for this mount.
 *
 * Linux gives every FUSE mount a backing_dev_info with the default 128 KiB
 * readahead, whatever max_readahead the daemon asks for at INIT (the kernel
 * takes the smaller of the two). A cold sequential read then arrives as
 * 128 KiB READs, one round trip and one small crypto batch each. The window
 * is /sys/class/bdi/MAJ:MIN/read_ahead_kb, writable by root only; the mount's
 * MAJ:MIN comes from /proc/self/mountinfo, not from stat(2) of the mount
 * point, which would send a request to this daemon before it serves any.
 *
 * Knows mountinfo and sysfs; nothing of sessions, keys or FUSE requests.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/*
 * MAJ:MIN of the last FUSE mount on @mnt (the one just made stacks on any
 * earlier) into @dev. 0 or -ENOENT.
 */
static int mount_dev(const char *mnt, char *dev, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, majmin[32], point[PATH_MAX];
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		/* id parent MAJ:MIN root point options [optional...] - fstype source super */
		if (sscanf(line, "%*s %*s %31s %*s %4095s", majmin, point) != 2 ||
		    !strstr(line, " - fuse"))
			continue;
		unescape(point);
		if (strcmp(point, mnt) == 0 && strlen(majmin) < size) {
			strcpy(dev, majmin);
			rc = 0;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

int sfs_set_readahead(const char *mnt, unsigned kib)
{
	char dev[32], path[64], val[16];
	int fd, n, rc;

	rc = mount_dev(mnt, dev, sizeof(dev));
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(val, sizeof(val), "%u", kib);
	rc = write(fd, val, (size_t)n) == n ? 0 : -errno;
	close(fd);
	return rc;
}
