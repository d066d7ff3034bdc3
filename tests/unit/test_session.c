/*
 * test_session.c - session containers: what create leaves on disk (key file,
 * lock, encrypted root with metadata.json and events.jsonl), unlock with
 * right and wrong passwords, the busy lock, release, and passwd; and what
 * unlock prepares (lib/prepare.c): crash leftovers swept, a missing
 * events.jsonl made, one that is not a log refused untouched, a torn tail
 * cut;
 * and how a directory is retired before removal (lib/tree.c).
 */
#include "check.h"
#include "eventlog.h"
#include "fileio.h"
#include "store.h"
#include "tree.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID "INC-3f2a"

static char top[] = "/tmp/sfs-unit-session-XXXXXX";
static int sessfd = -1; /* STORE/sessions */

static int open_container(void)
{
	int fd = openat(sessfd, ID, O_PATH | O_DIRECTORY | O_CLOEXEC);

	REQUIRE(fd >= 0);
	return fd;
}

/* Read the decrypted file @backing of directory @dirfd into a new string. */
static char *read_enc_file(int dirfd, const char *backing, const struct sfs_keys *keys,
			   uint64_t *size)
{
	struct sfs_file f = {.keys = keys};
	struct sfs_attrs a;
	char *text;

	f.fd = openat(dirfd, backing, O_RDWR | O_CLOEXEC);
	REQUIRE(f.fd >= 0);
	CHECK_EQ(sfs_file_read_header(f.fd, f.id, &a, keys), 0);
	CHECK_EQ(a.mode, S_IFREG | 0600);
	CHECK_EQ(a.uid, getuid());
	REQUIRE(sfs_file_size(f.fd, &f.size) == 0);
	text = calloc(1, f.size + 1);
	REQUIRE(text);
	CHECK_EQ(sfs_file_read(&f, text, f.size, 0), f.size);
	*size = f.size;
	close(f.fd);
	return text;
}

static void check_metadata(const char *text)
{
	json_t *doc = json_loads(text, 0, NULL), *tags;
	const char *created;

	REQUIRE(doc && json_is_object(doc));
	CHECK_STR(json_string_value(json_object_get(doc, "id")), ID);
	CHECK_STR(json_string_value(json_object_get(doc, "name")), "db outage");
	CHECK_STR(json_string_value(json_object_get(doc, "status")), "active");
	created = json_string_value(json_object_get(doc, "created"));
	CHECK(created && strlen(created) == 20 && created[10] == 'T' && created[19] == 'Z');
	CHECK_STR(json_string_value(json_object_get(doc, "updated")), created ? created : "");
	tags = json_object_get(doc, "tags");
	CHECK(json_is_array(tags) && json_array_size(tags) == 0);
	json_decref(doc);
}

/* The container on disk, read with nothing but the keys. */
static void check_layout(const struct sfs_keys *keys)
{
	int cfd = open_container(), rootfd, dfd, seen_meta = 0, seen_events = 0, others = 0;
	unsigned char dirid[SFS_ID_BYTES];
	struct sfs_attrs a;
	struct dirent *de;
	struct stat st;
	DIR *d;

	CHECK_EQ(fstatat(cfd, SFS_KEY_NAME, &st, 0), 0);
	CHECK_EQ(st.st_size,
		 keys->cipher == SFS_CIPHER_XCHACHA ? SFS_KEYFILE_BYTES : SFS_KEYFILE_V2_BYTES);
	CHECK_EQ(st.st_mode & 07777, 0600);
	CHECK_EQ(fstatat(cfd, SFS_LOCK_NAME, &st, 0), 0);
	CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600);
	CHECK_EQ(fstatat(cfd, SFS_ROOT_NAME, &st, 0), 0);
	CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);

	rootfd = openat(cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(rootfd >= 0);
	CHECK_EQ(sfs_tree_dir_load(rootfd, dirid, &a, keys), 0);
	CHECK_EQ(a.mode, S_IFDIR | 0700);
	dfd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(dfd >= 0 && (d = fdopendir(dfd)));
	while ((de = readdir(d)) != NULL) {
		char name[SFS_NAME_MAX + 1];
		uint64_t size;

		if (de->d_name[0] == '.')
			continue; /* ".", ".." and .sfsdir */
		CHECK_EQ(sfs_fmt_name_class(de->d_name), SFS_NAME_SHORT);
		if (sfs_tree_name_read(rootfd, de->d_name, dirid, keys, name) != 0) {
			others++;
			continue;
		}
		if (strcmp(name, SFS_METADATA_NAME) == 0) {
			char *text = read_enc_file(rootfd, de->d_name, keys, &size);

			check_metadata(text);
			CHECK(size > 0 && text[size - 1] == '\n');
			free(text);
			seen_meta++;
		} else if (strcmp(name, SFS_EVENTS_NAME) == 0) {
			free(read_enc_file(rootfd, de->d_name, keys, &size));
			CHECK_EQ(size, 0);
			seen_events++;
		} else {
			others++;
		}
	}
	closedir(d);
	CHECK_EQ(seen_meta, 1);
	CHECK_EQ(seen_events, 1);
	CHECK_EQ(others, 0);
	CHECK_EQ(fstatat(rootfd, SFS_DIRHDR_NAME, &st, 0), 0);
	CHECK_EQ(st.st_size, SFS_HDR_BYTES);
	close(rootfd);
	close(cfd);
}

