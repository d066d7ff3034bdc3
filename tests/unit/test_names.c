/*
 * test_names.c - encrypted names (short, long with sidecar, limits, tamper),
 * backing name classes, symlink target encoding, and a directory header's
 * copy in its xattr (tree.c).
 */
#include "check.h"
#include "format.h"
#include "tree.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static struct sfs_keys *keys;
static unsigned char dirid[SFS_ID_BYTES], dirid2[SFS_ID_BYTES];

/* A name of @len bytes drawn from printable characters other than '/'. */
static void make_name(char *out, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (char)('!' + (i * 31 + seed) % 14); /* '!'..'.', no '/' */
	out[len] = '\0';
}

static void test_golden(void)
{
	struct sfs_ename en;

	/* base64url(SIV tag || XChaCha20(name)); see test_crypto.c for the raw bytes. */
	CHECK_EQ(sfs_fmt_name_encrypt(&en, "notes.md", dirid, keys), 0);
	CHECK_STR(en.backing, "iGGGUajEH1Iohyt9vIcBdN-Avuf9FTZM");
	CHECK_STR(en.full, "iGGGUajEH1Iohyt9vIcBdN-Avuf9FTZM");
	CHECK(!en.is_long);
}

static void test_lengths(void)
{
	char name[SFS_NAME_MAX + 2], out[SFS_NAME_MAX + 1];
	struct sfs_ename en, en2;

	for (size_t len = 1; len <= SFS_NAME_MAX; len++) {
		bool want_long = len > 175; /* 16 + 175 bytes = 255 base64url chars */

		make_name(name, len, (unsigned)len);
		REQUIRE(sfs_fmt_name_encrypt(&en, name, dirid, keys) == 0);
		CHECK_EQ(en.is_long, want_long);
		CHECK_EQ(strlen(en.full), (4 * (SFS_SIV_BYTES + len) + 2) / 3);
		CHECK(strlen(en.backing) <= SFS_NAME_MAX);
		CHECK(strchr(en.backing, '/') == NULL);
		if (en.is_long) {
			CHECK_EQ(en.backing[0], SFS_LONGNAME_PREFIX);
			CHECK_EQ(strlen(en.backing), 1 + 43); /* "~" + base64url(32 bytes) */
			CHECK_EQ(sfs_fmt_name_class(en.backing), SFS_NAME_LONG);
			CHECK(sfs_fmt_longname_matches(en.backing, en.full));
			en.full[7] ^= 1;
			CHECK(!sfs_fmt_longname_matches(en.backing, en.full));
			en.full[7] ^= 1;
		} else {
			CHECK_STR(en.backing, en.full);
			CHECK_EQ(sfs_fmt_name_class(en.backing), SFS_NAME_SHORT);
		}
		memset(out, 'x', sizeof(out));
		CHECK_EQ(sfs_fmt_name_decrypt(out, en.full, dirid, keys), 0);
		CHECK_STR(out, name);
		CHECK_EQ(sfs_fmt_name_decrypt(out, en.full, dirid2, keys), -EBADMSG);

		/* Deterministic: the same name in the same directory, the same bytes. */
		REQUIRE(sfs_fmt_name_encrypt(&en2, name, dirid, keys) == 0);
		CHECK_STR(en2.backing, en.backing);
		REQUIRE(sfs_fmt_name_encrypt(&en2, name, dirid2, keys) == 0);
		CHECK(strcmp(en2.backing, en.backing) != 0);
	}
	make_name(name, SFS_NAME_MAX + 1, 1);
	CHECK_EQ(sfs_fmt_name_encrypt(&en, name, dirid, keys), -ENAMETOOLONG);
	CHECK_EQ(sfs_fmt_name_encrypt(&en, "", dirid, keys), -EINVAL);
}

