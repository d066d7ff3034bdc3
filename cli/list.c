/*
 * list.c - sessionctl list: every session of a mount, sorted and filtered,
 * as a table or one JSON array (doc/sessionctl.1 names its fields).
 *
 * The daemon answers with every session: what the store tells of each
 * without a password (where, locked, size, last change), and for unlocked
 * ones what their metadata.json and event log say. Sorting and filters are
 * done here, over that answer; prune (prune.c) selects from the same list.
 * Knows the protocol's words (lib/proto.h); nothing of crypto or the store
 * format.
 */
#include "sessionctl.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *get_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static long long get_int(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

int sfs_list_fetch(const struct mount *m, json_t **arr)
{
	json_t *resp;
	int rc;

	*arr = NULL;
	rc = call(m, json_pack("{s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_LIST)),
		  "cannot list sessions", &resp);
	if (rc)
		return rc;
	*arr = json_incref(json_object_get(resp, SFS_PROTO_F_SESSIONS));
	json_decref(resp);
	if (!json_is_array(*arr)) {
		json_decref(*arr);
		*arr = NULL;
		return die(SFS_EXIT_FAIL, "cannot list sessions: the daemon's answer has no list");
	}
	return SFS_EXIT_OK;
}

/* The sort keys: each orders two sessions, ties broken by id. */
static int by_id(const void *a, const void *b)
{
	const char *x = get_str(*(json_t *const *)a, SFS_PROTO_F_ID);
	const char *y = get_str(*(json_t *const *)b, SFS_PROTO_F_ID);

	return strcmp(x ? x : "", y ? y : "");
}

/* Larger first; a session without @key after every one with it. */
static int larger_first(json_t *a, json_t *b, const char *key)
{
	json_t *x = json_object_get(a, key), *y = json_object_get(b, key);
	long long vx = (long long)json_integer_value(x), vy = (long long)json_integer_value(y);

	if (!json_is_integer(x) || !json_is_integer(y))
		return json_is_integer(x) ? -1 : json_is_integer(y) ? 1 : 0;
	return vx > vy ? -1 : vx < vy ? 1 : 0;
}

static int by_updated(const void *a, const void *b)
{
	int r = larger_first(*(json_t *const *)a, *(json_t *const *)b, SFS_PROTO_F_CHANGED_NS);

	return r ? r : by_id(a, b);
}

static int by_size(const void *a, const void *b)
{
	int r = larger_first(*(json_t *const *)a, *(json_t *const *)b, SFS_PROTO_F_SIZE);

	return r ? r : by_id(a, b);
}

/* Newest "created" first (UTC ISO-8601 strings compare as times); unknown (locked) last. */
static int by_created(const void *a, const void *b)
{
	const char *x = get_str(*(json_t *const *)a, SFS_PROTO_F_CREATED);
	const char *y = get_str(*(json_t *const *)b, SFS_PROTO_F_CREATED);
	int r;

	if (!x || !y)
		r = x ? -1 : y ? 1 : 0;
	else
		r = -strcmp(x, y);
	return r ? r : by_id(a, b);
}

static const struct {
	const char *name;
	int (*cmp)(const void *, const void *);
} sorts[] = {
	{"updated", by_updated},
	{"id", by_id},
	{"created", by_created},
	{"size", by_size},
};

void sfs_list_sort(json_t *arr, const char *key)
{
	size_t n = json_array_size(arr);
	json_t **v;

	if (n < 2)
		return;
	v = malloc(n * sizeof(*v));
	if (!v)
		return; /* left in the daemon's order */
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	for (size_t i = 0; i < sizeof(sorts) / sizeof(sorts[0]); i++)
		if (strcmp(key ? key : "updated", sorts[i].name) == 0)
			qsort(v, n, sizeof(*v), sorts[i].cmp);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
}

int sfs_list_check(struct cmd *c)
{
	bool known = !c->sort;

	for (size_t i = 0; c->sort && i < sizeof(sorts) / sizeof(sorts[0]); i++)
		known |= strcmp(c->sort, sorts[i].name) == 0;
	if (!known)
		return die(SFS_EXIT_USAGE,
			   "%s: unknown --sort '%s': want id, created, updated or size", c->argv0,
			   c->sort);
	if (c->locked && c->unlocked)
		return die(SFS_EXIT_USAGE, "%s: --locked and --unlocked exclude each other",
			   c->argv0);
	if (c->status && !c->status[0])
		return die(SFS_EXIT_USAGE, "%s: --status wants a status", c->argv0);
	return SFS_EXIT_OK;
}

/* Does session @s pass list's filters? */
static bool wanted(const struct cmd *c, json_t *s)
{
	bool locked = json_is_true(json_object_get(s, SFS_PROTO_F_LOCKED));
	const char *where = get_str(s, SFS_PROTO_F_WHERE), *st = get_str(s, SFS_PROTO_F_STATUS);

	if (c->archived && (!where || strcmp(where, SFS_ARCHIVE_DIR) != 0))
		return false;
	if ((c->locked && !locked) || (c->unlocked && locked))
		return false;
	/* A locked session's status is encrypted: it matches no --status. */
	return !c->status || (st && strcmp(st, c->status) == 0);
}

/* @n bytes for people: 512, 1.5K, 20.0M, 3.1G (powers of 1024). */
static void human(char *buf, size_t len, long long n)
{
	static const char units[] = "KMGTP";
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, len, "%lld", n);
		return;
	}
	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	snprintf(buf, len, "%.1f%c", v, units[u]);
}

