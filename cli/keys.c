/*
 * keys.c - sessionctl's key slot commands: `keys` (list a session's slots)
 * and the slot forms of `passwd`: --add [--label TEXT], --remove N,
 * --add-recovery-key; and the recovery key that `new --recovery-key`
 * prints.
 *
 * The daemon does the work (ops keys, add_password, add_recovery_key,
 * remove_slot, doc/control.md); a recovery key comes back in the response
 * and goes to standard output only, once. Knows the protocol's words;
 * nothing of crypto or the key file's layout.
 */
#include "sessionctl.h"
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sfs_slot_check(struct cmd *c)
{
	int forms = c->add + c->add_recovery + (c->remove_arg != NULL);
	char *end;

	if (forms > 1)
		return die(SFS_EXIT_USAGE,
			   "%s: --add, --remove and --add-recovery-key exclude each other",
			   c->argv0);
	if (c->label && !c->add && !c->add_recovery)
		return die(SFS_EXIT_USAGE, "%s: --label goes with --add or --add-recovery-key",
			   c->argv0);
	if (c->label && !sfs_slot_label_ok(c->label, strlen(c->label)))
		return die(SFS_EXIT_USAGE,
			   "%s: bad --label: want 1 to %d bytes without control characters",
			   c->argv0, SFS_SLOT_LABEL_MAX);
	if (c->remove_arg) {
		errno = 0;
		c->remove_slot = strtol(c->remove_arg, &end, 10);
		if (errno || end == c->remove_arg || *end || c->remove_slot < 0 ||
		    c->remove_slot >= SFS_SLOTS_MAX)
			return die(SFS_EXIT_USAGE,
				   "%s: bad --remove '%s': want a slot number from 0 to %d "
				   "(see sessionctl keys)",
				   c->argv0, c->remove_arg, SFS_SLOTS_MAX - 1);
	}
	/* Removing a slot or adding a recovery key asks no new password. */
	c->no_new_password = c->remove_arg || c->add_recovery;
	return SFS_EXIT_OK;
}

