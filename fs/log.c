/*
 * log.c - the daemon's log: stderr in the foreground (-f), syslog when
 * daemonised. Callers never pass secrets or plaintext names.
 */
#include "fs.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static bool to_stderr = true;

void sfs_log_init(bool foreground)
{
	to_stderr = foreground;
	if (!foreground)
		openlog("sessionfs", LOG_PID, LOG_DAEMON);
}

void sfs_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (to_stderr) {
		fprintf(stderr, "sessionfs: ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		vsyslog(prio, fmt, ap);
	}
	va_end(ap);
}
