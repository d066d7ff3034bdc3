/*
 * test_xattr.c - extended attribute blobs (lib/xattr.c): set, get, remove
 * and list with the limits and flags of setxattr(2), the packed plaintext
 * and a fixed sealed blob, tamper cases (flipped byte, another node's id,
 * cut, unknown version, another key), and load/store/remove/sweep in a
 * temporary session root.
 */
#include "check.h"
#include "xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static struct sfs_keys *keys;
static unsigned char node_id[SFS_ID_BYTES];

/* user.a = "1", user.bc = "" sealed for node_id under the fixed master key. */
static const char golden_blob[] = "534653580100a97a8114e2e5e55b303f05effabe1898a942b76600e50b30"
				  "eced178dad5ad860b80d32090b331c2e8f25a096928b09bd2a9cbcf3bbeb"
				  "5978a97b";
#define GOLDEN_BYTES 64
/* u32 count 2 | u8 1, u32 1, "a", "1" | u8 2, u32 0, "bc" */
static const char golden_plain[] = "02000000"
				   "01"
				   "01000000"
				   "6131"
				   "02"
				   "00000000"
				   "6263";

static void test_edit(void)
{
	struct sfs_xattrs x = {0};
	const unsigned char *v;
	unsigned char *big = calloc(1, SFS_XATTR_VALUE_MAX + 1);
	char name[SFS_XATTR_NAME_MAX + 2], list[64];
	size_t len;

	REQUIRE(big);
	CHECK_EQ(sfs_xattr_get(&x, "a", &v, &len), -ENODATA);
	CHECK_EQ(sfs_xattr_list(&x, "user.", NULL, 0), 0);
	CHECK_EQ(sfs_xattr_del(&x, "a"), -ENODATA);
	CHECK_EQ(sfs_xattr_set(&x, "a", "1", 1, 0, 5), 0);
	CHECK_EQ(sfs_xattr_set(&x, "bc", "", 0, 0, 5), 0);
	CHECK_EQ(x.count, 2);
	CHECK_EQ(x.len, sizeof(golden_plain) / 2);
	CHECK_HEX(x.plain, golden_plain, sizeof(golden_plain) / 2);
	CHECK_EQ(sfs_xattr_get(&x, "a", &v, &len), 0);
	CHECK_EQ(len, 1);
	CHECK_MEM(v, "1", 1);
	CHECK_EQ(sfs_xattr_get(&x, "bc", &v, &len), 0);
	CHECK_EQ(len, 0);
	CHECK_EQ(sfs_xattr_get(&x, "b", &v, &len), -ENODATA);

	/* Flags as setxattr(2): CREATE on a present name, REPLACE on an absent one. */
	CHECK_EQ(sfs_xattr_set(&x, "a", "2", 1, SFS_XATTR_CREATE, 5), -EEXIST);
	CHECK_EQ(sfs_xattr_set(&x, "z", "2", 1, SFS_XATTR_REPLACE, 5), -ENODATA);
	CHECK_EQ(x.count, 2);
	/* Replaced in place: the order stays. Binary values with NULs are fine. */
	CHECK_EQ(sfs_xattr_set(&x, "a", "\0\xff\0", 3, SFS_XATTR_REPLACE, 5), 0);
	CHECK_EQ(sfs_xattr_get(&x, "a", &v, &len), 0);
	CHECK_EQ(len, 3);
	CHECK_MEM(v, "\0\xff\0", 3);

	/* The list, with the prefix; size 0 asks the size; too small is ERANGE. */
	CHECK_EQ(sfs_xattr_list(&x, "user.", NULL, 0), 15);
	CHECK_EQ(sfs_xattr_list(&x, "user.", list, 14), -ERANGE);
	CHECK_EQ(sfs_xattr_list(&x, "user.", list, sizeof(list)), 15);
	CHECK_MEM(list, "user.a\0user.bc", 15);

	/* Names of 1..255 bytes, values up to 64 KiB. */
	CHECK_EQ(sfs_xattr_set(&x, "", "1", 1, 0, 5), -EINVAL);
	memset(name, 'n', sizeof(name));
	name[SFS_XATTR_NAME_MAX + 1] = '\0';
	CHECK_EQ(sfs_xattr_set(&x, name, "1", 1, 0, 5), -ERANGE);
	name[SFS_XATTR_NAME_MAX] = '\0';
	CHECK_EQ(sfs_xattr_set(&x, name, "1", 1, 0, 5), 0);
	CHECK_EQ(sfs_xattr_set(&x, "big", big, SFS_XATTR_VALUE_MAX + 1, 0, 5), -E2BIG);
	CHECK_EQ(sfs_xattr_set(&x, "big", big, SFS_XATTR_VALUE_MAX, 0, 5), 0);
	/* A second 64 KiB value passes the node's total: ENOSPC, nothing changed. */
	len = x.len;
	CHECK_EQ(sfs_xattr_set(&x, "big2", big, SFS_XATTR_VALUE_MAX, 0, 5), -ENOSPC);
	CHECK_EQ(x.len, len);
	CHECK_EQ(x.count, 4);

	CHECK_EQ(sfs_xattr_del(&x, name), 0);
	CHECK_EQ(sfs_xattr_del(&x, "big"), 0);
	CHECK_EQ(sfs_xattr_del(&x, "big"), -ENODATA);
	CHECK_EQ(sfs_xattr_del(&x, "a"), 0);
	CHECK_EQ(x.count, 1);
	CHECK_EQ(sfs_xattr_list(&x, "user.", list, sizeof(list)), 8);
	CHECK_MEM(list, "user.bc", 8);
	CHECK_EQ(sfs_xattr_del(&x, "bc"), 0);
	CHECK_EQ(x.count, 0);
	CHECK(x.plain == NULL);

	/* The list of names must fit a listxattr reply (64 KiB). */
	for (int i = 0; i < 1000; i++) {
		int rc;

		snprintf(name, sizeof(name), "%0250d", i);
		rc = sfs_xattr_set(&x, name, "", 0, 0, 5);
		if (rc == -ENOSPC) {
			CHECK(sfs_xattr_list(&x, "user.", NULL, 0) + 5 + 251 > SFS_XATTR_LIST_MAX);
			break;
		}
		CHECK_EQ(rc, 0);
	}
	CHECK(sfs_xattr_list(&x, "user.", NULL, 0) <= SFS_XATTR_LIST_MAX);
	sfs_xattrs_free(&x);
	sfs_xattrs_free(&x); /* twice is fine */
	free(big);
}