/* @len bytes of @buf to standard output, unbuffered: 0 or -1 (errno). */
static int write_out(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(STDOUT_FILENO, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Print a recovery key the daemon made: on standard output, and what it is on stderr. */
void sfs_slot_print_recovery(json_t *resp, const char *id)
{
	const char *key = json_string_value(json_object_get(resp, SFS_PROTO_F_RECOVERY_KEY));

	if (!key)
		return;
	/* past stdio, whose buffer is never wiped: the key goes out once and only here */
	fflush(stdout);
	if (write_out(key, strlen(key)) < 0 || write_out("\n", 1) < 0)
		fprintf(stderr, "sessionctl: %s: cannot write the recovery key: %s\n", id,
			strerror(errno));
	fprintf(stderr,
		"sessionctl: %s: recovery key in key slot %lld, shown only this once: keep it "
		"somewhere safe; it opens the session wherever a password does\n",
		id, (long long)json_integer_value(json_object_get(resp, SFS_PROTO_F_SLOT)));
}

int sfs_slot_run(struct cmd *c)
{
	enum sfs_proto_op op = c->add		 ? SFS_PROTO_OP_ADD_PASSWORD
			       : c->add_recovery ? SFS_PROTO_OP_ADD_RECOVERY_KEY
						 : SFS_PROTO_OP_REMOVE_SLOT;
	char what[96];
	json_t *req, *resp;
	int rc;

	req = json_pack("{s:s, s:s, s:s%}", SFS_PROTO_F_OP, sfs_proto_op_name(op),
			SFS_PROTO_F_SESSION, c->t.id, SFS_PROTO_F_PASSWORD, c->pw.buf, c->pw.len);
	if (req && op == SFS_PROTO_OP_ADD_PASSWORD)
		json_object_set_new(req, SFS_PROTO_F_NEW_PASSWORD,
				    json_stringn(c->newpw.buf, c->newpw.len));
	if (req && op == SFS_PROTO_OP_REMOVE_SLOT)
		json_object_set_new(req, SFS_PROTO_F_SLOT, json_integer(c->remove_slot));
	if (req && c->label)
		json_object_set_new(req, SFS_PROTO_F_LABEL, json_string(c->label));
	sfs_password_free(&c->pw);
	sfs_password_free(&c->newpw);
	if (op == SFS_PROTO_OP_REMOVE_SLOT)
		snprintf(what, sizeof(what), "cannot remove key slot %ld of %s", c->remove_slot,
			 c->t.id);
	else
		snprintf(what, sizeof(what), "cannot add a key slot to %s", c->t.id);
	rc = call_at(c->mnt, req, what, &resp);
	if (rc)
		return rc;
	if (op == SFS_PROTO_OP_ADD_RECOVERY_KEY)
		sfs_slot_print_recovery(resp, c->t.id);
	else if (op == SFS_PROTO_OP_ADD_PASSWORD)
		fprintf(stderr, "sessionctl: %s: password added as key slot %lld\n", c->t.id,
			(long long)json_integer_value(json_object_get(resp, SFS_PROTO_F_SLOT)));
	else
		fprintf(stderr, "sessionctl: %s: key slot %ld removed\n", c->t.id, c->remove_slot);
	json_decref(resp);
	return SFS_EXIT_OK;
}

/* One slot as a line of `keys`. */
static void print_slot(json_t *o)
{
	const char *kind = json_string_value(json_object_get(o, SFS_PROTO_F_KIND));
	const char *kdf = json_string_value(json_object_get(o, SFS_PROTO_F_KDF));
	const char *added = json_string_value(json_object_get(o, SFS_PROTO_F_ADDED));
	const char *label = json_string_value(json_object_get(o, SFS_PROTO_F_LABEL));
	char cost[64] = "-";

	if (kdf)
		snprintf(cost, sizeof(cost), "%s (ops %lld, %lld MiB)", kdf,
			 (long long)json_integer_value(json_object_get(o, SFS_PROTO_F_OPSLIMIT)),
			 (long long)json_integer_value(json_object_get(o, SFS_PROTO_F_MEMLIMIT)) >>
				 20);
	printf("%-4lld  %-12s  %-30s  %-20s  %s\n",
	       (long long)json_integer_value(json_object_get(o, SFS_PROTO_F_INDEX)),
	       kind ? kind : "?", cost, added ? added : "-",
	       json_is_true(json_object_get(o, SFS_PROTO_F_LABEL_SEALED))
		       ? "(sealed: unlock to see)"
	       : label ? label
		       : "-");
}

int sfs_keys_run(struct cmd *c)
{
	char what[64];
	json_t *resp, *o;
	size_t i;
	int rc;

	mount_close(&c->m);
	snprintf(what, sizeof(what), "cannot list the key slots of %s", c->t.id);
	rc = call_at(c->mnt,
		     json_pack("{s:s, s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_KEYS),
			       SFS_PROTO_F_SESSION, c->t.id),
		     what, &resp);
	if (rc)
		return rc;
	if (c->json) {
		json_object_del(resp, SFS_PROTO_F_OK);
		json_dumpf(resp, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		printf("%s: key file version %lld, cipher %s\n", c->t.id,
		       (long long)json_integer_value(json_object_get(resp, SFS_PROTO_F_FORMAT)),
		       json_string_value(json_object_get(resp, SFS_PROTO_F_CIPHER)));
		printf("%-4s  %-12s  %-30s  %-20s  %s\n", "SLOT", "KIND", "KDF", "ADDED", "LABEL");
		json_array_foreach(json_object_get(resp, SFS_PROTO_F_SLOTS), i, o) print_slot(o);
	}
	json_decref(resp);
	return SFS_EXIT_OK;
}
