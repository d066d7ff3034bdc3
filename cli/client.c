/*
 * client.c - sessionctl's requests: one JSON request written to a proven
 * mount's control file, its JSON response read back, a failed response's
 * code turned into an exit code (lib/proto.h).
 *
 * The request, which may hold passwords, is serialised into sodium_malloc
 * memory and wiped; the response, which may hold a recovery key, is wiped
 * before it is freed. Knows nothing of what the ops mean.
 */
#include "sessionctl.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESPONSE_MAX (4 << 20)

/* One request/response over the control file; the response or NULL (exit code in *code). */
static json_t *transact(const struct mount *m, json_t *req, int *code)
{
	size_t n = json_dumpb(req, NULL, 0, JSON_COMPACT);
	char *buf = sodium_malloc(n ? n : 1), *resp = NULL;
	size_t got = 0;
	json_t *out = NULL;
	int fd = ctl_open(m);

	*code = SFS_EXIT_FAIL;
	if (fd < 0) {
		*code = -fd;
		goto out;
	}
	if (!buf) {
		die(SFS_EXIT_FAIL, "out of memory");
		goto out;
	}
	json_dumpb(req, buf, n, JSON_COMPACT);
	if (write(fd, buf, n) != (ssize_t)n) {
		die(SFS_EXIT_FAIL, "cannot talk to the sessionfs daemon at %s: %s", m->arg,
		    strerror(errno));
		goto out;
	}
	resp = malloc(RESPONSE_MAX);
	while (resp && got < RESPONSE_MAX) {
		ssize_t r = read(fd, resp + got, RESPONSE_MAX - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	out = resp ? json_loadb(resp, got, 0, NULL) : NULL;
	if (!json_is_object(out)) {
		die(SFS_EXIT_FAIL, "bad answer from the sessionfs daemon at %s", m->arg);
		json_decref(out);
		out = NULL;
	}
out:
	if (buf) {
		sodium_memzero(buf, n);
		sodium_free(buf);
	}
	/* a response may hold a secret: a recovery key, a session's plaintext (report) */
	if (resp) {
		sodium_memzero(resp, got);
		free(resp);
	}
	if (fd >= 0)
		close(fd);
	return out;
}

/* Exit code of a failed response (lib/proto.h), after printing "what: why". */
int fail_resp(json_t *resp, const char *what)
{
	const char *code = json_string_value(json_object_get(resp, SFS_PROTO_F_CODE));
	const char *err = json_string_value(json_object_get(resp, SFS_PROTO_F_ERROR));

	return die(sfs_proto_err_exit(sfs_proto_err_find(code)), "%s: %s", what,
		   err ? err : "failed");
}

/* Send @req (consumed) and check success; 0 with *resp, or an exit code. */
int call(const struct mount *m, json_t *req, const char *what, json_t **resp)
{
	int code;
	json_t *r = req ? transact(m, req, &code) : NULL;

	json_decref(req);
	if (!req)
		return die(SFS_EXIT_FAIL, "out of memory");
	if (!r)
		return code;
	if (!json_is_true(json_object_get(r, SFS_PROTO_F_OK))) {
		code = fail_resp(r, what);
		json_decref(r);
		return code;
	}
	if (resp)
		*resp = r;
	else
		json_decref(r);
	return SFS_EXIT_OK;
}

/* call() on the mount at @mnt, proven right before the request goes; consumes @req. */
int call_at(const char *mnt, json_t *req, const char *what, json_t **resp)
{
	struct mount m;
	int rc = mount_open(mnt, &m);

	if (rc) {
		json_decref(req);
		return rc;
	}
	rc = call(&m, req, what, resp);
	mount_close(&m);
	return rc;
}

int call_any(const char *mnt, json_t *req, json_t **resp)
{
	struct mount m;
	int code, rc = req ? mount_open(mnt, &m) : die(SFS_EXIT_FAIL, "out of memory");

	*resp = NULL;
	if (rc == 0) {
		*resp = transact(&m, req, &code);
		mount_close(&m);
		rc = *resp ? SFS_EXIT_OK : code;
	}
	json_decref(req);
	return rc;
}