/* sessions/ holds exactly the container: no leftover ".new-*" build directory. */
static void check_no_leftovers(void)
{
	int dfd = openat(sessfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	struct dirent *de;
	DIR *d;

	REQUIRE(dfd >= 0 && (d = fdopendir(dfd)));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			CHECK_STR(de->d_name, ID);
			n++;
		}
	closedir(d);
	CHECK_EQ(n, 1);
}

/* The key file's bytes into @kf; its length. */
static size_t read_key(unsigned char kf[SFS_KEYFILE_MAX])
{
	int cfd = open_container();
	ssize_t n = sfs_read_small(cfd, SFS_KEY_NAME, kf, SFS_KEYFILE_MAX);

	CHECK(n == SFS_KEYFILE_BYTES || n == SFS_KEYFILE_V2_BYTES);
	close(cfd);
	return n < 0 ? 0 : (size_t)n;
}

/* A session's life in the store, for a session whose content uses @cipher. */
static void test_sessions(enum sfs_cipher cipher)
{
	struct sfs_new_session ns = {
		.id = ID,
		.name = "db outage",
		.password = "hunter2",
		.pwlen = 7,
		.kdf = SFS_KDF_INTERACTIVE,
		.cipher = cipher,
		.uid = getuid(),
		.gid = getgid(),
	};
	unsigned char content[SFS_KEY_BYTES], kf[SFS_KEYFILE_MAX], kf2[SFS_KEYFILE_MAX];
	struct sfs_keys *keys, *keys2;
	size_t kflen;
	int lock, lock2, cfd;

	CHECK_EQ(sfs_store_session_create(sessfd, &ns, &lock, &keys), 0);
	REQUIRE(keys && lock >= 0);
	CHECK_EQ(keys->cipher, cipher);
	memcpy(content, keys->content, sizeof(content));
	check_layout(keys);
	check_no_leftovers();

	/* The id is taken; a bad id is refused; neither leaves anything behind. */
	CHECK_EQ(sfs_store_session_create(sessfd, &ns, &lock2, &keys2), -EEXIST);
	CHECK(keys2 == NULL && lock2 == -1);
	ns.id = "INC-3F2A";
	CHECK_EQ(sfs_store_session_create(sessfd, &ns, &lock2, &keys2), -EINVAL);
	ns.id = "../x";
	CHECK_EQ(sfs_store_session_create(sessfd, &ns, &lock2, &keys2), -EINVAL);
	ns.id = "INC-beef";
	ns.kdf = 0;
	CHECK_EQ(sfs_store_session_create(sessfd, &ns, &lock2, &keys2), -EINVAL);
	CHECK(keys2 == NULL && lock2 == -1);
	ns.kdf = SFS_KDF_INTERACTIVE;
	check_no_leftovers();

	/* Created means unlocked: another unlock (its own open file description) is busy. */
	cfd = open_container();
	CHECK_EQ(sfs_store_session_unlock(cfd, "hunter2", 7, &lock2, &keys2), -EBUSY);
	CHECK(keys2 == NULL && lock2 == -1);
	sfs_store_session_release(lock);
	sfs_keys_free(keys);

	CHECK_EQ(sfs_store_session_unlock(cfd, "hunter3", 7, &lock2, &keys2), -EKEYREJECTED);
	CHECK(keys2 == NULL && lock2 == -1);
	CHECK_EQ(sfs_store_session_unlock(cfd, "hunter", 6, &lock2, &keys2), -EKEYREJECTED);
	/* A failed unlock holds no lock. */
	CHECK_EQ(sfs_store_session_unlock(cfd, "hunter2", 7, &lock, &keys), 0);
	REQUIRE(keys && lock >= 0);
	CHECK_MEM(keys->content, content, SFS_KEY_BYTES);
	CHECK_EQ(sfs_store_session_unlock(cfd, "hunter2", 7, &lock2, &keys2), -EBUSY);
	check_layout(keys);
	sfs_store_session_release(lock);
	sfs_keys_free(keys);
	sfs_store_session_release(-1);

	/* passwd: a wrong old password changes nothing. */
	kflen = read_key(kf);
	CHECK_EQ(sfs_store_session_passwd(cfd, "nope", 4, "s3cret", 6, NULL), -EKEYREJECTED);
	CHECK_EQ(read_key(kf2), kflen);
	CHECK_MEM(kf2, kf, kflen);
	CHECK_EQ(sfs_store_session_passwd(cfd, "hunter2", 7, "s3cret", 6, NULL), 0);
	CHECK_EQ(read_key(kf2), kflen);
	CHECK(memcmp(kf2, kf, kflen) != 0);
	CHECK_MEM(kf2, kf, 24); /* same magic, version, algorithm and cost */
	if (kflen == SFS_KEYFILE_V2_BYTES)
		CHECK_MEM(kf2 + 40, kf + 40, 4); /* and the same cipher */
	CHECK_EQ(sfs_store_session_unlock(cfd, "hunter2", 7, &lock, &keys), -EKEYREJECTED);
	CHECK_EQ(sfs_store_session_unlock(cfd, "s3cret", 6, &lock, &keys), 0);
	REQUIRE(keys);
	CHECK_MEM(keys->content, content, SFS_KEY_BYTES); /* data key unchanged */
	CHECK_EQ(keys->cipher, cipher);
	check_layout(keys);
	sfs_store_session_release(lock);
	sfs_keys_free(keys);
	close(cfd);

	/* A second session gets other keys. */
	ns.id = "INC-0123456789abcdef";
	ns.name = "";
	CHECK_EQ(sfs_store_session_create(sessfd, &ns, &lock, &keys), 0);
	REQUIRE(keys);
	CHECK(memcmp(keys->content, content, SFS_KEY_BYTES) != 0);
	sfs_store_session_release(lock);
	sfs_keys_free(keys);
}

