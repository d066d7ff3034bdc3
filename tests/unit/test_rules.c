/*
 * test_rules.c - a session's redaction rules (lib/rules.c) with fixed
 * inputs: names, set, replace, remove, the limit; the stored form as a
 * fixed vector (fixed keys and nonce: header and length, and a file that
 * opens to fixed rules), what parse refuses (magic, version, reserved
 * bytes, length, a flipped byte, another key, documents that break the
 * rules); load and store in a container directory; the built-in rules on
 * sample secrets; applying rules to event lines.
 */
#include "check.h"
#include "redact.h"
#include "rules.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct sfs_keys *keys;

static void test_set_remove(void)
{
	struct sfs_rules r = {0};
	char err[128], name[16];

	CHECK(sfs_rule_name_valid("aws.key_1-x"));
	CHECK(!sfs_rule_name_valid(""));
	CHECK(!sfs_rule_name_valid("a b"));
	CHECK(!sfs_rule_name_valid("a/b"));
	CHECK(!sfs_rule_name_valid("123456789012345678901234567890123"));
	CHECK_EQ(sfs_rules_set(&r, "a", "x+", false, err, sizeof(err)), 0);
	CHECK_EQ(sfs_rules_set(&r, "b", "y+", true, err, sizeof(err)), 0);
	CHECK_EQ(sfs_rules_set(&r, "a", "z+", false, err, sizeof(err)), 0); /* replaced */
	CHECK_EQ(r.n, 2);
	CHECK_STR(r.r[0].name, "a");
	CHECK_STR(r.r[0].pattern, "z+");
	CHECK_EQ(sfs_rules_set(&r, "c", "a(", false, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "Unmatched ( or \\(");
	CHECK_EQ(sfs_rules_set(&r, "c", "q*", false, err, sizeof(err)), -EINVAL);
	CHECK_EQ(sfs_rules_set(&r, "c d", "q", false, err, sizeof(err)), -EINVAL);
	CHECK_EQ(r.n, 2);
	CHECK_EQ(sfs_rules_remove(&r, "a"), 0);
	CHECK_EQ(sfs_rules_remove(&r, "a"), -ENOENT);
	CHECK_EQ(r.n, 1);
	CHECK_STR(r.r[0].name, "b");
	for (int i = 1; i < SFS_RULES_MAX; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		CHECK_EQ(sfs_rules_set(&r, name, "q", false, err, sizeof(err)), 0);
	}
	CHECK_EQ(sfs_rules_set(&r, "one-more", "q", false, err, sizeof(err)), -ENOSPC);
	CHECK_EQ(sfs_rules_set(&r, "r1", "w", false, err, sizeof(err)), 0); /* a replace fits */
	sfs_rules_free(&r);
	CHECK_EQ(r.n, 0);
}

/* Seal @doc as a rule file with nonce bytes 0x24 into @out; its length. */
static size_t seal_doc(unsigned char *out, const char *doc, unsigned char version)
{
	size_t n = strlen(doc);

	memcpy(out, "SFSR", 4);
	out[4] = version;
	out[5] = out[6] = out[7] = 0;
	memset(out + SFS_RULES_HDR, 0x24, SFS_NONCE_BYTES);
	sfs_crypto_seal_nonce(out + SFS_RULES_HDR, (const unsigned char *)doc, n, out,
			      SFS_RULES_HDR, keys->content);
	return SFS_RULES_HDR + n + SFS_SEAL_OVERHEAD;
}

static void test_stored_form(void)
{
	static const char doc[] = "{\"rules\":[{\"name\":\"pw\",\"pattern\":\"hunter[0-9]\","
				  "\"builtin\":false}]}";
	unsigned char file[512], *packed;
	struct sfs_rules r, back;
	struct sfs_keys *other;
	unsigned char master[32];
	size_t len, n;
	char err[128];

	/* a fixed vector: fixed keys, fixed nonce */
	len = seal_doc(file, doc, 1);
	CHECK_EQ(len, 113); /* doc/format.md "Redaction rules", the worked example */
	CHECK_HEX(file, "5346535201000000242424242424242424242424242424242424242424242424", 32);
	/* the first ciphertext bytes and the tag: XChaCha20-Poly1305, content key, header as AD */
	CHECK_HEX(file + 32, "69074c61cdf8e6b268b7d307e10319db", 16);
	CHECK_HEX(file + len - 16, "29efc8ed96e4268b3570610e83a940ad", 16);
	CHECK_EQ(sfs_rules_parse(file, len, keys, &r), 0);
	CHECK_EQ(r.n, 1);
	CHECK_STR(r.r[0].name, "pw");
	CHECK_STR(r.r[0].pattern, "hunter[0-9]");
	CHECK(!r.r[0].builtin);
	/* pack writes the same document (its nonce is random) */
	CHECK_EQ(sfs_rules_pack(&r, keys, &packed, &n), 0);
	CHECK_EQ(n, len);
	CHECK_MEM(packed, file, SFS_RULES_HDR);
	CHECK_EQ(sfs_rules_parse(packed, n, keys, &back), 0);
	CHECK_EQ(back.n, 1);
	CHECK_STR(back.r[0].pattern, "hunter[0-9]");
	sfs_rules_free(&back);
	free(packed);
	sfs_rules_free(&r);

	/* what parse refuses */
	CHECK_EQ(sfs_rules_parse(file, 47, keys, &r), -EBADMSG); /* shorter than header + seal */
	file[0] = 'X';
	CHECK_EQ(sfs_rules_parse(file, len, keys, &r), -EBADMSG);
	file[0] = 'S';
	file[4] = 2;
	CHECK_EQ(sfs_rules_parse(file, len, keys, &r), -EPROTONOSUPPORT);
	file[4] = 0;
	CHECK_EQ(sfs_rules_parse(file, len, keys, &r), -EBADMSG);
	file[4] = 1;
	file[6] = 1;
	CHECK_EQ(sfs_rules_parse(file, len, keys, &r), -EBADMSG);
	file[6] = 0;
	CHECK_EQ(sfs_rules_parse(file, len, keys, &r), 0);
	sfs_rules_free(&r);
	for (size_t i = SFS_RULES_HDR; i < len; i += 7) {
		file[i] ^= 0x10;
		CHECK_EQ(sfs_rules_parse(file, len, keys, &r), -EBADMSG);
		file[i] ^= 0x10;
	}
	CHECK_EQ(sfs_rules_parse(file, len - 1, keys, &r), -EBADMSG);
	fixed_master(master);
	master[0] ^= 1;
	other = sfs_keys_new(master, SFS_CIPHER_XCHACHA);
	REQUIRE(other);
	CHECK_EQ(sfs_rules_parse(file, len, other, &r), -EBADMSG);
	sfs_keys_free(other);

	/* documents that break the rules, sealed properly */
	static const char *const bad[] = {
		"",
		"[]",
		"{\"rules\":{}}",
		"{\"rules\":[],\"x\":1}",
		"{\"rules\":[{\"name\":\"a\",\"pattern\":\"x\"}]}",
		"{\"rules\":[{\"name\":\"a\",\"pattern\":\"x\",\"builtin\":0}]}",
		"{\"rules\":[{\"name\":\"a b\",\"pattern\":\"x\",\"builtin\":false}]}",
		"{\"rules\":[{\"name\":\"a\",\"pattern\":\"a(\",\"builtin\":false}]}",
		"{\"rules\":[{\"name\":\"a\",\"pattern\":\"x*\",\"builtin\":false}]}",
		"{\"rules\":[{\"name\":\"a\",\"pattern\":\"x\",\"builtin\":false,\"y\":1}]}",
		"{\"rules\":[{\"name\":\"a\",\"pattern\":\"x\",\"builtin\":false},"
		"{\"name\":\"a\",\"pattern\":\"y\",\"builtin\":false}]}",
		"{\"rules\":[],\"rules\":[]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = seal_doc(file, bad[i], 1);
		CHECK_EQ(sfs_rules_parse(file, len, keys, &r), -EBADMSG);
		CHECK_EQ(r.n, 0);
	}
	len = seal_doc(file, "{\"rules\":[]}", 1);
	CHECK_EQ(sfs_rules_parse(file, len, keys, &r), 0);
	CHECK_EQ(r.n, 0);
	(void)err;
}

static void test_load_store(void)
{
	char dir[] = "/tmp/sfs-unit-rules-XXXXXX", err[128];
	struct sfs_rules r = {0}, back;
	struct stat st;
	int dfd;

	REQUIRE(mkdtemp(dir));
	dfd = open(dir, O_PATH | O_DIRECTORY);
	REQUIRE(dfd >= 0);
	CHECK_EQ(sfs_rules_load(dfd, keys, &back), 0); /* no file: no rules */
	CHECK_EQ(back.n, 0);
	CHECK_EQ(sfs_rules_set(&r, "pw", "hunter[0-9]", false, err, sizeof(err)), 0);
	CHECK_EQ(sfs_rules_store(dfd, &r, keys), 0);
	CHECK_EQ(fstatat(dfd, SFS_RULES_NAME, &st, 0), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(sfs_rules_load(dfd, keys, &back), 0);
	CHECK_EQ(back.n, 1);
	CHECK_STR(back.r[0].pattern, "hunter[0-9]");
	sfs_rules_free(&back);
	{
		/* sealed: the pattern is nowhere in the file */
		unsigned char buf[512];
		ssize_t n = sfs_read_small(dfd, SFS_RULES_NAME, buf, sizeof(buf));

		REQUIRE(n > 0);
		CHECK(memmem(buf, (size_t)n, "hunter", 6) == NULL);
	}
	sfs_rules_free(&r);
	CHECK_EQ(sfs_rules_store(dfd, &r, keys), 0); /* no rules: no file */
	CHECK(fstatat(dfd, SFS_RULES_NAME, &st, 0) < 0 && errno == ENOENT);
	close(dfd);
	sfs_remove_tree(AT_FDCWD, dir);
}

static void check_apply(const struct sfs_rules *r, const char *in, const char *want,
			uint64_t want_n)
{
	char *out;
	size_t outlen;
	uint64_t n;

	CHECK_EQ(sfs_rules_apply(r, in, strlen(in), &out, &outlen, &n), 0);
	CHECK_EQ(n, want_n);
	if (!want) {
		CHECK(out == NULL);
		return;
	}
	REQUIRE(out);
	CHECK_EQ(outlen, strlen(want));
	CHECK_MEM(out, want, outlen);
	free(out);
}

static void test_builtins_and_apply(void)
{
	struct sfs_rules r = {0};
	char err[128];

	for (const struct sfs_rule_builtin *b = sfs_rules_builtins; b->name; b++)
		CHECK_EQ(sfs_rules_set(&r, b->name, b->pattern, true, err, sizeof(err)), 0);
	CHECK_EQ(r.n, 4);
	CHECK(sfs_rules_builtin("github-token") != NULL);
	CHECK(sfs_rules_builtin("nope") == NULL);
	check_apply(&r, "{\"a\":1}\n{\"b\":\"no secret\"}\n", NULL, 0);
	check_apply(&r, "{\"k\":\"AKIAIOSFODNN7EXAMPLE\",\"s\":\"ASIAY34FZKBOKMUTVV7A\"}\n",
		    "{\"k\":\"[REDACTED]\",\"s\":\"[REDACTED]\"}\n", 2);
	check_apply(&r,
		    "{\"t\":\"ghp_0123456789abcdefghijABCDEFGHIJ012345\"}\n"
		    "{\"t\":\"github_pat_11ABCDEFG0123456789_abcdefghijklmnop\"}\n",
		    "{\"t\":\"[REDACTED]\"}\n{\"t\":\"[REDACTED]\"}\n", 2);
	check_apply(&r, "{\"t\":\"x xoxb-1234567890-abcdef y\"}\n", "{\"t\":\"x [REDACTED] y\"}\n",
		    1);
	/* a PEM block in one JSON string (its newlines escaped in the line) */
	check_apply(&r,
		    "{\"t\":\"key:\\n-----BEGIN RSA PRIVATE KEY-----\\nMIIEow+/=\\nAbC\\n-----END "
		    "RSA PRIVATE KEY-----\\nend\"}\n",
		    "{\"t\":\"key:\\n[REDACTED]\\nend\"}\n", 1);
	check_apply(&r,
		    "{\"t\":\"-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Blbn\\n-----END OPENSSH "
		    "PRIVATE KEY-----\"}\n",
		    "{\"t\":\"[REDACTED]\"}\n", 1);
	/* unchanged lines around a changed one stay byte-identical; rules apply in turn */
	CHECK_EQ(sfs_rules_set(&r, "pw", "hunter[0-9]+", false, err, sizeof(err)), 0);
	CHECK_EQ(sfs_rules_set(&r, "mark", "\\[REDACTED\\] x", false, err, sizeof(err)), 0);
	check_apply(&r, "{ \"a\" : 1 }\n{\"p\":\"hunter22 x\"}\n{ \"b\" : 2 }\n",
		    "{ \"a\" : 1 }\n{\"p\":\"[REDACTED]\"}\n{ \"b\" : 2 }\n", 2);
	sfs_rules_free(&r);
}

int main(void)
{
	keys = fixed_keys();
	test_set_remove();
	test_stored_form();
	test_load_store();
	test_builtins_and_apply();
	return check_done();
}
