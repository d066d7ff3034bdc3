/*
 * test_tree.c - the namespace transactions (lib/tree_ops.c) on a temporary
 * backing directory, without FUSE, under a fixed key: file nodes (regular,
 * FIFO), directories, symlinks (both forms), links, unlink, rmdir and
 * rename (short and long names on both sides, over an existing node, over
 * an empty directory, NOREPLACE, EXCHANGE). After each, every name reads
 * back (sfs_tree_name_read) as the one given, headers load, and nothing
 * internal is left; a crash between the steps (the steps called by hand)
 * leaves only what the sweep and the reap recognise.
 */
#include "check.h"
#include "fileio.h"
#include "symlink.h"
#include "tree.h"
#include "tree_ops.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static struct sfs_keys *keys;
static const unsigned char rootid[SFS_ID_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static char base[] = "/tmp/sfs-unit-tree-XXXXXX";
static int root; /* O_PATH descriptor of the encrypted test directory */

/* What the hooks saw. */
static char victim_seen[SFS_NAME_MAX + 1];
static int victims, warnings;

static void on_victim(void *arg, int dirfd, const char *backing)
{
	(void)arg;
	(void)dirfd;
	snprintf(victim_seen, sizeof(victim_seen), "%s", backing);
	victims++;
}

static void on_warn(void *arg, int what, const char *name, const char *other, int rc)
{
	(void)arg;
	fprintf(stderr, "warn %d %s %s %d\n", what, name ? name : "-", other ? other : "-", rc);
	warnings++;
}

static const struct sfs_tree_hooks hooks = {on_victim, on_warn, NULL};

static void long_name(char *out, char c)
{
	memset(out, c, SFS_NAME_MAX);
	out[SFS_NAME_MAX] = '\0';
}

static bool is_long(const char *name)
{
	char b[SFS_NAME_MAX + 1];

	REQUIRE(sfs_tree_backing(b, name, rootid, keys) == 0);
	return sfs_fmt_name_class(b) == SFS_NAME_LONG;
}

/*
 * Count what directory @dir (id @dirid) holds: nodes, each checked to read
 * back (sfs_tree_name_read), in *@nodes; internal names (.sfs-*) in
 * *@internal; sidecars whose node is gone in *@orphans.
 */
static void listing(int dir, const unsigned char *dirid, int *nodes, int *internal, int *orphans)
{
	int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fdopendir(fd);
	struct dirent *de;
	char name[SFS_NAME_MAX + 1], node[SFS_NAME_MAX + 1];

	REQUIRE(d);
	*nodes = *internal = *orphans = 0;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, SFS_DIRHDR_NAME))
			continue;
		switch (sfs_fmt_name_class(de->d_name)) {
		case SFS_NAME_SHORT:
		case SFS_NAME_LONG:
			CHECK_EQ(sfs_tree_name_read(dirfd(d), de->d_name, dirid, keys, name), 0);
			(*nodes)++;
			break;
		case SFS_NAME_SIDECAR:
			snprintf(node, sizeof(node), "%.*s", (int)(strlen(de->d_name) - 2),
				 de->d_name);
			if (faccessat(dirfd(d), node, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
				(*orphans)++;
			break;
		default:
			(*internal)++;
			break;
		}
	}
	closedir(d);
}

/* The directory holds @want nodes, each name decrypting, and nothing else. */
static void check_clean(int want)
{
	int nodes, internal, orphans;

	listing(root, rootid, &nodes, &internal, &orphans);
	CHECK_EQ(nodes, want);
	CHECK_EQ(internal, 0);
	CHECK_EQ(orphans, 0);
}

