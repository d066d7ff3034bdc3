/*
 * session_report.h - the words of what unlock found and repaired in a
 * session's files, as the user is shown them: the lines `sessionctl unlock`
 * prints as warnings (one "FILE: what" per finding, the daemon logs each
 * too), the lines only the daemon logs, and the damage of events.jsonl
 * that `sessionctl list` shows until an unlock finds it gone.
 *
 * Input is what preparing the session reported (struct
 * sfs_session_report, lib/prepare.c through sfs_container_prepare) and the
 * log it left. Text only: no I/O, no logging, no locks; nothing of FUSE,
 * the control protocol or the daemon. Every function writes into the
 * caller's buffer, NUL-terminated and cut where it does not fit.
 */
#ifndef SFS_SESSION_REPORT_H
#define SFS_SESSION_REPORT_H

#include "eventlog.h"
#include "store.h"

#include <stddef.h>

#define SFS_DAMAGE_MAX 512 /* a session's damage text (list), NUL included */
#define SFS_WARN_MAX 8192  /* what an unlock reports (lines), NUL included */

/*
 * What preparing a session found, @rc and @r as sfs_container_prepare
 * gave them and @ev the log it left (its size and lines count after a
 * cut): the findings about its files into @warn (@wsz bytes; lines
 * "FILE: what", "" none) and the damage of events.jsonl into @damage
 * (@dsz bytes, "" none). @container is the session's container as the
 * user finds it (STORE/sessions/ID or STORE/archive/ID), where the bytes
 * a cut kept are named.
 */
void sfs_session_report_text(int rc, const struct sfs_session_report *r, const struct sfs_log *ev,
			     const char *container, char *warn, size_t wsz, char *damage,
			     size_t dsz);

/*
 * What preparing a session mended that is no finding about its files (crash
 * leftovers removed, a missing events.jsonl made): lines for the daemon's
 * log into @out (@sz bytes, "" none).
 */
void sfs_session_report_notes(const struct sfs_session_report *r, char *out, size_t sz);

/*
 * An unlock of a session that was unlocked already, which checks nothing
 * again: what is known stays said. Its warning line for known damage
 * @damage (as sfs_session_report_text gave it, "" none) into @warn.
 */
void sfs_session_report_known(const char *damage, char *warn, size_t wsz);

#endif
