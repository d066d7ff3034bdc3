/*
 * rekey.c - sessionctl rekey: a new session key for a session, every file
 * sealed anew under it and every key slot re-wrapped, so that an old key
 * file and an old password no longer open today's data (doc/format.md
 * "Re-keying").
 *
 * The daemon does the work (op rekey, doc/control.md). A slot is re-wrapped
 * with its own secret: the password this command proves opens one slot;
 * the others' come from --secret-file N=FILE, or are asked on the terminal
 * when the daemon names a slot that has none, or the slot is left out with
 * --drop-slot N. On a terminal, a line shows how far the daemon is: the
 * control file takes one request at a time, so a second thread watches the
 * container the daemon builds in the store instead (its path from hello;
 * lib/usage.c counts its nodes and bytes without a key). Knows the
 * protocol's words and the name of that container; nothing of crypto.
 */
#include "sessionctl.h"
#include "rekey.h"
#include "session.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A slot number from 0 to SFS_SLOTS_MAX - 1 at @s up to @end (NULL: the string's end); -1 bad. */
static int slot_number(const char *s, const char *end)
{
	char *stop;
	long n;

	errno = 0;
	n = strtol(s, &stop, 10);
	if (errno || stop == s || (end ? stop != end : *stop != '\0') || n < 0 ||
	    n >= SFS_SLOTS_MAX || !(*s >= '0' && *s <= '9'))
		return -1;
	return (int)n;
}

int sfs_rekey_check(struct cmd *c)
{
	bool seen[SFS_SLOTS_MAX] = {false};

	for (int i = 0; i < c->nsecret_args; i++) {
		const char *eq = strchr(c->secret_args[i], '=');
		int n = eq ? slot_number(c->secret_args[i], eq) : -1;

		if (n < 0 || !eq[1])
			return die(SFS_EXIT_USAGE,
				   "%s: bad --secret-file '%s': want N=FILE, N a slot number from "
				   "0 to %d (see sessionctl keys)",
				   c->argv0, c->secret_args[i], SFS_SLOTS_MAX - 1);
		if (seen[n])
			return die(SFS_EXIT_USAGE, "%s: key slot %d named twice", c->argv0, n);
		seen[n] = true;
	}
	for (int i = 0; i < c->ndrop_args; i++) {
		int n = slot_number(c->drop_args[i], NULL);

		if (n < 0)
			return die(SFS_EXIT_USAGE,
				   "%s: bad --drop-slot '%s': want a slot number from 0 to %d "
				   "(see sessionctl keys)",
				   c->argv0, c->drop_args[i], SFS_SLOTS_MAX - 1);
		if (seen[n])
			return die(SFS_EXIT_USAGE, "%s: key slot %d named twice", c->argv0, n);
		seen[n] = true;
	}
	return SFS_EXIT_OK;
}

/* The progress line's thread: what it watches and when to stop. */
struct progress {
	int topfd;	/* the store's sessions/ or archive/ holding the session; -1 none */
	const char *id; /* the session */
	struct sfs_session_usage total; /* its container before the rekey */
	atomic_bool stop;
	bool shown;
};

/*
 * The store directory holding session @c->t (hello's store path, then
 * sessions/ or archive/) into p->topfd, and the size of its container into
 * p->total; p->topfd -1 if the store cannot be read (no progress then).
 */
