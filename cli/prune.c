/*
 * prune.c - sessionctl prune: retention, never silent. Selects sessions by
 * their last change (what the store tells without a password, so locked
 * sessions count), prints exactly what it will do, asks (or takes --yes),
 * and archives or deletes each through the daemon's ordinary control ops
 * ("archive", "delete"), so every action is the daemon's own and recorded
 * where the daemon records them.
 *
 * Selection (doc/sessionctl.1): the sessions considered are those in
 * sessions/ (--archive) or in both sessions/ and archive/ (--delete), with
 * --status only the unlocked ones of that status; newest change first, the
 * first --keep-last N are kept; of the rest, those whose last change is
 * older than --older-than are pruned. A session unlocked by another mount
 * is skipped and reported. Knows the protocol's words; nothing of crypto
 * or the store format.
 */
#include "sessionctl.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *get_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static long long older_than_secs; /* --older-than in seconds; -1 none */

int sfs_prune_check(struct cmd *c)
{
	char *end;

	older_than_secs = -1;
	c->keep_last = -1;
	if (c->older_than &&
	    sfs_parse_duration(c->older_than, SFS_DUR_UNIT_REQUIRED, &older_than_secs) < 0)
		return die(SFS_EXIT_USAGE,
			   "%s: bad --older-than '%s': want a whole number and a unit, s, m, "
			   "h, d or w (30d, 12h, 90m, 2w)",
			   c->argv0, c->older_than);
	if (c->keep_last_arg) {
		errno = 0;
		c->keep_last = strtoll(c->keep_last_arg, &end, 10);
		if (errno || end == c->keep_last_arg || *end || c->keep_last < 0 ||
		    c->keep_last_arg[0] < '0' || c->keep_last_arg[0] > '9')
			return die(SFS_EXIT_USAGE,
				   "%s: bad --keep-last '%s': want a whole number, 0 or more",
				   c->argv0, c->keep_last_arg);
	}
	if (c->archive && c->delete)
		return die(SFS_EXIT_USAGE, "%s: --archive and --delete exclude each other",
			   c->argv0);
	if (c->status && !c->status[0])
		return die(SFS_EXIT_USAGE, "%s: --status wants a status", c->argv0);
	if (!c->older_than && !c->status && !c->keep_last_arg)
		return die(SFS_EXIT_USAGE,
			   "%s: say what to prune: --older-than, --status and/or --keep-last",
			   c->argv0);
	return SFS_EXIT_OK;
}

/* "45d", "3h", "20m", "10s": how long ago @secs was, for people. */
static void ago(char *buf, size_t len, long long secs)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		snprintf(buf, len, "%lldd", secs / 86400);
	else if (secs >= 3600)
		snprintf(buf, len, "%lldh", secs / 3600);
	else if (secs >= 60)
		snprintf(buf, len, "%lldm", secs / 60);
	else
		snprintf(buf, len, "%llds", secs);
}

/* One line of the plan: "archive INC-3f2a  sessions/  locked  last change ... (45d ago)". */
static void say(FILE *out, const char *verb, json_t *s, long long now)
{
	json_t *ns = json_object_get(s, SFS_PROTO_F_CHANGED_NS);
	const char *changed = get_str(s, SFS_PROTO_F_CHANGED), *id = get_str(s, SFS_PROTO_F_ID),
		   *where = get_str(s, SFS_PROTO_F_WHERE);
	char a[24] = "unknown";

	/* No last change known (a container that cannot be read): no age either. */
	if (json_is_integer(ns))
		ago(a, sizeof(a), now - (long long)json_integer_value(ns) / 1000000000);
	fprintf(out, "%s %s  %s/  %s  last change %s (%s%s)  %lld bytes\n", verb, id ? id : "?",
		where ? where : "?",
		json_is_true(json_object_get(s, SFS_PROTO_F_LOCKED)) ? "locked" : "unlocked",
		changed ? changed : "-", a, json_is_integer(ns) ? " ago" : "",
		(long long)json_integer_value(json_object_get(s, SFS_PROTO_F_SIZE)));
}

/* Ask on the terminal; 1 yes, 0 no, -1 no terminal. */
static int confirm(const char *verb, size_t n)
{
	char ans[16] = "";
	FILE *tty = fopen("/dev/tty", "r+");

	if (!tty)
		return -1;
	fprintf(tty, "%s %zu session%s? [y/N] ", verb, n, n == 1 ? "" : "s");
	fflush(tty);
	if (!fgets(ans, sizeof(ans), tty))
		ans[0] = '\0';
	fclose(tty);
	return ans[0] == 'y' || ans[0] == 'Y';
}

/*
 * Pick from @all (sorted newest change first) what prune acts on into
 * @todo, and what it must skip (unlocked by another mount) into @busy.
 * Sessions whose status a --status cannot see (locked) are counted in
 * *@unknown.
 */
