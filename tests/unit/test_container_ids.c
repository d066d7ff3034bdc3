/*
 * test_container_ids.c - a store's containers by id (lib/session.c) on a
 * temporary store: the width of a new random id as the store fills (fixed
 * table), the shape of random ids, creating a session with a chosen id
 * (taken in sessions/ or archive/: -EEXIST, nothing made; no session id:
 * -EINVAL) or a random one; where a container is, finding it, listing the
 * valid ids of both top directories, its session root. And when
 * metadata.json's "updated" is due (lib/metadata.c, fixed table).
 */
#include "check.h"
#include "metadata.h"
#include "session.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define PW "correct horse"

static char top[] = "/tmp/sfs-unit-ids-XXXXXX";
static int topfd[2] = {-1, -1}; /* STORE/sessions, STORE/archive */

static void test_width(void)
{
	static const struct {
		size_t n;
		int width;
	} cases[] = {
		{0, 4},
		{1, 4},
		{4095, 4},
		{4096, 5},
		{65535, 5},
		{65536, 6},
		{1048575, 6},
		{1048576, 7},
		{(size_t)1 << 60, 16},
		{(size_t)1 << 62, 16},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_EQ(sfs_session_id_width(cases[i].n), cases[i].width);
}

static void test_random(void)
{
	char id[SFS_SESSION_ID_MAX + 1], first[SFS_SESSION_ID_MAX + 1];
	int same = 0;

	sfs_session_id_random(first, 0);
	for (int i = 0; i < 64; i++) {
		sfs_session_id_random(id, 0);
		CHECK(sfs_id_valid(id));
		CHECK_EQ(strlen(id), 4 + 4);
		CHECK(strncmp(id, "INC-", 4) == 0);
		same += strcmp(id, first) == 0;
		sfs_session_id_random(id, 70000);
		CHECK(sfs_id_valid(id));
		CHECK_EQ(strlen(id), 4 + 6);
	}
	CHECK(same < 64); /* random, not one fixed id */
	sfs_session_id_random(id, (size_t)1 << 62);
	CHECK(sfs_id_valid(id));
	CHECK_EQ(strlen(id), SFS_SESSION_ID_MAX);
}

/* The ids sfs_container_foreach gives, "where:id" joined by spaces, in order of the call. */
static void collect(const char *id, int where, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 512 - n, "%s%d:%s", n ? " " : "", where, id);
}

