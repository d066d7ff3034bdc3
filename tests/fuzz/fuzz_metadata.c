/*
 * fuzz_metadata.c - the JSON rules of a session's documents: a
 * metadata.json replacing another (sfs_store_metadata_check), what `list`
 * shows of it (sfs_store_metadata_summary), its "updated" refresh
 * (sfs_store_metadata_set_updated), and one events.jsonl line
 * (sfs_store_event_line_ok). The bytes are what a session's files hold
 * once decrypted, or what a user writes to them.
 *
 * Input: a chunk (the new document), a chunk (the old one, or none), the
 * rest (an event line). Oracles: a document the check accepts keeps the
 * old "created", and its "updated" refresh is accepted too.
 */
#include "fuzz.h"
#include "store.h"

#include <errno.h>
#include <jansson.h>

#define ID "INC-0001"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	const uint8_t *text, *old;
	size_t len, oldlen;
	const char *why;
	json_t *sum;
	char *upd;
	int line, rc;

	text = fz_chunk(&f, 16384, &len);
	old = fz_chunk(&f, 16384, &oldlen);
	why = sfs_store_metadata_check(ID, (const char *)text, len,
				       oldlen ? (const char *)old : NULL, oldlen, &line);
	rc = sfs_store_metadata_summary((const char *)text, len, &sum);
	/* a JSON object or not (damage); -ENOMEM only when an allocation fails */
	FZ_ASSERT(rc == 0 || rc == -EINVAL);
	FZ_ASSERT((rc == 0) == (sum != NULL));
	json_decref(sum);
	upd = sfs_store_metadata_set_updated((const char *)text, len, "2026-01-02T03:04:05Z");
	if (!why) {
		/* A valid document stays valid when sessionfs refreshes "updated". */
		FZ_ASSERT(upd);
		FZ_ASSERT(!sfs_store_metadata_check(
			ID, upd, strlen(upd), oldlen ? (const char *)old : NULL, oldlen, &line));
	}
	free(upd);
	(void)sfs_store_event_line_ok((const char *)f.p, f.n);
	return 0;
}

static void seeds(void)
{
	static struct fz_out o;
	char *doc = sfs_store_metadata_new(ID, "disk full on db-2"), *upd;

	if (!doc)
		abort();
	upd = sfs_store_metadata_set_updated(doc, strlen(doc), "2026-01-02T03:04:05.5+00:00");
	if (!upd)
		abort();
	fz_put_chunk(&o, upd, strlen(upd));
	fz_put_chunk(&o, doc, strlen(doc));
	fz_put(&o, "{\"t\":\"2026-01-02T03:04:05Z\",\"msg\":\"restart\"}", 45);
	fz_seed_done(&o);
	fz_put_chunk(&o, doc, strlen(doc));
	fz_put_chunk(&o, "", 0);
	fz_put(&o, "[1,2]", 5);
	fz_seed_done(&o);
	static const char *odd = "{\"id\":\"INC-0001\",\"created\":\"2025-02-29T12:00:00Z\","
				 "\"tags\":[\"a\",1],\"status\":null,\"x\":{\"y\":[]}}";
	fz_put_chunk(&o, odd, strlen(odd));
	fz_put_chunk(&o, doc, strlen(doc));
	fz_seed_done(&o);
	free(doc);
	free(upd);
}
