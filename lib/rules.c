/*
 * rules.c - a session's redaction rules and their sealed store; see
 * rules.h and doc/format.md ("Redaction rules").
 */
#include "rules.h"
#include "redact.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct sfs_rule_builtin sfs_rules_builtins[] = {
	{"aws-access-key-id", "(AKIA|ASIA)[A-Z0-9]{16}", "AWS access key ids (AKIA..., ASIA...)"},
	{"github-token", "(ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,}",
	 "GitHub tokens (ghp_, gho_, ghs_, ghu_, ghr_, github_pat_)"},
	{"slack-token", "xox[abprs]-[A-Za-z0-9-]{10,}", "Slack tokens (xoxa-, xoxb-, xoxp-, ...)"},
	{"private-key",
	 "-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----([^-]|\n)*-----END [A-Z0-9 ]*PRIVATE KEY-----",
	 "PEM private key blocks (-----BEGIN ... PRIVATE KEY----- to its END line)"},
	{NULL, NULL, NULL},
};

const struct sfs_rule_builtin *sfs_rules_builtin(const char *name)
{
	for (const struct sfs_rule_builtin *b = sfs_rules_builtins; b->name; b++)
		if (strcmp(b->name, name) == 0)
			return b;
	return NULL;
}

bool sfs_rule_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > SFS_RULE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static void rule_free(struct sfs_rule *x)
{
	if (x->pattern) {
		sodium_memzero(x->pattern, strlen(x->pattern));
		free(x->pattern);
		regfree(&x->re);
	}
	memset(x, 0, sizeof(*x));
}

int sfs_rules_set(struct sfs_rules *r, const char *name, const char *pattern, bool builtin,
		  char *err, size_t errsz)
{
	struct sfs_rule x = {.builtin = builtin};
	size_t i;
	int rc;

	if (!sfs_rule_name_valid(name)) {
		snprintf(err, errsz, "a rule name is 1 to %d of A-Z a-z 0-9 . _ -",
			 SFS_RULE_NAME_MAX);
		return -EINVAL;
	}
	if (strlen(pattern) > SFS_RULE_PATTERN_MAX) {
		snprintf(err, errsz, "a rule's pattern is at most %d bytes", SFS_RULE_PATTERN_MAX);
		return -EINVAL;
	}
	for (i = 0; i < r->n && strcmp(r->r[i].name, name) != 0; i++)
		;
	if (i == r->n && r->n == SFS_RULES_MAX) {
		snprintf(err, errsz, "a session has at most %d rules", SFS_RULES_MAX);
		return -ENOSPC;
	}
	rc = sfs_redact_compile(&x.re, pattern, err, errsz);
	if (rc < 0)
		return rc;
	x.pattern = strdup(pattern);
	if (!x.pattern) {
		regfree(&x.re);
		return -ENOMEM;
	}
	snprintf(x.name, sizeof(x.name), "%s", name);
	if (i < r->n)
		rule_free(&r->r[i]);
	else
		r->n++;
	r->r[i] = x;
	return 0;
}

int sfs_rules_remove(struct sfs_rules *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->r[i].name, name) != 0)
			continue;
		rule_free(&r->r[i]);
		memmove(&r->r[i], &r->r[i + 1], (r->n - i - 1) * sizeof(r->r[0]));
		r->n--;
		memset(&r->r[r->n], 0, sizeof(r->r[0]));
		return 0;
	}
	return -ENOENT;
}

void sfs_rules_free(struct sfs_rules *r)
{
	for (size_t i = 0; i < r->n; i++)
		rule_free(&r->r[i]);
	r->n = 0;
}

static void header(unsigned char h[SFS_RULES_HDR])
{
	memset(h, 0, SFS_RULES_HDR);
	memcpy(h, SFS_RULES_MAGIC, 4);
	h[4] = SFS_RULES_VERSION;
}

int sfs_rules_pack(const struct sfs_rules *r, const struct sfs_keys *keys, unsigned char **out,
		   size_t *len)
{
	json_t *doc = json_pack("{s:[]}", "rules"), *arr = json_object_get(doc, "rules");
	size_t plen;
	char *plain;
	int rc = doc ? 0 : -ENOMEM;

	*out = NULL;
	for (size_t i = 0; rc == 0 && i < r->n; i++)
		if (json_array_append_new(arr, json_pack("{s:s, s:s, s:b}", "name", r->r[i].name,
							 "pattern", r->r[i].pattern, "builtin",
							 r->r[i].builtin)) < 0)
			rc = -ENOMEM;
	plen = rc == 0 ? json_dumpb(doc, NULL, 0, JSON_COMPACT) : 0;
	plain = plen ? malloc(plen) : NULL;
	*out = plain ? malloc(SFS_RULES_HDR + plen + SFS_SEAL_OVERHEAD) : NULL;
	if (rc == 0 && (!plain || !*out))
		rc = -ENOMEM;
	if (rc == 0) {
		json_dumpb(doc, plain, plen, JSON_COMPACT);
		header(*out);
		sfs_crypto_seal(*out + SFS_RULES_HDR, (unsigned char *)plain, plen, *out,
				SFS_RULES_HDR, keys->content);
		*len = SFS_RULES_HDR + plen + SFS_SEAL_OVERHEAD;
	} else {
		free(*out);
		*out = NULL;
	}
	if (plain) {
		sodium_memzero(plain, plen);
		free(plain);
	}
	json_decref(doc);
	return rc;
}

