/*
 * fuzz_rules.c - a session's redaction rule file (lib/rules.c):
 * sfs_rules_parse (header, version, length, authentication, then the JSON
 * document's rules: names, patterns compiled, duplicates) and what is done
 * with opened rules (sfs_rules_apply to event lines, set, remove, pack).
 *
 * Input: mode byte; even: the file as stored, raw; odd: a fuzzer-chosen
 * plaintext (any bytes, a JSON document or not) sealed with the fixed keys
 * under a correct header, so every check of the document is reached. Then
 * a chunk of event lines to apply the rules to. Oracles: opened rules pack
 * and parse back to the same names, patterns and flags; applying them
 * leaves as many lines as it was given.
 */
#include "fuzz.h"
#include "rules.h"

static size_t lines_of(const char *p, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += p[i] == '\n';
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	static unsigned char file[SFS_RULES_FILE_MAX + 64];
	struct fz f = {data, size};
	struct sfs_rules r, back;
	unsigned char *packed;
	const uint8_t *p;
	size_t n, len, outlen;
	uint64_t count;
	char *out, err[128];

	if (fz_u8(&f) & 1) {
		p = fz_chunk(&f, 8192, &n);
		memcpy(file, SFS_RULES_MAGIC, 4);
		file[4] = SFS_RULES_VERSION;
		file[5] = file[6] = file[7] = 0;
		sfs_crypto_seal(file + SFS_RULES_HDR, p, n, file, SFS_RULES_HDR, keys->content);
		len = SFS_RULES_HDR + n + SFS_SEAL_OVERHEAD;
	} else {
		p = fz_chunk(&f, sizeof(file), &len);
		memcpy(file, p, len);
	}
	if (sfs_rules_parse(file, len, keys, &r) != 0)
		return 0;
	FZ_ASSERT(r.n <= SFS_RULES_MAX);
	FZ_ASSERT(sfs_rules_pack(&r, keys, &packed, &n) == 0);
	FZ_ASSERT(sfs_rules_parse(packed, n, keys, &back) == 0);
	FZ_ASSERT(back.n == r.n);
	for (size_t i = 0; i < r.n; i++)
		FZ_ASSERT(strcmp(back.r[i].name, r.r[i].name) == 0 &&
			  strcmp(back.r[i].pattern, r.r[i].pattern) == 0 &&
			  back.r[i].builtin == r.r[i].builtin);
	free(packed);
	sfs_rules_free(&back);
	p = fz_chunk(&f, 4096, &n);
	if (sfs_rules_apply(&r, (const char *)p, n, &out, &outlen, &count) == 0 && out) {
		FZ_ASSERT(count > 0);
		FZ_ASSERT(lines_of(out, outlen) == lines_of((const char *)p, n));
		free(out);
	}
	if (r.n)
		FZ_ASSERT(sfs_rules_remove(&r, r.r[0].name) == 0);
	(void)sfs_rules_set(&r, "x", "a+", false, err, sizeof(err));
	sfs_rules_free(&r);
	return 0;
}

static void seeds(void)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	static struct fz_out o;
	struct sfs_rules r = {0};
	unsigned char *packed;
	size_t n;
	char err[128];
	static const char *const docs[] = {
		"{\"rules\":[]}",
		"{\"rules\":[{\"name\":\"pw\",\"pattern\":\"hunter[0-9]+\",\"builtin\":false}]}",
		("{\"rules\":[{\"name\":\"a\",\"pattern\":\"x\",\"builtin\":false},"
		 "{\"name\":\"a\",\"pattern\":\"y\",\"builtin\":false}]}"),
		"{\"rules\":[{\"name\":\"bad\",\"pattern\":\"a(\",\"builtin\":true}]}",
	};
	static const char lines[] = "{\"t\":\"AKIAIOSFODNN7EXAMPLE hunter22\"}\n{\"n\":1}\n";

	for (const struct sfs_rule_builtin *b = sfs_rules_builtins; b->name; b++)
		if (sfs_rules_set(&r, b->name, b->pattern, true, err, sizeof(err)) != 0)
			abort();
	if (sfs_rules_set(&r, "pw", "hunter[0-9]+", false, err, sizeof(err)) != 0 ||
	    sfs_rules_pack(&r, keys, &packed, &n) != 0)
		abort();
	fz_put8(&o, 0);
	fz_put_chunk(&o, packed, n);
	fz_put_chunk(&o, lines, sizeof(lines) - 1);
	fz_seed_done(&o);
	free(packed);
	sfs_rules_free(&r);
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		fz_put8(&o, 1);
		fz_put_chunk(&o, docs[i], strlen(docs[i]));
		fz_put_chunk(&o, lines, sizeof(lines) - 1);
		fz_seed_done(&o);
	}
}
