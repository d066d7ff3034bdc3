/*
 * documents.c - what a session's JSON documents must be: an events.jsonl
 * line is one JSON object; a metadata.json is a JSON object whose "id" is
 * its session's, whose "created" stays, and whose members sessionfs writes
 * (created, updated, status, name, tags) have the types it writes; users'
 * own members are free. The rules only (jansson); who stores the
 * documents, and how, is not known here.
 */
#include "store.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

const char *const sfs_store_statuses[] = {"active", "paused", "completed", "failed", NULL};

bool sfs_store_status_known(const char *status)
{
	for (size_t i = 0; status && sfs_store_statuses[i]; i++)
		if (strcmp(status, sfs_store_statuses[i]) == 0)
			return true;
	return false;
}

/* Stack bytes for a line's parse: a typical 200-byte event needs about 2 KiB. */
#define LINE_ARENA 8192

bool sfs_store_event_line_ok(const char *line, size_t len)
{
	_Alignas(16) unsigned char buf[LINE_ARENA];
	struct sfs_json_arena a = {.buf = buf, .cap = sizeof(buf)};
	json_t *v;
	bool ok;

	sfs_store_json_arena(&a);
	v = json_loadb(line, len, 0, NULL);
	ok = json_is_object(v);
	json_decref(v);
	sfs_store_json_arena(NULL);
	sodium_memzero(buf, a.used);
	return ok;
}

/* A string member of @doc, or NULL. */
static const char *member(json_t *doc, const char *key)
{
	return json_string_value(json_object_get(doc, key));
}

static bool digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/*
 * Is @s a UTC time as sessionfs writes it, "2025-03-01T12:00:00Z"? A
 * fraction of a second (".123") and "+00:00" for "Z" are accepted too.
 */
static bool utc_time(const char *s)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d;
	size_t i = 19;

	if (strlen(s) < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
	    !digits(s + 8, 2) || s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' ||
	    !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
		return false;
	y = num(s, 4);
	mo = num(s + 5, 2);
	d = num(s + 8, 2);
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && (y % 4 != 0 || (y % 100 == 0 && y % 400 != 0))) ||
	    num(s + 11, 2) > 23 || num(s + 14, 2) > 59 || num(s + 17, 2) > 60)
		return false;
	if (s[i] == '.') {
		size_t j = ++i;

		while (s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == j)
			return false;
	}
	return strcmp(s + i, "Z") == 0 || strcmp(s + i, "+00:00") == 0;
}

bool sfs_store_utc_time_ok(const char *s)
{
	return s && utc_time(s);
}

/* Is @v an array of strings? */
static bool string_array(json_t *v)
{
	if (!json_is_array(v))
		return false;
	for (size_t i = 0; i < json_array_size(v); i++)
		if (!json_is_string(json_array_get(v, i)))
			return false;
	return true;
}

/*
 * Why member @key of @doc is not what sessionfs writes there, or NULL if it
 * is, is absent, or is what @prev (the document it replaces, or NULL) held:
 * a value an older build stored stays acceptable.
 */
static const char *bad_type(json_t *doc, json_t *prev, const char *key)
{
	json_t *v = json_object_get(doc, key);

	if (!v || (prev && json_equal(v, json_object_get(prev, key))))
		return NULL;
	if (strcmp(key, "created") == 0 || strcmp(key, "updated") == 0) {
		if (!json_is_string(v) || !utc_time(json_string_value(v)))
			return strcmp(key, "created") == 0
				       ? "\"created\" is not a UTC time (2025-03-01T12:00:00Z)"
				       : "\"updated\" is not a UTC time (2025-03-01T12:00:00Z)";
	} else if (strcmp(key, "tags") == 0) {
		if (!string_array(v))
			return "\"tags\" is not an array of strings";
	} else if (!json_is_string(v)) {
		return strcmp(key, "status") == 0 ? "\"status\" is not a string"
						  : "\"name\" is not a string";
	}
	return NULL;
}

const char *sfs_store_metadata_check(const char *id, const char *text, size_t len, const char *old,
				     size_t oldlen, int *line)
{
	static const char *const typed[] = {"created", "updated", "status", "name", "tags"};
	json_error_t err;
	json_t *doc = json_loadb(text, len, 0, &err), *prev = NULL;
	const char *why = NULL;

	*line = 0;
	if (old) {
		prev = json_loadb(old, oldlen, 0, NULL);
		if (!json_is_object(prev)) {
			json_decref(prev);
			prev = NULL; /* nothing readable to keep */
		}
	}
	if (!doc) {
		why = "not valid JSON";
		*line = err.line;
	} else if (!json_is_object(doc)) {
		why = "not a JSON object";
	} else if (!member(doc, "id") || strcmp(member(doc, "id"), id) != 0) {
		why = "\"id\" changed"; /* removed, or not the session's id string */
	} else if (prev && json_object_get(prev, "created") &&
		   !json_equal(json_object_get(prev, "created"), json_object_get(doc, "created"))) {
		why = "\"created\" changed"; /* or removed */
	}
	for (size_t i = 0; !why && i < sizeof(typed) / sizeof(typed[0]); i++)
		why = bad_type(doc, prev, typed[i]);
	json_decref(prev);
	json_decref(doc);
	return why;
}
