/*
 * documents.c - what a session's JSON documents must be: an events.jsonl
 * line is one JSON object; a metadata.json is a JSON object whose "id" is
 * its session's and whose "created" stays. The rules only (jansson); who
 * stores the documents, and how, is not known here.
 */
#include "store.h"

#include <jansson.h>
#include <malloc.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* jansson's free: wipe the whole block (its usable size: jansson passes none). */
static void wipe_free(void *p)
{
	if (!p)
		return;
	sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

void sfs_store_json_wipe(void)
{
	json_set_alloc_funcs(malloc, wipe_free);
}

bool sfs_store_event_line_ok(const char *line, size_t len)
{
	json_t *v = json_loadb(line, len, 0, NULL);
	bool ok = json_is_object(v);

	json_decref(v);
	return ok;
}

/* A string member of @doc, or NULL. */
static const char *member(json_t *doc, const char *key)
{
	return json_string_value(json_object_get(doc, key));
}

const char *sfs_store_metadata_check(const char *id, const char *text, size_t len,
				     const char *old, size_t oldlen, int *line)
{
	json_error_t err;
	json_t *doc = json_loadb(text, len, 0, &err), *prev;
	const char *why = NULL;

	*line = 0;
	if (!doc) {
		why = "not valid JSON";
		*line = err.line;
	} else if (!json_is_object(doc)) {
		why = "not a JSON object";
	} else if (!member(doc, "id") || strcmp(member(doc, "id"), id) != 0) {
		why = "\"id\" changed";
	} else if (old && (prev = json_loadb(old, oldlen, 0, NULL)) != NULL) {
		const char *was = member(prev, "created"), *now = member(doc, "created");

		if (was && (!now || strcmp(was, now) != 0))
			why = "\"created\" changed";
		json_decref(prev);
	}
	json_decref(doc);
	return why;
}