static void progress_open(const struct cmd *c, struct progress *p)
{
	char path[PATH_MAX];
	json_t *resp = NULL;
	int cfd;

	p->topfd = -1;
	if (call_any(c->mnt,
		     json_pack("{s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_HELLO)),
		     &resp) != SFS_EXIT_OK)
		return;
	if (json_string_value(json_object_get(resp, SFS_PROTO_F_STORE)) &&
	    (size_t)snprintf(path, sizeof(path), "%s/%s",
			     json_string_value(json_object_get(resp, SFS_PROTO_F_STORE)),
			     c->t.where) < sizeof(path))
		p->topfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	json_decref(resp);
	cfd = p->topfd >= 0 ? openat(p->topfd, c->t.id, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	if (cfd < 0 || sfs_store_session_usage(cfd, &p->total) < 0) {
		if (p->topfd >= 0)
			close(p->topfd);
		p->topfd = -1;
	}
	if (cfd >= 0)
		close(cfd);
}

/* The container being built for p->id: O_PATH descriptor, or -1 (none yet). */
static int building(const struct progress *p)
{
	char prefix[SFS_REKEY_NAME_MAX];
	int fd = openat(p->topfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), out = -1;
	size_t n = (size_t)snprintf(prefix, sizeof(prefix), "%s%s-", SFS_REKEY_PREFIX, p->id);
	struct dirent *de;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (out < 0 && (de = readdir(d)))
		if (strncmp(de->d_name, prefix, n) == 0)
			out = openat(p->topfd, de->d_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
	closedir(d);
	return out;
}

static void *progress_main(void *arg)
{
	struct progress *p = arg;
	const struct timespec tick = {0, 250 * 1000 * 1000};

	while (!atomic_load(&p->stop)) {
		struct sfs_session_usage u;
		int cfd;

		nanosleep(&tick, NULL);
		cfd = atomic_load(&p->stop) ? -1 : building(p);
		if (cfd < 0)
			continue;
		if (sfs_store_session_usage(cfd, &u) == 0 || u.nodes) {
			fprintf(stderr,
				"\rsessionctl: %s: re-keying: %llu of %llu nodes, %.1f of %.1f MiB "
				"  ",
				p->id, (unsigned long long)u.nodes,
				(unsigned long long)p->total.nodes, (double)u.bytes / (1 << 20),
				(double)p->total.bytes / (1 << 20));
			p->shown = true;
		}
		close(cfd);
	}
	return NULL;
}

/* The request: the proof, the secrets read so far, the slots to leave out. */
static json_t *request(const struct cmd *c, const struct sfs_password sec[SFS_SLOTS_MAX],
		       const bool drop[SFS_SLOTS_MAX])
{
	json_t *req =
		json_pack("{s:s, s:s, s:s%}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_REKEY),
			  SFS_PROTO_F_SESSION, c->t.id, SFS_PROTO_F_PASSWORD, c->pw.buf, c->pw.len);
	json_t *secrets = json_array(), *drops = json_array();

	for (int i = 0; i < SFS_SLOTS_MAX; i++) {
		if (sec[i].buf)
			json_array_append_new(secrets, json_pack("{s:i, s:s%}", SFS_PROTO_F_SLOT, i,
								 SFS_PROTO_F_SECRET, sec[i].buf,
								 sec[i].len));
		if (drop[i])
			json_array_append_new(drops, json_integer(i));
	}
	if (req && secrets && drops) {
		json_object_set_new(req, SFS_PROTO_F_SECRETS, secrets);
		json_object_set_new(req, SFS_PROTO_F_DROP, drops);
		return req;
	}
	json_decref(req);
	json_decref(secrets);
	json_decref(drops);
	return NULL;
}

/* Print what rekey did (@resp), on stdout as JSON or on stderr in words. */
static void report(const struct cmd *c, json_t *resp)
{
	json_t *w;
	size_t i;

	json_array_foreach(json_object_get(resp, SFS_PROTO_F_WARNINGS), i, w)
		fprintf(stderr, "sessionctl: warning: %s: %s\n", c->t.id, json_string_value(w));
	if (c->json) {
		json_object_del(resp, SFS_PROTO_F_OK);
		json_dumpf(resp, stdout, JSON_INDENT(2));
		putchar('\n');
		return;
	}
	fprintf(stderr, "sessionctl: %s: re-keyed: %lld files (%lld bytes) sealed under a new key",
		c->t.id, (long long)json_integer_value(json_object_get(resp, SFS_PROTO_F_NODES)),
		(long long)json_integer_value(json_object_get(resp, SFS_PROTO_F_BYTES)));
	fputs("; key slots kept:", stderr);
	json_array_foreach(json_object_get(resp, SFS_PROTO_F_KEPT), i, w)
		fprintf(stderr, " %lld", (long long)json_integer_value(w));
	if (json_array_size(json_object_get(resp, SFS_PROTO_F_DROPPED))) {
		fputs("; dropped:", stderr);
		json_array_foreach(json_object_get(resp, SFS_PROTO_F_DROPPED), i, w)
			fprintf(stderr, " %lld", (long long)json_integer_value(w));
	}
	fputc('\n', stderr);
}

/*
 * Send the request until it is done: a slot the daemon names as having no
 * secret is asked for on the terminal (once), then the request goes again.
 */
static int send_rekey(struct cmd *c, struct sfs_password sec[SFS_SLOTS_MAX],
		      const bool drop[SFS_SLOTS_MAX], json_t **out)
{
	bool asked[SFS_SLOTS_MAX] = {false};
	char what[96], prompt[96];
	json_t *resp;
	int rc;

	for (;;) {
		json_int_t slot;

		rc = call_any(c->mnt, request(c, sec, drop), &resp);
		if (rc)
			return rc;
		if (json_is_true(json_object_get(resp, SFS_PROTO_F_OK))) {
			*out = resp;
			return SFS_EXIT_OK;
		}
		slot = json_integer_value(json_object_get(resp, SFS_PROTO_F_SLOT));
		if (json_is_true(json_object_get(resp, SFS_PROTO_F_UNPROVEN)) && slot >= 0 &&
		    slot < SFS_SLOTS_MAX && !asked[slot] && !sec[slot].buf) {
			asked[slot] = true;
			snprintf(prompt, sizeof(prompt),
				 "Password or recovery key of key slot %d of %s: ", (int)slot,
				 c->t.id);
			if (sfs_password_read(&sec[slot], NULL, prompt, 0) == 0) {
				json_decref(resp);
				continue;
			}
		}
		if (json_object_get(resp, SFS_PROTO_F_SLOT))
			snprintf(what, sizeof(what), "cannot rekey %s: key slot %d", c->t.id,
				 (int)slot);
		else
			snprintf(what, sizeof(what), "cannot rekey %s", c->t.id);
		rc = fail_resp(resp, what);
		if (json_is_true(json_object_get(resp, SFS_PROTO_F_UNPROVEN)))
			fprintf(stderr,
				"sessionctl: give it with --secret-file %d=FILE, or leave the slot "
				"out with --drop-slot %d\n",
				(int)slot, (int)slot);
		json_decref(resp);
		return rc;
	}
}

int sfs_rekey_run(struct cmd *c)
{
	struct sfs_password *sec = sodium_malloc(SFS_SLOTS_MAX * sizeof(*sec));
	bool drop[SFS_SLOTS_MAX] = {false};
	struct progress p = {.topfd = -1, .id = c->t.id};
	bool threaded = false;
	json_t *resp = NULL;
	pthread_t th;
	int rc = sec ? SFS_EXIT_OK : die(SFS_EXIT_FAIL, "out of memory");

	if (!sec)
		return rc;
	memset(sec, 0, SFS_SLOTS_MAX * sizeof(*sec));
	for (int i = 0; rc == SFS_EXIT_OK && i < c->nsecret_args; i++) {
		const char *eq = strchr(c->secret_args[i], '=');
		int n = slot_number(c->secret_args[i], eq), e;

		e = sfs_password_read(&sec[n], eq + 1, NULL, 0);
		if (e < 0)
			rc = die(SFS_EXIT_CTL_BAD_PASSWORD,
				 "cannot read the secret of key slot %d from %s: %s", n, eq + 1,
				 e == -EINVAL ? "empty" : strerror(-e));
	}
	for (int i = 0; i < c->ndrop_args; i++)
		drop[slot_number(c->drop_args[i], NULL)] = true;
	if (rc == SFS_EXIT_OK && !c->json && isatty(STDERR_FILENO)) {
		progress_open(c, &p);
		threaded = pthread_create(&th, NULL, progress_main, &p) == 0;
	}
	if (rc == SFS_EXIT_OK)
		rc = send_rekey(c, sec, drop, &resp);
	if (threaded) {
		atomic_store(&p.stop, true);
		pthread_join(th, NULL);
		/* the line ends with what was done, whether a poll came in time or not */
		if (rc == SFS_EXIT_OK)
			fprintf(stderr,
				"\rsessionctl: %s: re-keying: %lld files, %.1f MiB, done   ",
				c->t.id,
				(long long)json_integer_value(
					json_object_get(resp, SFS_PROTO_F_NODES)),
				(double)json_integer_value(
					json_object_get(resp, SFS_PROTO_F_BYTES)) /
					(1 << 20));
		if (p.shown || rc == SFS_EXIT_OK)
			fputc('\n', stderr);
	}
	if (rc == SFS_EXIT_OK)
		report(c, resp);
	json_decref(resp);
	if (p.topfd >= 0)
		close(p.topfd);
	for (int i = 0; i < SFS_SLOTS_MAX; i++)
		sfs_password_free(&sec[i]);
	sodium_free(sec);
	return rc;
}
