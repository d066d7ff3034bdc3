/*
 * rules.h - a session's redaction rules (`sessionctl redact --rule`,
 * `--builtin`): named POSIX EREs that the daemon applies to every line
 * appended to events.jsonl before it is sealed (redact.h's line
 * redaction), so what a rule matches never reaches the disk.
 *
 * Stored sealed in the session's container as SFS_RULES_NAME
 * (doc/format.md "Redaction rules"): a clear 8-byte header, then a JSON
 * document {"rules":[{"name","pattern","builtin"}]} sealed under the
 * session's content key with the header as associated data. Written
 * atomically (a temporary in the container, fsync, rename, fsync).
 *
 * Session-store layer: knows crypto, regex.h, jansson and redact.h;
 * nothing of FUSE, the protocol or the daemon's locks (the caller keeps a
 * struct sfs_rules from changing while it is applied).
 */
#ifndef SFS_RULES_H
#define SFS_RULES_H

#include "crypto.h"

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SFS_RULES_NAME "rules"	       /* in the container, beside key and lock */
#define SFS_RULES_MAGIC "SFSR"	       /* the file's first 4 bytes */
#define SFS_RULES_VERSION 1	       /* its byte 4 */
#define SFS_RULES_HDR 8		       /* magic, version, 3 zero bytes */
#define SFS_RULES_MAX 32	       /* rules of one session */
#define SFS_RULE_NAME_MAX 32	       /* bytes of a name: [A-Za-z0-9._-] */
#define SFS_RULE_PATTERN_MAX 1024      /* bytes of a pattern */
#define SFS_RULES_FILE_MAX (64u << 10) /* bytes of the file, at most */

struct sfs_rule {
	char name[SFS_RULE_NAME_MAX + 1];
	char *pattern; /* malloc */
	bool builtin;  /* one of sfs_rules_builtins, by name */
	regex_t re;
};

/* A session's rules, in the order they were added (applied in that order). */
struct sfs_rules {
	size_t n;
	struct sfs_rule r[SFS_RULES_MAX];
};

/* A built-in rule: its name and pattern. */
struct sfs_rule_builtin {
	const char *name, *pattern, *what;
};
extern const struct sfs_rule_builtin sfs_rules_builtins[]; /* ends with a NULL name */

/* The built-in rule named @name, or NULL. */
const struct sfs_rule_builtin *sfs_rules_builtin(const char *name);

/* Is @name a rule name: 1 to SFS_RULE_NAME_MAX bytes of [A-Za-z0-9._-]? */
bool sfs_rule_name_valid(const char *name);

/*
 * Add rule @name with @pattern to @r, or replace the one of that name.
 * 0; -EINVAL a bad name or a pattern that does not compile, matches the
 * empty string or is too long (why in @err); -ENOSPC SFS_RULES_MAX rules.
 */
int sfs_rules_set(struct sfs_rules *r, const char *name, const char *pattern, bool builtin,
		  char *err, size_t errsz);

/* Remove rule @name from @r: 0, or -ENOENT none of that name. */
int sfs_rules_remove(struct sfs_rules *r, const char *name);

/* Free the patterns and compiled expressions of @r and empty it. */
void sfs_rules_free(struct sfs_rules *r);

/*
 * The stored form: sfs_rules_pack seals @r into *@out (malloc, *@len
 * bytes); sfs_rules_parse opens and checks @len stored bytes into @r (empty
 * before): 0, -EBADMSG not a rule file of this session (magic, length,
 * authentication) or a document that breaks the rules above,
 * -EPROTONOSUPPORT a newer version, -ENOMEM.
 */
int sfs_rules_pack(const struct sfs_rules *r, const struct sfs_keys *keys, unsigned char **out,
		   size_t *len);
int sfs_rules_parse(const unsigned char *buf, size_t len, const struct sfs_keys *keys,
		    struct sfs_rules *r);

/*
 * Container @cfd's rules into @r (empty if there is no rule file): 0 or
 * -errno as sfs_rules_parse. sfs_rules_store writes @r (no rules: removes
 * the file) atomically, the container fsynced: 0 or -errno.
 */
int sfs_rules_load(int cfd, const struct sfs_keys *keys, struct sfs_rules *r);
int sfs_rules_store(int cfd, const struct sfs_rules *r, const struct sfs_keys *keys);

/*
 * Apply @r to @len bytes of whole event lines @buf: each line redacted by
 * each rule in turn (sfs_redact_line). *@out NULL if nothing matched, else
 * the new lines (malloc, *@outlen bytes; the caller wipes and frees it);
 * *@count the matches. 0 or -ENOMEM.
 */
int sfs_rules_apply(const struct sfs_rules *r, const char *buf, size_t len, char **out,
		    size_t *outlen, uint64_t *count);

#endif