/* The rules of document @doc into empty @r: 0 or -EBADMSG. */
static int from_json(json_t *doc, struct sfs_rules *r)
{
	json_t *arr = json_object_get(doc, "rules"), *x;
	char err[128];
	size_t i;

	if (!json_is_object(doc) || json_object_size(doc) != 1 || !json_is_array(arr) ||
	    json_array_size(arr) > SFS_RULES_MAX)
		return -EBADMSG;
	json_array_foreach(arr, i, x)
	{
		const char *name = json_string_value(json_object_get(x, "name"));
		const char *pattern = json_string_value(json_object_get(x, "pattern"));
		json_t *b = json_object_get(x, "builtin");
		size_t n = r->n;

		if (!json_is_object(x) || json_object_size(x) != 3 || !name || !pattern ||
		    !json_is_boolean(b))
			return -EBADMSG;
		/* a name twice is no document sessionfs writes */
		if (sfs_rules_set(r, name, pattern, json_is_true(b), err, sizeof(err)) < 0 ||
		    r->n == n)
			return -EBADMSG;
	}
	return 0;
}

int sfs_rules_parse(const unsigned char *buf, size_t len, const struct sfs_keys *keys,
		    struct sfs_rules *r)
{
	unsigned char h[SFS_RULES_HDR];
	unsigned char *plain;
	size_t plen;
	json_t *doc;
	int rc;

	memset(r, 0, sizeof(*r));
	header(h);
	if (len < SFS_RULES_HDR + SFS_SEAL_OVERHEAD || len > SFS_RULES_FILE_MAX ||
	    memcmp(buf, h, 4) != 0 || buf[4] == 0)
		return -EBADMSG;
	if (buf[4] > SFS_RULES_VERSION)
		return -EPROTONOSUPPORT;
	if (memcmp(buf, h, SFS_RULES_HDR) != 0)
		return -EBADMSG;
	plen = len - SFS_RULES_HDR - SFS_SEAL_OVERHEAD;
	plain = malloc(plen ? plen : 1);
	if (!plain)
		return -ENOMEM;
	rc = sfs_crypto_open(plain, buf + SFS_RULES_HDR, len - SFS_RULES_HDR, buf, SFS_RULES_HDR,
			     keys->content);
	if (rc == 0) {
		doc = json_loadb((const char *)plain, plen, JSON_REJECT_DUPLICATES, NULL);
		rc = doc ? from_json(doc, r) : -EBADMSG;
		json_decref(doc);
	}
	sodium_memzero(plain, plen);
	free(plain);
	if (rc < 0)
		sfs_rules_free(r);
	return rc;
}

int sfs_rules_load(int cfd, const struct sfs_keys *keys, struct sfs_rules *r)
{
	unsigned char *buf = malloc(SFS_RULES_FILE_MAX + 1);
	ssize_t n;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!buf)
		return -ENOMEM;
	n = sfs_read_small(cfd, SFS_RULES_NAME, buf, SFS_RULES_FILE_MAX + 1);
	if (n == -ENOENT)
		rc = 0;
	else if (n < 0)
		rc = (int)n;
	else
		rc = sfs_rules_parse(buf, (size_t)n, keys, r);
	free(buf);
	return rc;
}

int sfs_rules_store(int cfd, const struct sfs_rules *r, const struct sfs_keys *keys)
{
	unsigned char *buf;
	size_t len;
	int rc;

	if (r->n == 0) {
		if (unlinkat(cfd, SFS_RULES_NAME, 0) < 0 && errno != ENOENT)
			return sfs_neg_errno();
		return sfs_fsync_dirfd(cfd);
	}
	rc = sfs_rules_pack(r, keys, &buf, &len);
	if (rc < 0)
		return rc;
	rc = sfs_write_atomic(cfd, SFS_RULES_NAME, buf, len);
	free(buf);
	return rc;
}

int sfs_rules_apply(const struct sfs_rules *r, const char *buf, size_t len, char **out,
		    size_t *outlen, uint64_t *count)
{
	char *o = NULL;
	size_t used = 0, cap = 0, start = 0;
	uint64_t total = 0;
	bool changed = false;
	int rc = 0;

	*out = NULL;
	*outlen = 0;
	*count = 0;
	while (rc == 0 && start < len) {
		const char *nl = memchr(buf + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - buf) : len, n = end - start;
		char *cur = NULL;
		size_t curlen = n;

		for (size_t i = 0; rc == 0 && i < r->n; i++) {
			char *next;
			size_t nextlen;
			uint64_t k;

			rc = sfs_redact_line(&r->r[i].re, cur ? cur : buf + start, curlen, &next,
					     &nextlen, &k);
			if (rc == 0 && next) {
				if (cur) {
					sodium_memzero(cur, curlen);
					free(cur);
				}
				cur = next;
				curlen = nextlen;
				total += k;
			}
		}
		if (rc == 0 && (cur || changed || o)) {
			if (!o) {
				/* the first change: the lines before it, as they are */
				cap = len + curlen + 64;
				o = malloc(cap);
				if (!o)
					rc = -ENOMEM;
				else
					memcpy(o, buf, used = start);
			}
			if (rc == 0 && used + curlen + 1 > cap) {
				char *g = malloc(cap = 2 * (used + curlen + 1));

				if (!g) {
					rc = -ENOMEM;
				} else {
					memcpy(g, o, used);
					sodium_memzero(o, used);
					free(o);
					o = g;
				}
			}
			if (rc == 0) {
				memcpy(o + used, cur ? cur : buf + start, curlen);
				used += curlen;
				if (nl)
					o[used++] = '\n';
			}
			changed = true;
		}
		if (cur) {
			sodium_memzero(cur, curlen);
			free(cur);
		}
		start = end + 1;
	}
	if (rc < 0 || !changed) {
		if (o) {
			sodium_memzero(o, used);
			free(o);
		}
		return rc;
	}
	*out = o;
	*outlen = used;
	*count = total;
	return 0;
}
