/*
 * test_redact.c - redaction (lib/redact.c) with fixed inputs: compiling a
 * pattern (regerror's text, the empty match refused), text (several
 * matches, anchors per line, NUL bytes, matches widened to whole UTF-8
 * characters), event lines (strings at any depth, keys and numbers kept,
 * unchanged lines left alone, a line that is no JSON object redacted as
 * text), what is text; and a session's log rewritten: same id and header,
 * lines redacted, a crash before publish leaving the old log whole, the
 * published log loading and reading as the new one.
 */
#include "check.h"
#include "redact.h"
#include "rules.h"
#include "util.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID "INC-3f2a"

static regex_t re;

static void compile(const char *pattern)
{
	char err[128];

	REQUIRE(sfs_redact_compile(&re, pattern, err, sizeof(err)) == 0);
}

static void check_text_n(const char *in, size_t len, const char *want, size_t wlen, uint64_t want_n)
{
	char *out;
	size_t outlen;
	uint64_t n = 99;

	CHECK_EQ(sfs_redact_text(&re, in, len, &out, &outlen, &n), 0);
	CHECK_EQ(n, want_n);
	if (!want) {
		CHECK(out == NULL);
		return;
	}
	REQUIRE(out);
	CHECK_EQ(outlen, wlen);
	CHECK_MEM(out, want, outlen);
	free(out);
}

/* check_text(in, len, "want" or NULL, matches): @want a literal (NULs kept) */
#define check_text(in, len, want, n) check_text_n(in, len, want, (want) ? sizeof(want) - 1 : 0, n)

static void check_line(const char *in, const char *want, uint64_t want_n)
{
	char *out;
	size_t outlen;
	uint64_t n = 99;

	CHECK_EQ(sfs_redact_line(&re, in, strlen(in), &out, &outlen, &n), 0);
	CHECK_EQ(n, want_n);
	if (!want) {
		CHECK(out == NULL);
		return;
	}
	REQUIRE(out);
	CHECK_STR(out, want);
	CHECK_EQ(outlen, strlen(want));
	free(out);
}