static void test_tamper(void)
{
	char out[SFS_NAME_MAX + 1], enc[SFS_ENAME_MAX];
	struct sfs_ename en;
	size_t n;

	REQUIRE(sfs_fmt_name_encrypt(&en, "metadata.json", dirid, keys) == 0);
	strcpy(enc, en.full);
	n = strlen(enc);
	for (size_t i = 0; i < n; i++) {
		char c = enc[i];

		enc[i] = c == 'A' ? 'B' : 'A';
		CHECK_EQ(sfs_fmt_name_decrypt(out, enc, dirid, keys), -EBADMSG);
		enc[i] = c;
	}
	CHECK_EQ(sfs_fmt_name_decrypt(out, enc, dirid, keys), 0);
	CHECK_STR(out, "metadata.json");
	enc[n - 1] = '\0';
	CHECK_EQ(sfs_fmt_name_decrypt(out, enc, dirid, keys), -EBADMSG);
	CHECK_EQ(sfs_fmt_name_decrypt(out, "", dirid, keys), -EBADMSG);
	CHECK_EQ(sfs_fmt_name_decrypt(out, "AAAAAAAAAAAAAAAAAAAAAA", dirid, keys), -EBADMSG);
	CHECK_EQ(sfs_fmt_name_decrypt(out, "not base64!", dirid, keys), -EBADMSG);
	CHECK_EQ(sfs_fmt_name_decrypt(out, ".sfsdir", dirid, keys), -EBADMSG);

	/* Authentic, but no valid name: a '/' or a NUL inside. */
	static const char *const bad[] = {"a/b", "a\0b"};
	unsigned char sealed[SFS_SIV_BYTES + 3];

	for (int i = 0; i < 2; i++) {
		sfs_crypto_name_seal(sealed, (const unsigned char *)bad[i], 3, dirid, keys);
		sodium_bin2base64(enc, sizeof(enc), sealed, sizeof(sealed),
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		CHECK_EQ(sfs_fmt_name_decrypt(out, enc, dirid, keys), -EBADMSG);
	}
}

static void test_classes(void)
{
	static const struct {
		const char *name;
		enum sfs_name_class cls;
	} v[] = {
		{"abc", SFS_NAME_SHORT},
		{"aB9-_", SFS_NAME_SHORT},
		{"~abc", SFS_NAME_LONG},
		{"~abc.n", SFS_NAME_SIDECAR},
		{"~.n", SFS_NAME_INTERNAL},
		{"~", SFS_NAME_INTERNAL},
		{"~a.b", SFS_NAME_INTERNAL},
		{"abc.n", SFS_NAME_INTERNAL},
		{".sfsdir", SFS_NAME_INTERNAL},
		{".", SFS_NAME_INTERNAL},
		{"..", SFS_NAME_INTERNAL},
		{"a.b", SFS_NAME_INTERNAL},
		{".tmp.key.42", SFS_NAME_INTERNAL},
		{"", SFS_NAME_INTERNAL},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (sfs_fmt_name_class(v[i].name) != v[i].cls) {
			fprintf(stderr, "class of \"%s\" = %d, want %d\n", v[i].name,
				sfs_fmt_name_class(v[i].name), v[i].cls);
			check_failures++;
		}
}

static void test_symlinks(void)
{
	char target[SFS_SYMLINK_MAX + 2], enc[4096], out[SFS_SYMLINK_MAX + 1], small[8];
	static const size_t lens[] = {1, 2, 100, 1000, SFS_SYMLINK_MAX};

	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		size_t len = lens[li];

		for (size_t i = 0; i < len; i++)
			target[i] = "../a/b c"[i % 8];
		target[len] = '\0';
		CHECK_EQ(sfs_fmt_symlink_encode(enc, sizeof(enc), target, keys), 0);
		CHECK(strlen(enc) < 4096);
		CHECK(strchr(enc, '/') == NULL && strchr(enc, '=') == NULL);
		memset(out, 'x', sizeof(out));
		CHECK_EQ(sfs_fmt_symlink_decode(out, sizeof(out), enc, keys), 0);
		CHECK_STR(out, target);
	}
	/* The longest target fits PATH_MAX once encoded. */
	CHECK(strlen(enc) + 1 <= 4096);
	memset(target, 'a', SFS_SYMLINK_MAX + 1);
	target[SFS_SYMLINK_MAX + 1] = '\0';
	CHECK_EQ(sfs_fmt_symlink_encode(enc, sizeof(enc), target, keys), -ENAMETOOLONG);
	CHECK_EQ(sfs_fmt_symlink_encode(enc, 16, "/etc/passwd", keys), -ENAMETOOLONG);

	CHECK_EQ(sfs_fmt_symlink_encode(enc, sizeof(enc), "/etc/passwd", keys), 0);
	CHECK_EQ(sfs_fmt_symlink_decode(small, sizeof(small), enc, keys), -ENAMETOOLONG);
	for (size_t i = 0; enc[i]; i++) {
		char c = enc[i];

		enc[i] = c == 'A' ? 'B' : 'A';
		CHECK_EQ(sfs_fmt_symlink_decode(out, sizeof(out), enc, keys), -EBADMSG);
		enc[i] = c;
	}
	enc[strlen(enc) - 1] = '\0';
	CHECK_EQ(sfs_fmt_symlink_decode(out, sizeof(out), enc, keys), -EBADMSG);
	CHECK_EQ(sfs_fmt_symlink_decode(out, sizeof(out), "/etc/passwd", keys), -EBADMSG);
	CHECK_EQ(sfs_fmt_symlink_decode(out, sizeof(out), "", keys), -EBADMSG);
}

/*
 * libsodium 1.0.18's base64url decoder reads every byte >= 0x80 as '_' (and
 * ignores none): an encoded name or symlink target with such a byte in the
 * place of a '_' decodes to the same sealed bytes. Were it accepted, someone
 * who can write the store could give one entry a second backing name (a
 * copy of a long name's sidecar with the byte changed, named after its
 * hash) and the same name would show twice in one directory. Only the one
 * canonical encoding decodes.
 */
static void test_canonical(void)
{
	char name[SFS_NAME_MAX + 1], out[SFS_NAME_MAX + 1], full[SFS_ENAME_MAX + 2], enc[4096];
	char target[PATH_MAX];
	struct sfs_ename en;
	char *u = NULL;

	/* A long name whose encoding has a '_' (base64url of random bytes: soon found). */
	for (unsigned seed = 0; !u && seed < 1000; seed++) {
		make_name(name, 200, seed);
		REQUIRE(sfs_fmt_name_encrypt(&en, name, dirid, keys) == 0);
		u = strchr(en.full, '_');
	}
	REQUIRE(u && en.is_long);
	CHECK_EQ(sfs_fmt_name_decrypt(out, en.full, dirid, keys), 0);
	snprintf(full, sizeof(full), "%s", en.full);
	full[u - en.full] = (char)0x80;
	CHECK_EQ(sfs_fmt_name_decrypt(out, full, dirid, keys), -EBADMSG);
	full[u - en.full] = (char)0xff;
	CHECK_EQ(sfs_fmt_name_decrypt(out, full, dirid, keys), -EBADMSG);
	/* Other bytes base64url has no place for, where the decoder might skip them. */
	snprintf(full, sizeof(full), "%s=", en.full);
	CHECK_EQ(sfs_fmt_name_decrypt(out, full, dirid, keys), -EBADMSG);
	snprintf(full, sizeof(full), " %s", en.full);
	CHECK_EQ(sfs_fmt_name_decrypt(out, full, dirid, keys), -EBADMSG);

	/* The same for a symlink target. */
	u = NULL;
	for (unsigned seed = 0; !u && seed < 1000; seed++) {
		make_name(target, 100, seed);
		REQUIRE(sfs_fmt_symlink_encode(enc, sizeof(enc), target, keys) == 0);
		u = strchr(enc, '_');
	}
	REQUIRE(u);
	*u = (char)0x80;
	CHECK_EQ(sfs_fmt_symlink_decode(target, sizeof(target), enc, keys), -EBADMSG);
}

/*
 * A new directory's header is also in its xattr user.sfsdir; a .sfsdir that
 * a power cut left empty, short or zeroed is read from there (issue 14);
 * one that is whole but wrong, or with no copy to fall back on, is damaged.
 */
static void test_dir_header_copy(void)
{
	char tmpl[] = "/tmp/sfs-names-XXXXXX";
	unsigned char id[SFS_ID_BYTES], got[SFS_ID_BYTES], zero[SFS_HDR_BYTES] = {0};
	struct sfs_attrs a = {.mode = S_IFDIR | 0750, .uid = 1000, .gid = 100}, ga;
	int dfd, fd;

	CHECK(mkdtemp(tmpl) != NULL);
	dfd = open(tmpl, O_PATH | O_DIRECTORY);
	CHECK(dfd >= 0);
	memset(id, 0x5a, sizeof(id));
	CHECK_EQ(sfs_tree_dir_init(dfd, id, &a, keys), 0);
	if (getxattr(tmpl, SFS_DIRHDR_XATTR, NULL, 0) < 0 && errno == EOPNOTSUPP) {
		fprintf(stderr, "test_dir_header_copy: no user xattrs in /tmp: skipped\n");
		sfs_remove_tree(AT_FDCWD, tmpl);
		close(dfd);
		return;
	}
	CHECK_EQ(getxattr(tmpl, SFS_DIRHDR_XATTR, NULL, 0), SFS_HDR_BYTES);
	/* empty, then zeroed: the copy */
	fd = openat(dfd, SFS_DIRHDR_NAME, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	CHECK_EQ(sfs_tree_dir_load(dfd, got, &ga, keys), 0);
	CHECK_MEM(got, id, sizeof(id));
	CHECK_EQ(ga.mode, a.mode);
	CHECK_EQ(sfs_pwrite_all(fd, zero, sizeof(zero), 0), 0);
	close(fd);
	CHECK_EQ(sfs_tree_dir_load(dfd, got, &ga, keys), 0);
	CHECK_MEM(got, id, sizeof(id));
	/* a whole .sfsdir wins over the copy: a chmod rewrites it alone */
	a.mode = S_IFDIR | 0700;
	CHECK_EQ(sfs_tree_dir_store(dfd, id, &a, keys), 0);
	CHECK_EQ(sfs_tree_dir_load(dfd, got, &ga, keys), 0);
	CHECK_EQ(ga.mode, S_IFDIR | 0700);
	/* whole but tampered: damaged, no fallback */
	fd = openat(dfd, SFS_DIRHDR_NAME, O_WRONLY);
	CHECK_EQ(sfs_pwrite_all(fd, "X", 1, 40), 0);
	close(fd);
	CHECK_EQ(sfs_tree_dir_load(dfd, got, &ga, keys), -EBADMSG);
	/* empty and no copy (a store from before the copy, damaged): damaged */
	CHECK_EQ(truncate(strcat(strcpy((char[64]){0}, tmpl), "/" SFS_DIRHDR_NAME), 0), 0);
	CHECK_EQ(removexattr(tmpl, SFS_DIRHDR_XATTR), 0);
	CHECK_EQ(sfs_tree_dir_load(dfd, got, &ga, keys), -EBADMSG);
	close(dfd);
	CHECK_EQ(sfs_remove_tree(AT_FDCWD, tmpl), 0);
}

int main(void)
{
	keys = fixed_keys();
	for (int i = 0; i < SFS_ID_BYTES; i++)
		dirid[i] = (unsigned char)(0xa0 + i);
	memcpy(dirid2, dirid, sizeof(dirid2));
	dirid2[0] ^= 0x01;
	test_golden();
	test_lengths();
	test_tamper();
	test_classes();
	test_symlinks();
	test_canonical();
	test_dir_header_copy();
	sfs_keys_free(keys);
	return check_done();
}