static void test_create_find(void)
{
	struct sfs_new_session ns = {
		.id = "INC-ffff", /* ignored */
		.name = "ids",
		.password = PW,
		.pwlen = strlen(PW),
		.kdf = SFS_KDF_INTERACTIVE,
		.cipher = SFS_CIPHER_XCHACHA,
		.uid = getuid(),
		.gid = getgid(),
	};
	struct sfs_container_key k = {.lockfd = -1};
	char id[SFS_SESSION_ID_MAX + 1] = "", gen[SFS_SESSION_ID_MAX + 1] = "", seen[512] = "";
	struct stat st;
	int fd, rootfd;

	/* A chosen id: made in sessions/, unlocked into @k. */
	CHECK_EQ(sfs_container_create_new(topfd, "INC-abcd", &ns, id, &k), 0);
	CHECK_STR(id, "INC-abcd");
	CHECK(k.keys != NULL && k.lockfd >= 0);
	sfs_container_key_drop(&k);
	CHECK(fstatat(topfd[0], "INC-abcd", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode));
	CHECK(fstatat(topfd[0], "INC-ffff", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);

	/* Taken: in sessions/, or in archive/ (nothing made in sessions/). */
	memset(id, 0, sizeof(id));
	CHECK_EQ(sfs_container_create_new(topfd, "INC-abcd", &ns, id, &k), -EEXIST);
	REQUIRE(mkdirat(topfd[1], "INC-beef", 0700) == 0);
	CHECK_EQ(sfs_container_create_new(topfd, "INC-beef", &ns, id, &k), -EEXIST);
	CHECK(fstatat(topfd[0], "INC-beef", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
	/* No session id. */
	CHECK_EQ(sfs_container_create_new(topfd, "INC-ABCD", &ns, id, &k), -EINVAL);
	CHECK_EQ(sfs_container_create_new(topfd, "../INC-abcd", &ns, id, &k), -EINVAL);
	CHECK_EQ(sfs_container_create_new(topfd, "", &ns, id, &k), -EINVAL);
	CHECK_STR(id, "");
	CHECK(k.keys == NULL && k.lockfd == -1);

	/* A random id: 4 digits in a store this small, a new container. */
	CHECK_EQ(sfs_container_create_new(topfd, NULL, &ns, gen, &k), 0);
	CHECK(sfs_id_valid(gen) && strlen(gen) == 8);
	CHECK(strcmp(gen, "INC-abcd") != 0 && strcmp(gen, "INC-beef") != 0);
	CHECK(k.keys != NULL && k.lockfd >= 0);
	sfs_container_key_drop(&k);
	CHECK(fstatat(topfd[0], gen, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode));

	/* Where each is; found wherever it is. */
	CHECK_EQ(sfs_container_where(topfd, "INC-abcd"), 0);
	CHECK_EQ(sfs_container_where(topfd, gen), 0);
	CHECK_EQ(sfs_container_where(topfd, "INC-beef"), 1);
	CHECK_EQ(sfs_container_where(topfd, "INC-0000"), -ENOENT);
	fd = sfs_container_find(topfd, "INC-beef");
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode));
	if (fd >= 0)
		close(fd);
	CHECK_EQ(sfs_container_find(topfd, "INC-0000"), -ENOENT);

	/* Listed: valid ids only, sessions/ first. */
	REQUIRE(mkdirat(topfd[0], ".del-INC-0001-1", 0700) == 0);
	REQUIRE(mkdirat(topfd[1], "notes", 0700) == 0);
	sfs_container_foreach(topfd, collect, seen);
	{
		char want1[512], want2[512];

		snprintf(want1, sizeof(want1), "0:INC-abcd 0:%s 1:INC-beef", gen);
		snprintf(want2, sizeof(want2), "0:%s 0:INC-abcd 1:INC-beef", gen);
		CHECK(strcmp(seen, want1) == 0 || strcmp(seen, want2) == 0);
		if (strcmp(seen, want1) != 0 && strcmp(seen, want2) != 0)
			fprintf(stderr, "listed: %s\n", seen);
	}
	/* ...and counted for the width: the store still takes 4 digits. */
	CHECK_EQ(sfs_container_create_new(topfd, NULL, &ns, gen, &k), 0);
	CHECK(sfs_id_valid(gen) && strlen(gen) == 8);
	sfs_container_key_drop(&k);

	/* The session root: the made container has one, a bare directory none. */
	fd = sfs_container_find(topfd, "INC-abcd");
	REQUIRE(fd >= 0);
	rootfd = sfs_container_rootfd(fd);
	CHECK(rootfd >= 0 && fstat(rootfd, &st) == 0 && S_ISDIR(st.st_mode));
	if (rootfd >= 0)
		close(rootfd);
	close(fd);
	fd = sfs_container_find(topfd, "INC-beef");
	REQUIRE(fd >= 0);
	CHECK_EQ(sfs_container_rootfd(fd), -ENOENT);
	close(fd);
}

static void test_touch_due(void)
{
	static const struct {
		long long last, first, now;
		bool force, due;
	} cases[] = {
		{0, 0, 1000, false, false},	  /* nothing pending */
		{0, 0, 1000, true, false},	  /* ... not even when forced */
		{1000, 1000, 1000, false, false}, /* a change this second: wait */
		{1000, 1000, 1000, true, true},	  /* forced (lock) */
		{1000, 1000, 1001, false, true},  /* settled for a second */
		{1003, 1000, 1003, false, false}, /* changes going on, 3 s */
		{1004, 1000, 1004, false, false}, /* ... 4 s */
		{1005, 1000, 1005, false, true},  /* ... 5 s: written anyway */
		{1009, 1000, 1009, false, true},
		{1004, 0, 1004, false, true}, /* first not yet set: its 0 is long ago */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool due = sfs_metadata_touch_due(cases[i].last, cases[i].first, cases[i].now,
						  cases[i].force);

		if (due != cases[i].due)
			fprintf(stderr, "touch_due case %zu\n", i);
		CHECK_EQ(due, cases[i].due);
	}
}

int main(void)
{
	struct sfs_store_config cfg;
	char store[600], why[256];
	int storefd;

	REQUIRE(sfs_crypto_init() == 0);
	test_width();
	test_random();
	test_touch_due();
	REQUIRE(mkdtemp(top));
	snprintf(store, sizeof(store), "%s/store", top);
	REQUIRE(sfs_store_create(store, SFS_KDF_INTERACTIVE, SFS_CIPHER_XCHACHA, why,
				 sizeof(why)) == 0);
	REQUIRE(sfs_store_open(store, &storefd, &cfg, why, sizeof(why)) == 0);
	topfd[0] = openat(storefd, SFS_SESSIONS_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	topfd[1] = openat(storefd, SFS_ARCHIVE_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(topfd[0] >= 0 && topfd[1] >= 0);
	test_create_find();
	close(topfd[0]);
	close(topfd[1]);
	close(storefd);
	CHECK_EQ(sfs_remove_tree(AT_FDCWD, top), 0);
	return check_done();
}
