/*
 * log.c - the daemon's log: stderr in the foreground (-f); syslog when
 * daemonised; and where no syslog daemon listens on /dev/log (a container),
 * a file, named on stderr at mount time so that the messages are found.
 * Callers never pass secrets or plaintext names.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define SYSLOG_SOCKET "/dev/log"
#define LOG_FILE_NAME "sessionfs.log"

static enum { TO_STDERR, TO_SYSLOG, TO_FILE, TO_NOWHERE } where = TO_STDERR;
static int log_fd = -1;

/* Does a syslog daemon listen on /dev/log? (syslog(3) drops messages silently if not.) */
static bool syslog_listens(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = SYSLOG_SOCKET};
	static const int types[] = {SOCK_DGRAM, SOCK_STREAM};
	bool yes = false;

	for (size_t i = 0; !yes && i < sizeof(types) / sizeof(types[0]); i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		yes = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
	}
	return yes;
}

/*
 * The file for messages without syslog: in $XDG_RUNTIME_DIR if set, else
 * /var/log for root, else $HOME; into @out. false if there is none.
 */
static bool log_file_path(char *out, size_t n)
{
	const char *dir = getenv("XDG_RUNTIME_DIR"), *name = LOG_FILE_NAME;

	if (!dir || dir[0] != '/') {
		dir = geteuid() == 0 ? "/var/log" : getenv("HOME");
		if (dir && geteuid() != 0)
			name = "." LOG_FILE_NAME;
	}
	if (!dir || dir[0] != '/')
		return false;
	return (size_t)snprintf(out, n, "%s/%s", dir, name) < n;
}

void sfs_log_init(bool foreground)
{
	char path[PATH_MAX];
	const char *why;
	struct stat st;

	if (foreground) {
		where = TO_STDERR;
		return;
	}
	if (syslog_listens()) {
		openlog("sessionfs", LOG_PID, LOG_DAEMON);
		where = TO_SYSLOG;
		return;
	}
	/* Said on stderr while it still is the caller's: the daemon's goes to /dev/null. */
	where = TO_NOWHERE;
	if (!log_file_path(path, sizeof(path))) {
		fprintf(stderr,
			"sessionfs: no syslog (nothing listens on %s) and no place for a "
			"log file: the daemon's messages are lost (use -f to see them)\n",
			SYSLOG_SOCKET);
		return;
	}
	/* A regular file only: O_NONBLOCK so that a FIFO put there cannot hold the mount. */
	log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		      0600);
	why = log_fd < 0 ? strerror(errno) : NULL;
	if (log_fd >= 0 && (fstat(log_fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(log_fd);
		log_fd = -1;
		why = "not a regular file";
	}
	if (why) {
		fprintf(stderr,
			"sessionfs: no syslog (nothing listens on %s) and cannot open %s: "
			"%s: the daemon's messages are lost (use -f to see them)\n",
			SYSLOG_SOCKET, path, why);
		return;
	}
	where = TO_FILE;
	fprintf(stderr, "sessionfs: no syslog (nothing listens on %s): messages go to %s\n",
		SYSLOG_SOCKET, path);
}

/* One line, in one write(2): lines of several mounts never interleave. */
static void to_file(const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "sessionfs[%ld]: ", (long)getpid());
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(log_fd, line, (size_t)n) < 0) {
		/* nowhere else to say it */
	}
}

void sfs_syslog(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	switch (where) {
	case TO_STDERR:
		fprintf(stderr, "sessionfs: ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		break;
	case TO_SYSLOG:
		vsyslog(prio, fmt, ap);
		break;
	case TO_FILE:
		to_file(fmt, ap);
		break;
	case TO_NOWHERE:
		break;
	}
	va_end(ap);
}

void sfs_audit(const char *event, const char *session, const struct sfs_audit_who *who,
	       json_t *extra)
{
	struct sfs_audit_who self = {.uid = getuid(), .pid = getpid()};
	int rc;

	/* No caller: the daemon acted on its own (mount, idle, max_unlock, unmount). */
	if (!who)
		who = &self;
	rc = sfs_audit_write(sfs->storefd, event, session, who, extra);
	if (rc < 0)
		sfs_syslog(LOG_ERR, "%s/%s: cannot record %s%s%s: %s", sfs->store_path,
			   SFS_AUDIT_NAME, event, session ? " of " : "", session ? session : "",
			   strerror(-rc));
}

void sfs_audit_lock(const char *session, const char *cause, int open_files)
{
	sfs_audit("lock", session, NULL,
		  json_pack("{s:s, s:i}", "cause", cause, "open_files", open_files));
}