static void select_sessions(const struct cmd *c, json_t *all, long long now, json_t *todo,
			    json_t *busy, size_t *unknown)
{
	long long kept = 0;
	json_t *s;
	size_t i;

	*unknown = 0;
	json_array_foreach(all, i, s)
	{
		const char *where = get_str(s, SFS_PROTO_F_WHERE), *st;
		json_t *ns = json_object_get(s, SFS_PROTO_F_CHANGED_NS);

		if (!c->delete &&(!where || strcmp(where, SFS_SESSIONS_DIR) != 0))
			continue; /* archived already */
		if (c->status) {
			st = get_str(s, SFS_PROTO_F_STATUS);
			if (json_is_true(json_object_get(s, SFS_PROTO_F_LOCKED))) {
				(*unknown)++;
				continue;
			}
			if (!st || strcmp(st, c->status) != 0)
				continue;
		}
		if (c->keep_last >= 0 && kept < c->keep_last) {
			kept++;
			continue;
		}
		/* No last change known (a container that cannot be read): never old. */
		if (older_than_secs >= 0 &&
		    (!json_is_integer(ns) ||
		     (long long)(json_integer_value(ns) / 1000000000) > now - older_than_secs))
			continue;
		if (json_is_true(json_object_get(s, SFS_PROTO_F_UNLOCKED_ELSEWHERE)))
			json_array_append(busy, s);
		else
			json_array_append(todo, s);
	}
}

/* Archive or delete session @s through the daemon; an exit code. */
static int act(const struct cmd *c, json_t *s)
{
	const char *id = get_str(s, SFS_PROTO_F_ID);
	char what[64];
	json_t *req;
	int rc;

	if (c->delete) {
		req = json_pack("{s:s, s:s, s:b, s:s}", SFS_PROTO_F_OP,
				sfs_proto_op_name(SFS_PROTO_OP_DELETE), SFS_PROTO_F_SESSION, id,
				SFS_PROTO_F_LOCKED_OK, 1, SFS_PROTO_F_BY, "prune");
		snprintf(what, sizeof(what), "cannot delete %s", id);
	} else {
		req = json_pack("{s:s, s:s, s:s}", SFS_PROTO_F_OP,
				sfs_proto_op_name(SFS_PROTO_OP_ARCHIVE), SFS_PROTO_F_SESSION, id,
				SFS_PROTO_F_BY, "prune");
		snprintf(what, sizeof(what), "cannot archive %s", id);
	}
	rc = call_at(c->mnt, req, what, NULL);
	if (rc == SFS_EXIT_OK)
		printf("%s %s\n", c->delete ? "deleted" : "archived", id);
	fflush(stdout);
	return rc;
}

int sfs_prune_run(struct cmd *c)
{
	const char *verb = c->delete ? "delete" : "archive";
	json_t *all, *todo = json_array(), *busy = json_array(), *s;
	long long now = (long long)time(NULL);
	size_t i, unknown;
	int rc, r;

	rc = sfs_list_fetch(&c->m, &all);
	mount_close(&c->m);
	if (rc == SFS_EXIT_OK && (!todo || !busy))
		rc = die(SFS_EXIT_FAIL, "prune: out of memory");
	if (rc) {
		json_decref(todo), json_decref(busy), json_decref(all);
		return rc;
	}
	sfs_list_sort(all, "updated");
	select_sessions(c, all, now, todo, busy, &unknown);
	json_decref(all);
	if (unknown)
		fprintf(stderr,
			"sessionctl: prune: %zu locked session%s not considered: --status cannot "
			"see the status of a locked session\n",
			unknown, unknown == 1 ? "" : "s");
	json_array_foreach(busy, i, s) fprintf(
		stderr, "sessionctl: prune: skipping %s: unlocked by another mount of the store\n",
		get_str(s, SFS_PROTO_F_ID));
	if (json_array_size(todo) == 0) {
		printf("nothing to %s: no session matches\n", verb);
		json_decref(todo), json_decref(busy);
		return SFS_EXIT_OK;
	}
	/* The plan, exactly what will be done, before anything is. */
	json_array_foreach(todo, i, s) say(stdout, verb, s, now);
	fflush(stdout);
	if (c->dry_run) {
		printf("dry run: nothing changed (%zu session%s would be %s)\n",
		       json_array_size(todo), json_array_size(todo) == 1 ? "" : "s",
		       c->delete ? "deleted" : "archived");
		json_decref(todo), json_decref(busy);
		return SFS_EXIT_OK;
	}
	if (!c->yes) {
		r = confirm(c->delete ? "Delete for good these" : "Archive these",
			    json_array_size(todo));
		if (r <= 0) {
			json_decref(todo), json_decref(busy);
			return die(SFS_EXIT_CTL_CANCELLED, "prune: %s: nothing changed%s",
				   r < 0 ? "no terminal to ask on" : "not confirmed",
				   r < 0 ? " (use --yes)" : "");
		}
	}
	/* Each on its own: a failure is reported and the rest still done. */
	json_array_foreach(todo, i, s)
	{
		r = act(c, s);
		if (r == SFS_EXIT_CTL_BUSY || r == SFS_EXIT_CTL_NO_SESSION)
			r = SFS_EXIT_OK; /* unlocked elsewhere or gone since the list: said, skipped
					  */
		if (r && !rc)
			rc = r;
	}
	json_decref(todo), json_decref(busy);
	return rc;
}