/* @name exists in the root and reads back as itself. */
static void check_name(const char *name, bool want)
{
	char b[SFS_NAME_MAX + 1], out[SFS_NAME_MAX + 1];

	REQUIRE(sfs_tree_backing(b, name, rootid, keys) == 0);
	if (!want) {
		CHECK(faccessat(root, b, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
		return;
	}
	CHECK_EQ(sfs_tree_name_read(root, b, rootid, keys, out), 0);
	CHECK_STR(out, name);
}

static void test_mknod(void)
{
	struct sfs_attrs a = {.mode = S_IFREG | 0640, .uid = 7, .gid = 8}, got;
	struct sfs_attrs fifo = {.mode = S_IFIFO | 0600};
	unsigned char id[SFS_ID_BYTES];
	char lname[SFS_NAME_MAX + 1];
	struct sfs_tree_new n;
	struct stat st;

	CHECK_EQ(sfs_tree_mknod(root, rootid, "file", &a, keys, &n), 0);
	CHECK(n.has_id);
	CHECK_EQ(sfs_file_read_header(n.fd, id, &got, keys), 0);
	CHECK_MEM(id, n.id, SFS_ID_BYTES);
	CHECK_EQ(got.mode, a.mode);
	CHECK_EQ(got.uid, 7);
	REQUIRE(fstat(n.fd, &st) == 0);
	CHECK(sfs_file_header_only((uint64_t)st.st_size));
	CHECK_EQ(sfs_tree_node_id(root, n.en.backing, S_IFREG, id), 0);
	CHECK_MEM(id, n.id, SFS_ID_BYTES);
	close(n.fd);
	check_name("file", true);

	/* A long name: the sidecar is there before the node, and reads back. */
	long_name(lname, 'f');
	CHECK(is_long(lname));
	CHECK_EQ(sfs_tree_mknod(root, rootid, lname, &fifo, keys, &n), 0);
	CHECK(n.en.is_long);
	CHECK_EQ(sfs_file_read_header(n.fd, id, &got, keys), 0);
	CHECK_EQ(got.mode, S_IFIFO | 0600);
	close(n.fd);
	check_name(lname, true);

	/* Taken names: -EEXIST, nothing left behind, the sidecar kept. */
	CHECK_EQ(sfs_tree_mknod(root, rootid, "file", &a, keys, &n), -EEXIST);
	CHECK_EQ(sfs_tree_mknod(root, rootid, lname, &a, keys, &n), -EEXIST);
	check_name(lname, true);
	CHECK_EQ(sfs_tree_mknod(root, rootid, "", &a, keys, &n), -EINVAL);
	check_clean(2);

	/* Undo: as if never made. */
	CHECK_EQ(sfs_tree_mknod(root, rootid, "undone", &a, keys, &n), 0);
	close(n.fd);
	sfs_tree_undo(root, &n);
	check_name("undone", false);
	check_clean(2);
}

static void test_mkdir(void)
{
	struct sfs_attrs a = {.mode = S_IFDIR | 0750}, got;
	unsigned char id[SFS_ID_BYTES];
	char lname[SFS_NAME_MAX + 1];
	struct sfs_tree_new n;

	CHECK_EQ(sfs_tree_mkdir(root, rootid, "dir", &a, keys, &n), 0);
	CHECK_EQ(sfs_tree_dir_load(n.fd, id, &got, keys), 0);
	CHECK_MEM(id, n.id, SFS_ID_BYTES);
	CHECK_EQ(got.mode, a.mode);
	CHECK_EQ(sfs_tree_node_id(root, n.en.backing, S_IFDIR, id), 0);
	CHECK_MEM(id, n.id, SFS_ID_BYTES);
	close(n.fd);
	long_name(lname, 'd');
	CHECK_EQ(sfs_tree_mkdir(root, rootid, lname, &a, keys, &n), 0);
	CHECK_EQ(sfs_tree_dir_load(n.fd, id, &got, keys), 0);
	close(n.fd);
	check_name("dir", true);
	check_name(lname, true);
	CHECK_EQ(sfs_tree_mkdir(root, rootid, "dir", &a, keys, &n), -EEXIST);
	check_clean(4);
}

static void test_symlink_link(void)
{
	struct sfs_attrs a = {.mode = S_IFLNK | 0777, .uid = getuid(), .gid = getgid()};
	char target[SFS_SYMLINK_LONG_MAX + 2], out[PATH_MAX];
	char lname[SFS_NAME_MAX + 1];
	struct sfs_tree_new n, l;
	struct stat st;
	size_t len;

	CHECK_EQ(sfs_tree_symlink(root, rootid, "short", "../some/where", &a, keys, &hooks, &n), 0);
	CHECK(!n.has_id);
	CHECK_EQ(sfs_symlink_read_short(n.fd, out, keys), 0);
	CHECK_STR(out, "../some/where");
	close(n.fd);

	/* A long target: a file node holding it; under a long name too. */
	memset(target, 't', SFS_SYMLINK_LONG_MAX);
	target[SFS_SYMLINK_LONG_MAX] = '\0';
	long_name(lname, 's');
	CHECK_EQ(sfs_tree_symlink(root, rootid, lname, target, &a, keys, &hooks, &n), 0);
	CHECK(n.has_id);
	CHECK_EQ(sfs_symlink_read_long(n.fd, n.id, out, &len, keys), 0);
	CHECK_EQ(len, SFS_SYMLINK_LONG_MAX);
	check_name(lname, true);

	/* A second name for it, long on one side and short on the other. */
	CHECK_EQ(sfs_tree_link(root, rootid, "second", n.fd, keys, &l), 0);
	REQUIRE(fstat(l.fd, &st) == 0);
	CHECK_EQ(st.st_nlink, 2);
	close(l.fd);
	close(n.fd);
	check_name("second", true);

	memset(target, 't', sizeof(target) - 1);
	target[sizeof(target) - 1] = '\0';
	CHECK_EQ(sfs_tree_symlink(root, rootid, "x", target, &a, keys, &hooks, &n), -ENAMETOOLONG);
	CHECK_EQ(warnings, 0);
	check_clean(7);
}

static void test_unlink_rmdir(void)
{
	char lname[SFS_NAME_MAX + 1], b[SFS_NAME_MAX + 1];
	struct stat st;

	long_name(lname, 's');
	victims = 0;
	CHECK_EQ(sfs_tree_unlink(root, rootid, lname, keys, &hooks, &st), 0);
	CHECK_EQ(victims, 1);
	CHECK_EQ(st.st_nlink, 2);
	REQUIRE(sfs_tree_backing(b, lname, rootid, keys) == 0);
	CHECK_STR(victim_seen, b);
	check_name(lname, false);
	check_name("second", true);
	CHECK_EQ(sfs_tree_unlink(root, rootid, lname, keys, &hooks, &st), -ENOENT);
	CHECK_EQ(sfs_tree_unlink(root, rootid, "second", keys, NULL, &st), 0);
	check_clean(5);

	/* rmdir: a file is ENOTDIR, a long-named empty directory goes whole. */
	CHECK_EQ(sfs_tree_rmdir(root, rootid, "file", keys, &hooks), -ENOTDIR);
	long_name(lname, 'd');
	victims = 0;
	CHECK_EQ(sfs_tree_rmdir(root, rootid, lname, keys, &hooks), 0);
	CHECK_EQ(victims, 1);
	check_name(lname, false);
	CHECK_EQ(warnings, 0);
	check_clean(4);
}

static void test_rename(void)
{
	struct sfs_attrs fa = {.mode = S_IFREG | 0600}, da = {.mode = S_IFDIR | 0700};
	char lname[SFS_NAME_MAX + 1], lname2[SFS_NAME_MAX + 1];
	struct sfs_tree_new n, m;
	struct stat st, was;
	int inner;

	long_name(lname, 'r');
	long_name(lname2, 'q');
	/* short -> long -> long -> short */
	REQUIRE(sfs_tree_mknod(root, rootid, "a", &fa, keys, &n) == 0);
	REQUIRE(fstat(n.fd, &was) == 0);
	close(n.fd);
	CHECK_EQ(sfs_tree_rename(root, rootid, "a", root, rootid, lname, 0, keys, &hooks, &st), 0);
	CHECK_EQ(st.st_ino, was.st_ino);
	check_name("a", false);
	check_name(lname, true);
	CHECK_EQ(sfs_tree_rename(root, rootid, lname, root, rootid, lname2, 0, keys, &hooks, &st),
		 0);
	check_name(lname2, true);
	CHECK_EQ(sfs_tree_rename(root, rootid, lname2, root, rootid, "b", 0, keys, &hooks, &st), 0);
	check_name("b", true);
	check_clean(5);

	/* Onto itself: nothing changes, no victim. */
	victims = 0;
	CHECK_EQ(sfs_tree_rename(root, rootid, "b", root, rootid, "b", 0, keys, &hooks, &st), 0);
	CHECK_EQ(victims, 0);
	check_name("b", true);

	/* Over an existing file, from a long name: the target is the victim. */
	REQUIRE(sfs_tree_mknod(root, rootid, lname, &fa, keys, &n) == 0);
	close(n.fd);
	CHECK_EQ(sfs_tree_rename(root, rootid, lname, root, rootid, "b", RENAME_NOREPLACE, keys,
				 &hooks, &st),
		 -EEXIST);
	check_name(lname, true);
	CHECK_EQ(sfs_tree_rename(root, rootid, lname, root, rootid, "b", 0, keys, &hooks, &st), 0);
	CHECK_EQ(victims, 1);
	check_name(lname, false);
	check_clean(5);

	/* Over a long-named existing file. */
	REQUIRE(sfs_tree_mknod(root, rootid, lname2, &fa, keys, &n) == 0);
	close(n.fd);
	CHECK_EQ(sfs_tree_rename(root, rootid, "b", root, rootid, lname2, 0, keys, &hooks, &st), 0);
	check_name("b", false);
	check_name(lname2, true);
	check_clean(5);

	/* EXCHANGE: both names stay, on each other's nodes. */
	CHECK_EQ(sfs_tree_rename(root, rootid, lname2, root, rootid, "file", RENAME_EXCHANGE, keys,
				 &hooks, &st),
		 0);
	check_name(lname2, true);
	check_name("file", true);
	check_clean(5);

	/* A directory over an empty one (with crash leftovers inside): retired, reaped. */
	REQUIRE(sfs_tree_mkdir(root, rootid, "d1", &da, keys, &n) == 0);
	REQUIRE(sfs_tree_mkdir(root, rootid, "d2", &da, keys, &m) == 0);
	inner = openat(m.fd, ".", O_RDONLY | O_DIRECTORY);
	REQUIRE(inner >= 0);
	REQUIRE(mkdirat(inner, SFS_GONE_PREFIX "0123456789abcdef", 0700) == 0);
	close(inner);
	close(m.fd);
	victims = 0;
	CHECK_EQ(sfs_tree_rename(root, rootid, "d1", root, rootid, "d2", 0, keys, &hooks, &st), 0);
	CHECK_EQ(victims, 1);
	CHECK(S_ISDIR(st.st_mode));
	check_name("d1", false);
	check_name("d2", true);
	check_clean(6);

	/* Over a non-empty one: -ENOTEMPTY, both stay. */
	REQUIRE(sfs_tree_mkdir(root, rootid, "d3", &da, keys, &m) == 0);
	REQUIRE(sfs_tree_mkdir(n.fd, n.id, "inside", &da, keys, &n) == 0);
	close(n.fd);
	CHECK_EQ(sfs_tree_rename(root, rootid, "d3", root, rootid, "d2", 0, keys, &hooks, &st),
		 -ENOTEMPTY);
	check_name("d2", true);
	check_name("d3", true);
	close(m.fd);
	/* A file over a directory: as ext4, EISDIR, and the directory stays. */
	CHECK_EQ(sfs_tree_rename(root, rootid, "file", root, rootid, "d3", 0, keys, &hooks, &st),
		 -EISDIR);
	check_name("d3", true);
	CHECK_EQ(warnings, 0);
	check_clean(7);
}

/*
 * A crash between the steps of a transaction: each leftover is an internal
 * name the session-root sweep (prefix .sfs-new-/.sfs-gone-) or the reap of
 * a retired directory (tree.h) takes, and no node name shows a half-made
 * node.
 */
static void test_crash_leftovers(void)
{
	struct sfs_attrs da = {.mode = S_IFDIR | 0700};
	unsigned char nid[SFS_ID_BYTES] = {42};
	char tmp[SFS_TMPNAME_MAX], gone[SFS_TMPNAME_MAX];
	char lname[SFS_NAME_MAX + 1], b[SFS_NAME_MAX + 1];
	int nodes, internal, orphans, nfd;
	struct sfs_tree_new d, r;
	struct sfs_ename en;

	REQUIRE(sfs_tree_mkdir(root, rootid, "crash", &da, keys, &d) == 0);
	/* A long name's sidecar made durable, then the crash: an orphan sidecar. */
	long_name(lname, 'c');
	REQUIRE(sfs_fmt_name_encrypt(&en, lname, d.id, keys) == 0);
	CHECK_EQ(sfs_tree_name_add(d.fd, &en), 0);
	/* A directory built under its internal name, header and all, never published. */
	sfs_tree_tmpname(tmp);
	CHECK(sfs_tree_has_prefix(tmp, SFS_NEW_PREFIX));
	REQUIRE(mkdirat(d.fd, tmp, 0700) == 0);
	nfd = openat(d.fd, tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(nfd >= 0);
	REQUIRE(sfs_tree_dir_init(nfd, nid, &da, keys) == 0);
	close(nfd);
	/* A directory retired, never reaped. */
	REQUIRE(sfs_tree_mkdir(d.fd, d.id, "retired", &da, keys, &r) == 0);
	close(r.fd);
	REQUIRE(sfs_tree_backing(b, "retired", d.id, keys) == 0);
	CHECK_EQ(sfs_tree_dir_retire(d.fd, b, gone), 0);
	CHECK(sfs_tree_has_prefix(gone, SFS_GONE_PREFIX));

	/* No name shows a node: all three are leftovers. */
	listing(d.fd, d.id, &nodes, &internal, &orphans);
	CHECK_EQ(nodes, 0);
	CHECK_EQ(internal, 2);
	CHECK_EQ(orphans, 1);
	CHECK_EQ(sfs_tree_name_read(d.fd, tmp, d.id, keys, b), -ENOENT);
	CHECK_EQ(sfs_tree_name_read(d.fd, gone, d.id, keys, b), -ENOENT);
	close(d.fd);
	/* The directory holding them is empty to the user: rmdir takes it, leftovers and all. */
	CHECK_EQ(sfs_tree_rmdir(root, rootid, "crash", keys, &hooks), 0);
	check_name("crash", false);
	CHECK_EQ(warnings, 0);
	check_clean(7);
}

static void test_file_helpers(void)
{
	struct sfs_attrs a = {.mode = S_IFREG | 0600};
	uint64_t plain = 1;
	struct sfs_tree_new n;
	struct stat st;

	CHECK_EQ(sfs_file_plain_size(0, &plain), 0);
	CHECK_EQ(plain, 0);
	CHECK_EQ(sfs_file_plain_size(1, &plain), -EBADMSG);
	CHECK(!sfs_file_header_only(0));
	REQUIRE(sfs_tree_mknod(root, rootid, "cut", &a, keys, &n) == 0);
	REQUIRE(pwrite(n.fd, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 40, 4096) == 40);
	CHECK_EQ(sfs_file_cut_content(n.fd), 0);
	REQUIRE(fstat(n.fd, &st) == 0);
	CHECK(sfs_file_header_only((uint64_t)st.st_size));
	CHECK_EQ(sfs_file_plain_size((uint64_t)st.st_size, &plain), 0);
	CHECK_EQ(plain, 0);
	close(n.fd);
	CHECK_EQ(sfs_tree_unlink(root, rootid, "cut", keys, NULL, &st), 0);
}

int main(void)
{
	struct sfs_attrs a = {.mode = S_IFDIR | 0700};

	keys = fixed_keys();
	REQUIRE(mkdtemp(base));
	root = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(root >= 0);
	REQUIRE(sfs_tree_dir_init(root, rootid, &a, keys) == 0);
	test_mknod();
	test_mkdir();
	test_symlink_link();
	test_unlink_rmdir();
	test_rename();
	test_crash_leftovers();
	test_file_helpers();
	close(root);
	sfs_remove_tree(AT_FDCWD, base);
	sfs_keys_free(keys);
	return check_done();
}