static void test_blob(void)
{
	unsigned char blob[GOLDEN_BYTES], mine[GOLDEN_BYTES], other[SFS_ID_BYTES], master[32];
	struct sfs_xattrs x = {0}, y = {0};
	struct sfs_keys *keys2;

	/* The fixed blob opens to the fixed plaintext. */
	unhex(blob, golden_blob, sizeof(blob));
	CHECK_EQ(sfs_xattr_open(&x, blob, sizeof(blob), node_id, keys), 0);
	CHECK_EQ(x.count, 2);
	CHECK_EQ(x.len, sizeof(golden_plain) / 2);
	CHECK_HEX(x.plain, golden_plain, sizeof(golden_plain) / 2);

	/* A fresh seal: same header and size, fresh nonce, same plaintext. */
	CHECK_EQ(sfs_xattr_blob_len(&x), GOLDEN_BYTES);
	sfs_xattr_seal(mine, &x, node_id, keys);
	CHECK_HEX(mine, "534653580100", 6);
	CHECK(memcmp(mine + 6, blob + 6, SFS_NONCE_BYTES) != 0);
	CHECK_EQ(sfs_xattr_open(&y, mine, sizeof(mine), node_id, keys), 0);
	CHECK_EQ(y.len, x.len);
	CHECK_MEM(y.plain, x.plain, x.len);

	/* Every byte counts: magic (EUCLEAN), version (EPROTONOSUPPORT), the rest (EBADMSG). */
	for (size_t i = 0; i < sizeof(blob); i++) {
		int want = -EBADMSG;

		if (i < 4)
			want = -EUCLEAN;
		else if (i < 6)
			want = -EPROTONOSUPPORT;
		blob[i] ^= 0x01;
		CHECK_EQ(sfs_xattr_open(&y, blob, sizeof(blob), node_id, keys), want);
		CHECK(y.plain == NULL && y.count == 0);
		blob[i] ^= 0x01;
	}
	/* Another node's blob, a cut one, an unknown version, another session's key. */
	memcpy(other, node_id, sizeof(other));
	other[15] ^= 0x80;
	CHECK_EQ(sfs_xattr_open(&y, blob, sizeof(blob), other, keys), -EBADMSG);
	CHECK_EQ(sfs_xattr_open(&y, blob, sizeof(blob) - 1, node_id, keys), -EBADMSG);
	CHECK_EQ(sfs_xattr_open(&y, blob, SFS_XATTR_OVERHEAD + 3, node_id, keys), -EUCLEAN);
	CHECK_EQ(sfs_xattr_open(&y, blob, 5, node_id, keys), -EUCLEAN);
	blob[4] = 2;
	CHECK_EQ(sfs_xattr_open(&y, blob, sizeof(blob), node_id, keys), -EPROTONOSUPPORT);
	blob[4] = 1;
	fixed_master(master);
	master[0] ^= 1;
	keys2 = sfs_keys_new(master, SFS_CIPHER_XCHACHA);
	REQUIRE(keys2);
	CHECK_EQ(sfs_xattr_open(&y, blob, sizeof(blob), node_id, keys2), -EBADMSG);
	sfs_keys_free(keys2);
	CHECK_EQ(sfs_xattr_open(&y, blob, sizeof(blob), node_id, keys), 0);
	sfs_xattrs_free(&x);
	sfs_xattrs_free(&y);
}