/* list's table: one line per session, and its damage on stderr. */
static void print_table(json_t *arr)
{
	/* STATE is wide enough for "unlocked elsewhere" only when a row says so. */
	int sw = 8;
	json_t *s;
	size_t i;

	json_array_foreach(arr, i, s)
	{
		if (json_is_true(json_object_get(s, SFS_PROTO_F_UNLOCKED_ELSEWHERE)))
			sw = 18;
	}
	printf("%-20s %-8s %-*s %-9s %-20s %-20s %7s %8s %10s  %s\n", "ID", "WHERE", sw, "STATE",
	       "STATUS", "CREATED", "CHANGED", "SIZE", "EVENTS", "LOG", "NAME");
	json_array_foreach(arr, i, s)
	{
		const char *st = get_str(s, SFS_PROTO_F_STATUS);
		const char *cr = get_str(s, SFS_PROTO_F_CREATED);
		const char *ch = get_str(s, SFS_PROTO_F_CHANGED);
		const char *nm = get_str(s, SFS_PROTO_F_NAME);
		json_t *ev = json_object_get(s, SFS_PROTO_F_EVENTS);
		json_t *lg = json_object_get(s, SFS_PROTO_F_EVENTS_BYTES);
		json_t *sz = json_object_get(s, SFS_PROTO_F_SIZE);
		json_t *dmg = json_object_get(s, SFS_PROTO_F_DAMAGED), *d;
		const char *state = json_array_size(dmg) ? "damaged" : "unlocked";
		char evs[24] = "-", lgs[24] = "-", szs[24] = "-";
		size_t j;

		if (json_is_integer(ev))
			snprintf(evs, sizeof(evs), "%lld", (long long)json_integer_value(ev));
		if (json_is_integer(lg))
			snprintf(lgs, sizeof(lgs), "%lld", (long long)json_integer_value(lg));
		if (json_is_integer(sz))
			human(szs, sizeof(szs), get_int(s, SFS_PROTO_F_SIZE));
		if (json_is_true(json_object_get(s, SFS_PROTO_F_UNLOCKED_ELSEWHERE)))
			state = "unlocked elsewhere";
		else if (json_is_true(json_object_get(s, SFS_PROTO_F_LOCKED)))
			state = "locked";
		printf("%-20s %-8s %-*s %-9s %-20s %-20s %7s %8s %10s  %s\n",
		       get_str(s, SFS_PROTO_F_ID), get_str(s, SFS_PROTO_F_WHERE), sw, state,
		       st ? st : "-", cr ? cr : "-", ch ? ch : "-", szs, evs, lgs, nm ? nm : "");
		/* What is damaged, beside the table (the table stays one line each). */
		json_array_foreach(dmg, j, d)
			fprintf(stderr, "sessionctl: warning: %s: %s: damaged: %s\n",
				get_str(s, SFS_PROTO_F_ID), get_str(d, SFS_PROTO_F_FILE),
				get_str(d, SFS_PROTO_F_WHAT));
	}
}

int sfs_list_run(struct cmd *c)
{
	json_t *arr, *out;
	size_t i;
	json_t *s;
	int rc;

	/*
	 * status, name, created and updated come with the reply: the daemon
	 * reads them, as reading metadata.json through the mount would count as
	 * a use of the session and hold off its idle_lock.
	 */
	rc = sfs_list_fetch(&c->m, &arr);
	mount_close(&c->m);
	if (rc)
		return rc;
	out = json_array();
	json_array_foreach(arr, i, s)
	{
		if (wanted(c, s))
			json_array_append(out, s);
	}
	json_decref(arr);
	if (!out)
		return die(SFS_EXIT_FAIL, "cannot list sessions: out of memory");
	sfs_list_sort(out, c->sort);
	if (c->json) {
		char *text = json_dumps(out, JSON_INDENT(2));
		json_free_t f;

		if (text)
			printf("%s\n", text);
		/* json_dumps allocates through jansson's allocator: free it there. */
		json_get_alloc_funcs(NULL, &f);
		f(text);
	} else {
		print_table(out);
	}
	json_decref(out);
	return SFS_EXIT_OK;
}