static void test_compile(void)
{
	char err[128];

	CHECK_EQ(sfs_redact_compile(&re, "a(", err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "Unmatched ( or \\(");
	CHECK_EQ(sfs_redact_compile(&re, "[z-a]", err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "Invalid range end");
	for (const char *const *p = (const char *const[]){"x*", "^", "$", "a|", "(b)?", NULL}; *p;
	     p++) {
		CHECK_EQ(sfs_redact_compile(&re, *p, err, sizeof(err)), -EINVAL);
		CHECK_STR(err, "the pattern matches the empty string");
	}
	CHECK_EQ(sfs_redact_compile(&re, "x+", err, sizeof(err)), 0);
	regfree(&re);
	/*
	 * Back-references are refused: glibc matches them by backtracking, and
	 * "(.*)(.*)\1\2x" on 100 bytes of "a" does not end (a rule would hang
	 * every append, redact the daemon). A backslash-digit inside a bracket
	 * expression is two characters of the set, and an escaped backslash
	 * before a digit is a backslash, then the digit: both are fine.
	 */
	for (const char *const *p =
		     (const char *const[]){"(.*)(.*)\\1\\2x", "(a)\\1", "x(a|b)+\\9", NULL};
	     *p; p++) {
		CHECK_EQ(sfs_redact_compile(&re, *p, err, sizeof(err)), -EINVAL);
		CHECK_STR(err, "back-references (\\1 to \\9) are not supported");
	}
	for (const char *const *p = (const char *const[]){"[\\1]x", "\\\\1", "[]\\1]",
							  "[[:digit:]\\1]", "[^]\\2]", NULL};
	     *p; p++) {
		CHECK_EQ(sfs_redact_compile(&re, *p, err, sizeof(err)), 0);
		regfree(&re);
	}
	/*
	 * Counted repetitions are expanded by glibc, nested ones multiplied:
	 * "(.{1,255}){1,255}x" takes 20 s on 200 bytes, deeper nests gigabytes to
	 * compile. At most 1000 atoms more than written; literals cost nothing.
	 */
	for (const char *const *p =
		     (const char *const[]){
			     "(.{1,255}){1,255}x", "((a{1,30}){1,30}){1,30}", ".{1,1000}y.{1,1000}",
			     "(((a{1,255}){1,255}){1,255}){1,255}x", "x.{1002}", NULL};
	     *p; p++) {
		CHECK_EQ(sfs_redact_compile(&re, *p, err, sizeof(err)), -EINVAL);
		CHECK_STR(err, "repetition counts ({m,n}) expand the pattern too far (glibc would "
			       "take minutes on a long line)");
	}
	for (const char *const *p = (const char *const[]){".{1,1000}x", "(.{1,30}){1,30}x",
							  "a{2}b{3,}c{4,5}", "x.{1001}", NULL};
	     *p; p++) {
		CHECK_EQ(sfs_redact_compile(&re, *p, err, sizeof(err)), 0);
		regfree(&re);
	}
	for (const struct sfs_rule_builtin *b = sfs_rules_builtins; b->name; b++) {
		CHECK_EQ(sfs_redact_compile(&re, b->pattern, err, sizeof(err)), 0);
		regfree(&re);
	}
	{
		char lit[3001];

		for (size_t i = 0; i < sizeof(lit) - 1; i++)
			lit[i] = (char)('a' + i % 26);
		lit[sizeof(lit) - 1] = '\0';
		CHECK_EQ(sfs_redact_compile(&re, lit, err, sizeof(err)), 0);
		regfree(&re);
	}
	/* what records say of a pattern: its SHA-256 */
	char hex[SFS_REDACT_HASH_HEX];

	sfs_redact_pattern_hash("AKIA[A-Z0-9]{16}", hex);
	CHECK_STR(hex, "807fe805b97a9e3eb40e81b06618aa35a3a03b6d6b69aa310e916f9053e3148f");
}

static void test_text(void)
{
	compile("AKIA[A-Z0-9]{4}");
	check_text("no key", 6, NULL, 0);
	check_text("AKIA1234", 8, "[REDACTED]", 1);
	check_text("a AKIA1234 b AKIAZZZZ c", 23, "a [REDACTED] b [REDACTED] c", 2);
	check_text("AKIA12", 6, NULL, 0);
	/* NUL bytes are ordinary bytes: matches after them are found */
	check_text("x\0AKIA1234\0y", 12, "x\0[REDACTED]\0y", 1);
	regfree(&re);

	/* anchors match at line ends (REG_NEWLINE); '.' never crosses a newline */
	compile("^s.*");
	check_text("s1\nab\ns2", 8, "[REDACTED]\nab\n[REDACTED]", 2);
	regfree(&re);

	/* a match that cuts a UTF-8 character is widened to the whole character */
	compile("\xa9t"); /* the second byte of "é" (c3 a9), then t */
	check_text("\xc3\xa9t\xc3\xa9", 5, "[REDACTED]\xc3\xa9", 1);
	regfree(&re);
	compile("e\xcc"); /* e, then the first byte of a combining accent */
	check_text("e\xcc\x81x", 4, "[REDACTED]x", 1);
	regfree(&re);
}

static void test_lines(void)
{
	compile("ghp_[A-Za-z0-9]{6}");
	/* unchanged: NULL, whatever its spacing */
	check_line("{ \"a\" : 1 }", NULL, 0);
	check_line("{\"t\":\"x ghp_abcDEF y\",\"n\":0.1,\"big\":1e5,\"i\":-3}",
		   "{\"t\":\"x [REDACTED] y\",\"n\":0.1,\"big\":100000.0,\"i\":-3}", 1);
	/* strings at any depth; keys are left; escapes written the compact way */
	check_line(
		"{\"ghp_abcdef\":[\"ghp_abcdef\",{\"b\":\"\\u00e9 ghp_123456\"}],\"q\":\"\\\"\"}",
		"{\"ghp_abcdef\":[\"[REDACTED]\",{\"b\":\"\xc3\xa9 [REDACTED]\"}],\"q\":\"\\\"\"}",
		2);
	/* a value the pattern only finds encoded ("\u0067hp_" is "ghp_") is found decoded */
	check_line("{\"t\":\"\\u0067hp_abcdef\"}", "{\"t\":\"[REDACTED]\"}", 1);
	/* a line that is no JSON object: as text */
	check_line("not json ghp_abcdef", "not json [REDACTED]", 1);
	check_line("[\"ghp_abcdef\"]", "[\"[REDACTED]\"]", 1);
	regfree(&re);
	/* a number that 15 digits do not give back is written with 17 */
	compile("k");
	check_line("{\"s\":\"k\",\"n\":0.30000000000000004}",
		   "{\"s\":\"[REDACTED]\",\"n\":0.30000000000000004}", 1);
	regfree(&re);
}

static void test_is_text(void)
{
	CHECK(sfs_redact_is_text("", 0));
	CHECK(sfs_redact_is_text("plain\n", 6));
	CHECK(sfs_redact_is_text("\xc3\xa9t\xc3\xa9", 5));
	CHECK(!sfs_redact_is_text("a\0b", 3));
	CHECK(!sfs_redact_is_text("\xc3", 1));
	CHECK(!sfs_redact_is_text("\xff\xfe", 2));
}

/* All of log @l's plaintext into a new string. */
static char *read_log(struct sfs_log *l)
{
	char *p = malloc(l->size + 1);

	REQUIRE(p);
	CHECK_EQ(sfs_log_read(l, p, l->size, 0), (ssize_t)l->size);
	p[l->size] = '\0';
	return p;
}

/* The container's events.jsonl, opened and loaded as unlock does. */
static void open_events(int cfd, const struct sfs_keys *keys, struct sfs_log *l)
{
	struct sfs_session_report rep;

	CHECK_EQ(sfs_store_session_prepare(cfd, keys, 0, l, &rep), 0);
}

/* Is there a file @name in container @cfd's root? */
static bool exists(int cfd, const char *name)
{
	int rootfd = openat(cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY);
	struct stat st;
	bool yes;

	REQUIRE(rootfd >= 0);
	yes = fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(rootfd);
	return yes;
}

static void test_log(void)
{
	static const char lines[] = "{\"type\":\"a\",\"k\":\"AKIA1234\"}\n"
				    "{ \"type\" : \"b\" }\n"
				    "{\"type\":\"c\",\"k\":[\"AKIAABCD\",\"AKIA9999\"]}\n";
	static const char want[] = "{\"type\":\"a\",\"k\":\"[REDACTED]\"}\n"
				   "{ \"type\" : \"b\" }\n"
				   "{\"type\":\"c\",\"k\":[\"[REDACTED]\",\"[REDACTED]\"]}\n"
				   "{\"rec\":1}\n";
	char top[] = "/tmp/sfs-unit-redact-XXXXXX", path[64];
	struct sfs_new_session ns = {.id = ID,
				     .name = "",
				     .password = "pw",
				     .pwlen = 2,
				     .kdf = SFS_KDF_INTERACTIVE,
				     .cipher = SFS_CIPHER_XCHACHA,
				     .uid = getuid(),
				     .gid = getgid()};
	struct sfs_log_rewrite rw;
	struct sfs_redact_stats st;
	struct sfs_log l, l2;
	struct sfs_keys *keys;
	struct stat before, after;
	int sessfd, cfd, lock;
	char *text;

	REQUIRE(mkdtemp(top));
	sessfd = open(top, O_PATH | O_DIRECTORY);
	REQUIRE(sessfd >= 0);
	REQUIRE(sfs_store_session_create(sessfd, &ns, &lock, &keys) == 0);
	cfd = openat(sessfd, ID, O_PATH | O_DIRECTORY);
	REQUIRE(cfd >= 0);
	open_events(cfd, keys, &l);
	CHECK_EQ(sfs_log_append(&l, lines, sizeof(lines) - 1), 0);
	compile("AKIA[A-Z0-9]{4}");

	/* begin, then a crash (nothing published): the old log whole, the temporary swept */
	CHECK_EQ(sfs_log_redact_begin(cfd, &l, &re, &rw, &st), 0);
	CHECK_EQ(st.lines, 3);
	CHECK_EQ(st.changed, 2);
	CHECK_EQ(st.matches, 3);
	CHECK_MEM(rw.nl.id, l.id, SFS_ID_BYTES);
	sfs_log_close(&rw.nl);
	close(rw.rootfd);
	snprintf(path, sizeof(path), "%s", rw.tmp);
	sfs_log_close(&l);
	open_events(cfd, keys, &l);
	CHECK(!exists(cfd, path)); /* unlock swept the temporary */
	text = read_log(&l);
	CHECK_STR(text, lines);
	free(text);
	CHECK_EQ(fstat(l.fd, &before), 0);

	/* begin, one more line, publish: the new log in place, with the old id */
	CHECK_EQ(sfs_log_redact_begin(cfd, &l, &re, &rw, &st), 0);
	CHECK_EQ(sfs_log_append(&rw.nl, "{\"rec\":1}\n", 10), 0);
	CHECK_EQ(sfs_log_redact_publish(&rw), 0);
	CHECK(rw.renamed);
	CHECK_EQ(rw.rootfd, -1);
	text = read_log(&rw.nl);
	CHECK_STR(text, want);
	free(text);
	sfs_log_close(&rw.nl);
	sfs_log_close(&l);
	open_events(cfd, keys, &l2);
	CHECK_EQ(fstat(l2.fd, &after), 0);
	CHECK(after.st_ino != before.st_ino);
	CHECK_EQ(l2.lines, 4);
	text = read_log(&l2);
	CHECK_STR(text, want);
	free(text);
	/* discard: nothing left */
	CHECK_EQ(sfs_log_redact_begin(cfd, &l2, &re, &rw, &st), 0);
	CHECK_EQ(st.matches, 0);
	snprintf(path, sizeof(path), "%s", rw.tmp);
	CHECK(exists(cfd, path));
	sfs_log_redact_discard(&rw);
	CHECK(!exists(cfd, path));
	sfs_log_close(&l2);
	regfree(&re);
	sfs_keys_free(keys);
	close(lock);
	close(cfd);
	sfs_remove_tree(AT_FDCWD, top);
	close(sessfd);
}

int main(void)
{
	REQUIRE(sfs_crypto_init() == 0);
	test_compile();
	test_text();
	test_lines();
	test_is_text();
	test_log();
	return check_done();
}