static void test_header_id(void)
{
	struct sfs_attrs a = {0100600, 0, 0, 0, 0};
	unsigned char h[SFS_HDR_BYTES], id[SFS_ID_BYTES];

	sfs_fmt_header_pack(h, SFS_MAGIC_FILE, node_id, &a, keys);
	CHECK_EQ(sfs_fmt_header_id(h, SFS_HDR_AD_BYTES, id), 0);
	CHECK_MEM(id, node_id, SFS_ID_BYTES);
	sfs_fmt_header_pack(h, SFS_MAGIC_DIR, node_id, &a, keys);
	CHECK_EQ(sfs_fmt_header_id(h, sizeof(h), id), 0);
	CHECK_EQ(sfs_fmt_header_id(h, SFS_HDR_AD_BYTES - 1, id), -EUCLEAN);
	h[0] = 'X';
	CHECK_EQ(sfs_fmt_header_id(h, sizeof(h), id), -EUCLEAN);
}

static void test_files(void)
{
	char root[] = "/tmp/sfs-unit-xattr-XXXXXX", hex[2 * SFS_ID_BYTES + 1], path[128];
	struct sfs_xattrs x = {0}, y = {0};
	const unsigned char *v;
	unsigned char other[SFS_ID_BYTES];
	struct stat st;
	size_t len;
	int rootfd, fd;

	REQUIRE(mkdtemp(root));
	rootfd = open(root, O_PATH | O_DIRECTORY);
	REQUIRE(rootfd >= 0);
	sfs_xattr_blob_name(hex, node_id);
	CHECK_STR(hex, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");

	/* Nothing stored yet: an empty set, no .sfsx; removing nothing is fine. */
	CHECK(!sfs_xattr_present(rootfd));
	CHECK_EQ(sfs_xattr_load(rootfd, node_id, keys, &y), 0);
	CHECK_EQ(y.count, 0);
	CHECK_EQ(sfs_xattr_remove(rootfd, node_id), 0);
	CHECK_EQ(sfs_xattr_sweep(rootfd), 0);

	CHECK_EQ(sfs_xattr_set(&x, "note", "secret", 6, 0, 5), 0);
	CHECK_EQ(sfs_xattr_store(rootfd, node_id, keys, &x), 0);
	CHECK(sfs_xattr_present(rootfd));
	snprintf(path, sizeof(path), "%s/.sfsx", root);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
	snprintf(path, sizeof(path), "%s/.sfsx/%s", root, hex);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600);
	CHECK_EQ(st.st_size, SFS_XATTR_OVERHEAD + 4 + 5 + 4 + 6);
	CHECK_EQ(sfs_xattr_load(rootfd, node_id, keys, &y), 0);
	CHECK_EQ(sfs_xattr_get(&y, "note", &v, &len), 0);
	CHECK_EQ(len, 6);
	CHECK_MEM(v, "secret", 6);

	/* Another node's name on this blob fails: it is bound to its node. */
	memcpy(other, node_id, sizeof(other));
	other[0] ^= 0xff;
	{
		char opath[128], ohex[2 * SFS_ID_BYTES + 1];

		sfs_xattr_blob_name(ohex, other);
		snprintf(opath, sizeof(opath), "%s/.sfsx/%s", root, ohex);
		CHECK(link(path, opath) == 0);
		CHECK_EQ(sfs_xattr_load(rootfd, other, keys, &y), -EBADMSG);
		CHECK_EQ(sfs_xattr_remove(rootfd, other), 0);
		CHECK(access(opath, F_OK) < 0);
	}

	/* An oversized file is no blob. */
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && ftruncate(fd, SFS_XATTR_OVERHEAD + SFS_XATTR_PLAIN_MAX + 1) == 0);
	close(fd);
	CHECK_EQ(sfs_xattr_load(rootfd, node_id, keys, &y), -EUCLEAN);
	CHECK_EQ(sfs_xattr_store(rootfd, node_id, keys, &x), 0);
	CHECK_EQ(sfs_xattr_load(rootfd, node_id, keys, &y), 0);
	CHECK_EQ(y.count, 1);

	/* A crash's temporary is swept; the blob stays. */
	snprintf(path, sizeof(path), "%s/.sfsx/.tmp.%s.1.0", root, hex);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(sfs_xattr_sweep(rootfd), 1);
	CHECK(access(path, F_OK) < 0);
	CHECK_EQ(sfs_xattr_load(rootfd, node_id, keys, &y), 0);
	CHECK_EQ(y.count, 1);

	/* The last attribute removed: the blob goes. */
	CHECK_EQ(sfs_xattr_del(&x, "note"), 0);
	CHECK_EQ(sfs_xattr_store(rootfd, node_id, keys, &x), 0);
	snprintf(path, sizeof(path), "%s/.sfsx/%s", root, hex);
	CHECK(access(path, F_OK) < 0);
	CHECK_EQ(sfs_xattr_load(rootfd, node_id, keys, &y), 0);
	CHECK_EQ(y.count, 0);

	CHECK_EQ(sfs_xattr_set(&x, "k", "v", 1, 0, 5), 0);
	CHECK_EQ(sfs_xattr_store(rootfd, node_id, keys, &x), 0);
	CHECK_EQ(sfs_xattr_remove(rootfd, node_id), 0);
	CHECK(access(path, F_OK) < 0);

	sfs_xattrs_free(&x);
	sfs_xattrs_free(&y);
	close(rootfd);
	snprintf(path, sizeof(path), "%s/.sfsx", root);
	CHECK(rmdir(path) == 0);
	CHECK(rmdir(root) == 0);
}