/* The backing name of events.jsonl in session root @rootfd. */
static void events_name(int rootfd, const struct sfs_keys *keys, struct sfs_ename *en)
{
	unsigned char dirid[SFS_ID_BYTES];
	struct sfs_attrs a;

	REQUIRE(sfs_tree_dir_load(rootfd, dirid, &a, keys) == 0);
	REQUIRE(sfs_fmt_name_encrypt(en, SFS_EVENTS_NAME, dirid, keys) == 0);
}

/* The plaintext of the log at @rootfd/@backing, checked to be a log. */
static void check_log_text(int rootfd, const char *backing, const struct sfs_keys *keys,
			   const char *want)
{
	struct sfs_log l = {.keys = keys};
	struct sfs_attrs a;
	char buf[256];

	l.fd = openat(rootfd, backing, O_RDWR | O_CLOEXEC);
	REQUIRE(l.fd >= 0);
	CHECK_EQ(sfs_file_read_header(l.fd, l.id, &a, keys), 0);
	CHECK_EQ(a.kind, SFS_KIND_LOG);
	CHECK_EQ(a.mode, S_IFREG | 0640);
	CHECK_EQ(sfs_log_load(&l), 0);
	CHECK_EQ(sfs_log_read(&l, buf, sizeof(buf), 0), strlen(want));
	CHECK_MEM(buf, want, strlen(want));
	close(l.fd);
}

static void test_prepare(void)
{
	struct sfs_new_session ns = {
		.id = "INC-abcd",
		.name = "",
		.password = "pw",
		.pwlen = 2,
		.kdf = SFS_KDF_INTERACTIVE,
		.cipher = SFS_CIPHER_XCHACHA,
		.uid = getuid(),
		.gid = getgid(),
	};
	struct sfs_attrs fa = {S_IFREG | 0640, getuid(), getgid(), 0, SFS_KIND_BLOCKS};
	const char *old = "{\"a\":1}\n{\"b\":2}\n";
	struct sfs_file f = {0};
	struct sfs_session_report rep;
	struct sfs_log ev;
	struct sfs_keys *keys;
	struct sfs_ename en;
	int lock, cfd, rootfd, fd;
	struct stat st;

	REQUIRE(sfs_store_session_create(sessfd, &ns, &lock, &keys) == 0);
	cfd = openat(sessfd, ns.id, O_PATH | O_DIRECTORY | O_CLOEXEC);
	rootfd = openat(cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(cfd >= 0 && rootfd >= 0);
	events_name(rootfd, keys, &en);

	/* A fresh session: nothing to do, an empty log. */
	CHECK_EQ(sfs_store_session_prepare(cfd, keys, 0, &ev, &rep), 0);
	CHECK(ev.size == 0 && ev.lines == 0 && ev.end == SFS_HDR_BYTES);
	sfs_log_close(&ev); /* prepare leaves the log open */
	CHECK(!rep.events_created && rep.swept == 0);

	/*
	 * An events.jsonl in the block layout (another file copied over it) is
	 * refused and left as it is, even with valid lines: never converted.
	 */
	REQUIRE(unlinkat(rootfd, en.backing, 0) == 0);
	f.fd = openat(rootfd, en.backing, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	REQUIRE(f.fd >= 0);
	f.keys = keys;
	memset(f.id, 7, sizeof(f.id));
	REQUIRE(sfs_file_init(f.fd, f.id, &fa, keys) == 0);
	REQUIRE(sfs_file_write(&f, old, strlen(old), 0) == (ssize_t)strlen(old));
	REQUIRE(fstat(f.fd, &st) == 0);
	{
		unsigned char before[256], after[256];
		size_t n = (size_t)st.st_size;

		REQUIRE(n <= sizeof(before) && pread(f.fd, before, n, 0) == (ssize_t)n);
		CHECK_EQ(sfs_store_session_prepare(cfd, keys, 0, &ev, &rep), -EUCLEAN);
		CHECK(rep.events_kind == SFS_KIND_BLOCKS && !rep.events_created);
		REQUIRE(fstat(f.fd, &st) == 0);
		CHECK_EQ((size_t)st.st_size, n);
		CHECK(pread(f.fd, after, n, 0) == (ssize_t)n);
		CHECK_MEM(after, before, n);
	}
	close(f.fd);

	/* A log of those lines in its place is taken as it is. */
	REQUIRE(unlinkat(rootfd, en.backing, 0) == 0);
	{
		struct sfs_log l = {.keys = keys, .end = SFS_HDR_BYTES};

		fa.kind = SFS_KIND_LOG;
		l.fd = openat(rootfd, en.backing, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		REQUIRE(l.fd >= 0);
		memset(l.id, 8, sizeof(l.id));
		REQUIRE(sfs_log_create(l.fd, l.id, &fa, keys) == 0);
		REQUIRE(sfs_log_append(&l, old, strlen(old)) == 0);
		close(l.fd);
	}
	CHECK_EQ(sfs_store_session_prepare(cfd, keys, 0, &ev, &rep), 0);
	CHECK(ev.size == strlen(old) && ev.lines == 2);
	sfs_log_close(&ev);
	check_log_text(rootfd, en.backing, keys, old);

	/* Crash leftovers in the root are swept; other internal names are not touched. */
	fd = openat(rootfd, ".sfs-new-0011223344556677", O_WRONLY | O_CREAT, 0600);
	REQUIRE(fd >= 0);
	close(fd);
	REQUIRE(mkdirat(rootfd, ".sfs-new-8899aabbccddeeff", 0700) == 0);
	fd = openat(rootfd, ".sfs-meta-0011223344556677", O_WRONLY | O_CREAT, 0600);
	REQUIRE(fd >= 0);
	close(fd);
	REQUIRE(mkdirat(rootfd, ".sfs-gone-0011223344556677", 0700) == 0); /* a retired dir */
	CHECK_EQ(sfs_store_session_prepare(cfd, keys, 0, &ev, &rep), 0);
	CHECK_EQ(rep.swept, 4);
	sfs_log_close(&ev);
	CHECK(fstatat(rootfd, ".sfs-new-0011223344556677", &st, 0) < 0 && errno == ENOENT);
	CHECK(fstatat(rootfd, ".sfs-gone-0011223344556677", &st, 0) < 0 && errno == ENOENT);
	CHECK(fstatat(rootfd, SFS_DIRHDR_NAME, &st, 0) == 0);

	/* A torn tail is cut back to the last whole append. */
	fd = openat(rootfd, en.backing, O_RDWR | O_CLOEXEC);
	REQUIRE(fd >= 0 && fstat(fd, &st) == 0);
	{
		struct sfs_log l = {.fd = fd, .keys = keys};
		struct sfs_attrs a;

		REQUIRE(sfs_file_read_header(fd, l.id, &a, keys) == 0 && sfs_log_load(&l) == 0);
		REQUIRE(sfs_log_append(&l, "{\"c\":3}\n", 8) == 0);
		REQUIRE(ftruncate(fd, (off_t)l.end - 3) == 0);
	}
	close(fd);
	CHECK_EQ(sfs_store_session_prepare(cfd, keys, 0, &ev, &rep), 0);
	CHECK(rep.events_dropped == 8 + SFS_REC_OVERHEAD - 3 && ev.size == strlen(old));
	CHECK(rep.events_damage.count == 0 && !rep.events_hole);
	sfs_log_close(&ev);
	/* ...and what was cut is kept in the container: the log's header, a u64, the bytes. */
	CHECK(strncmp(rep.events_kept, "events.kept-", 12) == 0 && strlen(rep.events_kept) == 28);
	CHECK(fstatat(cfd, rep.events_kept, &st, 0) == 0 && (st.st_mode & 0777) == 0600 &&
	      (uint64_t)st.st_size == SFS_LOG_KEPT_HDR + rep.events_dropped);
	unlinkat(cfd, rep.events_kept, 0);

	/* A missing events.jsonl is made, empty. */
	REQUIRE(unlinkat(rootfd, en.backing, 0) == 0);
	CHECK_EQ(sfs_store_session_prepare(cfd, keys, 0, &ev, &rep), 0);
	CHECK(rep.events_created && ev.size == 0);
	sfs_log_close(&ev);
	CHECK(fstatat(rootfd, en.backing, &st, 0) == 0 && st.st_size == SFS_HDR_BYTES);

	close(rootfd);
	close(cfd);
	sfs_store_session_release(lock);
	sfs_keys_free(keys);
}

static void touch(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	REQUIRE(fd >= 0);
	close(fd);
}

/* A directory is retired whole; crash leftovers in it do not make it non-empty. */
static void test_retire(void)
{
	char gone[SFS_TMPNAME_MAX], again[SFS_TMPNAME_MAX];
	int dfd = openat(AT_FDCWD, top, O_PATH | O_DIRECTORY | O_CLOEXEC), fd;
	struct stat st;

	REQUIRE(dfd >= 0);
	REQUIRE(mkdirat(dfd, "QUJDRA", 0700) == 0);
	fd = openat(dfd, "QUJDRA", O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	touch(fd, SFS_DIRHDR_NAME);
	touch(fd, ".sfs-new-0011223344556677"); /* a node never published */
	touch(fd, "~QUJD.n");			/* a sidecar whose node is gone */
	REQUIRE(mkdirat(fd, ".sfs-gone-8899aabbccddeeff", 0700) == 0); /* with its header */
	{
		int g = openat(fd, ".sfs-gone-8899aabbccddeeff", O_PATH | O_DIRECTORY | O_CLOEXEC);

		REQUIRE(g >= 0);
		touch(g, SFS_DIRHDR_NAME);
		close(g);
	}

	CHECK_EQ(sfs_tree_dir_retire(dfd, "QUJDRA", gone), 0);
	CHECK(strncmp(gone, ".sfs-gone-", 10) == 0 && strlen(gone) == 26);
	CHECK(fstatat(dfd, "QUJDRA", &st, 0) < 0 && errno == ENOENT);
	CHECK(fstatat(dfd, gone, &st, 0) == 0 && S_ISDIR(st.st_mode));
	CHECK_EQ(sfs_tree_dir_unretire(dfd, gone, "QUJDRA"), 0);
	CHECK(fstatat(fd, SFS_DIRHDR_NAME, &st, 0) == 0);

	/* A node (short or long name) makes it non-empty: nothing moves. */
	touch(fd, "RUZH");
	CHECK_EQ(sfs_tree_dir_retire(dfd, "QUJDRA", again), -ENOTEMPTY);
	CHECK(fstatat(dfd, "QUJDRA", &st, 0) == 0);
	REQUIRE(unlinkat(fd, "RUZH", 0) == 0);
	REQUIRE(mkdirat(fd, "~RUZH", 0700) == 0);
	CHECK_EQ(sfs_tree_dir_retire(dfd, "QUJDRA", again), -ENOTEMPTY);
	REQUIRE(unlinkat(fd, "~RUZH", AT_REMOVEDIR) == 0);

	/* A name not ours (another program's temporary) keeps it too. */
	touch(fd, ".rsync-tmp.abc123");
	CHECK_EQ(sfs_tree_dir_retire(dfd, "QUJDRA", again), -ENOTEMPTY);
	REQUIRE(unlinkat(fd, ".rsync-tmp.abc123", 0) == 0);

	/* The reap takes only leftovers, then rmdir: a stranger found by then stays. */
	CHECK_EQ(sfs_tree_dir_retire(dfd, "QUJDRA", again), 0);
	CHECK(strcmp(again, gone) != 0);
	touch(fd, "stranger");
	CHECK_EQ(sfs_tree_dir_reap(dfd, again), -ENOTEMPTY);
	CHECK(fstatat(fd, "stranger", &st, 0) == 0);
	CHECK(fstatat(fd, SFS_DIRHDR_NAME, &st, 0) < 0 && errno == ENOENT);
	CHECK(fstatat(fd, ".sfs-gone-8899aabbccddeeff", &st, 0) < 0 && errno == ENOENT);
	REQUIRE(unlinkat(fd, "stranger", 0) == 0);
	CHECK_EQ(sfs_tree_dir_reap(dfd, again), 0);
	CHECK(fstatat(dfd, again, &st, 0) < 0 && errno == ENOENT);
	CHECK_EQ(sfs_tree_dir_retire(dfd, "QUJDRA", again), -ENOENT);
	close(fd);
	close(dfd);
}

int main(void)
{
	struct sfs_store_config cfg;
	char store[600], why[256];
	int storefd;

	REQUIRE(sfs_crypto_init() == 0);
	REQUIRE(mkdtemp(top));
	snprintf(store, sizeof(store), "%s/store", top);
	REQUIRE(sfs_store_create(store, SFS_KDF_INTERACTIVE, SFS_CIPHER_AESGCM_DERIVED, why,
				 sizeof(why)) == 0);
	REQUIRE(sfs_store_open(store, &storefd, &cfg, why, sizeof(why)) == 0);
	sessfd = openat(storefd, SFS_SESSIONS_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(sessfd >= 0);
	CHECK_EQ(cfg.cipher, SFS_CIPHER_AESGCM_DERIVED);
	test_sessions(SFS_CIPHER_XCHACHA);
	/* Both AES forms: the legacy one still opens and writes its sessions. */
	for (int c = SFS_CIPHER_AESGCM; c <= SFS_CIPHER_AESGCM_DERIVED; c++) {
		if (!sfs_cipher_available(c))
			break;
		REQUIRE(sfs_remove_tree(sessfd, ID) == 0);
		REQUIRE(sfs_remove_tree(sessfd, "INC-0123456789abcdef") == 0);
		test_sessions(c);
	}
	test_prepare();
	test_retire();
	close(sessfd);
	close(storefd);
	CHECK_EQ(sfs_remove_tree(AT_FDCWD, top), 0);
	return check_done();
}