/* Seal the plaintext @hex (count and entries) for node_id and open it into @x. */
static int open_sealed(const char *hex, struct sfs_xattrs *x)
{
	unsigned char plain[64], blob[SFS_XATTR_OVERHEAD + 64];
	struct sfs_xattrs in = {.plain = plain, .len = strlen(hex) / 2};

	REQUIRE(in.len <= sizeof(plain));
	unhex(plain, hex, in.len);
	sfs_xattr_seal(blob, &in, node_id, keys);
	return sfs_xattr_open(x, blob, SFS_XATTR_OVERHEAD + in.len, node_id, keys);
}

/*
 * Plaintexts no writer makes, sealed with the right key: refused (EUCLEAN).
 * A name twice (fuzz_xattr found it: a sfs_xattr_del left the second, so
 * the name outlived its removal); a count larger than the entries could be.
 */
static void test_plain_refused(void)
{
	struct sfs_xattrs x = {0};

	/* count 2: "a1" = "x", then "a1" = "y" */
	CHECK_EQ(open_sealed("02000000"
			     "0201000000613178"
			     "0201000000613179",
			     &x),
		 -EUCLEAN);
	CHECK(x.plain == NULL && x.count == 0);
	/* count 2: "a1" = "x", then "a2" = "y": the same length, another name */
	CHECK_EQ(open_sealed("02000000"
			     "0201000000613178"
			     "0201000000613279",
			     &x),
		 0);
	CHECK_EQ(x.count, 2);
	CHECK_EQ(sfs_xattr_del(&x, "a1"), 0);
	CHECK_EQ(sfs_xattr_del(&x, "a1"), -ENODATA);
	sfs_xattrs_free(&x);
	/*
	 * A count of 2^32 - 1 entries in 20 bytes: refused before the name
	 * table is allocated for it (64 GiB, which fails: ENOMEM, not EUCLEAN).
	 */
	CHECK_EQ(open_sealed("ffffffff"
			     "0201000000613178"
			     "0201000000613279",
			     &x),
		 -EUCLEAN);
	CHECK(x.plain == NULL);
}

int main(void)
{
	keys = fixed_keys();
	for (int i = 0; i < SFS_ID_BYTES; i++)
		node_id[i] = (unsigned char)(0xf0 ^ i);
	test_edit();
	test_blob();
	test_plain_refused();
	test_header_id();
	test_files();
	sfs_keys_free(keys);
	return check_done();
}
