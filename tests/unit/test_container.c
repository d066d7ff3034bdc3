/*
 * test_container.c - the session layer without FUSE (lib/session.c,
 * lib/metadata.c) on a temporary store, with fixed passwords: create,
 * close, reopen with the password, a wrong password refused with nothing
 * changed, the event log kept across close; metadata.json read, a
 * replacement refused for invalid JSON or a changed id (the old document
 * kept), a valid one published with no internal file left, "updated"
 * touched; move to archive/ and back (refused while another holder has
 * it); passwd; delete; key slots: a session made with a recovery key,
 * slots added up to 8 and removed (each refusal with its code and the key
 * file unchanged, a refused removal paying one Argon2id run per password
 * slot), labels sealed, passwd of one slot.
 */
#include "check.h"
#include "crypto.h"
#include "metadata.h"
#include "session.h"
#include "store.h"
#include "tree.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID "INC-c0de"
#define PW "correct horse"
#define PW2 "battery staple"

static char top[] = "/tmp/sfs-unit-container-XXXXXX";
static int sessfd = -1, archfd = -1; /* STORE/sessions, STORE/archive */

static bool exists(int dirfd, const char *name)
{
	return faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Entries of @dirfd whose name starts with @prefix. */
static int count_prefixed(int dirfd, const char *prefix)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	REQUIRE(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

/* The whole key file of container @cfd, to see that nothing changed it. */
static size_t read_key(int cfd, unsigned char *buf, size_t cap)
{
	int fd = openat(cfd, SFS_KEY_NAME, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	REQUIRE(fd >= 0);
	n = read(fd, buf, cap);
	REQUIRE(n > 0);
	close(fd);
	return (size_t)n;
}

/* Member @key of the stored document of @m, as a malloc'd string (NULL if none). */
static char *stored_member(const struct sfs_metadata *m, const char *key)
{
	char *text, *out = NULL;
	size_t len;
	json_t *doc, *v;

	REQUIRE(sfs_metadata_peek(m, &text, &len, NULL) == 0);
	CHECK_EQ(strlen(text), len);
	doc = json_loadb(text, len, 0, NULL);
	REQUIRE(doc);
	v = json_object_get(doc, key);
	if (json_is_string(v))
		out = strdup(json_string_value(v));
	json_decref(doc);
	sfs_metadata_free(text, len);
	return out;
}

/* The stored document of @m with member @key set to @value, dumped. */
static char *with_member(const struct sfs_metadata *m, const char *key, const char *value)
{
	char *text, *out;
	size_t len;
	json_t *doc;

	REQUIRE(sfs_metadata_peek(m, &text, &len, NULL) == 0);
	doc = json_loadb(text, len, 0, NULL);
	REQUIRE(doc);
	json_object_set_new(doc, key, json_string(value));
	out = json_dumps(doc, JSON_INDENT(2));
	REQUIRE(out);
	json_decref(doc);
	sfs_metadata_free(text, len);
	return out;
}

/* Open container @cfd with @pw into @c and prepare its tree; 0 or the unlock's -errno. */
static int open_id_with(struct sfs_container *c, const char *id, int cfd, const char *pw)
{
	struct sfs_container_key k = {.lockfd = -1};
	struct sfs_session_report r;
	struct sfs_log ev;
	int topfd[2] = {sessfd, archfd};
	int rc = sfs_container_unlock(topfd, id, cfd, pw, strlen(pw), &k);

	if (rc < 0) {
		CHECK(k.keys == NULL && k.lockfd == -1);
		return rc;
	}
	sfs_container_open(c, &k);
	CHECK(k.keys == NULL && k.lockfd == -1);
	CHECK_EQ(sfs_container_prepare(c, cfd, 0, &ev, &r), 0);
	sfs_container_set_log(c, &ev, true);
	return 0;
}

static int open_with(struct sfs_container *c, int cfd, const char *pw)
{
	return open_id_with(c, ID, cfd, pw);
}

static void test_metadata(struct sfs_container *c, int cfd)
{
	struct sfs_metadata_refusal why;
	struct sfs_metadata m;
	struct sfs_attrs a = {S_IFREG | 0600, getuid(), getgid(), 0, SFS_KIND_BLOCKS};
	unsigned char id[SFS_ID_BYTES];
	char *before, *after, *doc, *v;
	size_t blen, alen;

	REQUIRE(sfs_container_metadata(c, cfd, &m) == 0);
	REQUIRE(sfs_metadata_peek(&m, &before, &blen, NULL) == 0);
	v = stored_member(&m, "id");
	CHECK_STR(v, ID);
	free(v);
	v = stored_member(&m, "name");
	CHECK_STR(v, "pager storm");
	free(v);

	/* Refused: not JSON; the id changed. The stored document stays, byte for byte. */
	CHECK_EQ(sfs_metadata_replace(&m, "{\"id\": ", 7, &a, &why), -EINVAL);
	CHECK(why.why != NULL && why.line > 0);
	doc = with_member(&m, "id", "INC-beef");
	CHECK_EQ(sfs_metadata_replace(&m, doc, strlen(doc), &a, &why), -EINVAL);
	CHECK(why.why != NULL);
	CHECK_EQ(sfs_metadata_check(&m, doc, strlen(doc), &why), -EINVAL);
	free(doc);
	doc = with_member(&m, "created", "2001-01-01T00:00:00Z");
	CHECK_EQ(sfs_metadata_replace(&m, doc, strlen(doc), &a, &why), -EINVAL);
	free(doc);
	REQUIRE(sfs_metadata_peek(&m, &after, &alen, NULL) == 0);
	CHECK_EQ(alen, blen);
	CHECK(alen == blen && memcmp(after, before, blen) == 0);
	sfs_metadata_free(after, alen);
	CHECK_EQ(count_prefixed(m.rootfd, SFS_META_PREFIX), 0);

	/* A valid one is published; nothing of the protocol is left behind. */
	doc = with_member(&m, "status", "resolved");
	CHECK_EQ(sfs_metadata_check(&m, doc, strlen(doc), &why), 0);
	CHECK(why.why == NULL);
	CHECK_EQ(sfs_metadata_replace(&m, doc, strlen(doc), &a, &why), 0);
	REQUIRE(sfs_metadata_peek(&m, &after, &alen, NULL) == 0);
	CHECK_STR(after, doc);
	sfs_metadata_free(after, alen);
	free(doc);
	v = stored_member(&m, "status");
	CHECK_STR(v, "resolved");
	free(v);
	CHECK_EQ(count_prefixed(m.rootfd, SFS_META_PREFIX), 0);

	/* touch: "updated" only; the rest as it was. */
	CHECK_EQ(sfs_metadata_touch(&m, "2030-01-02T03:04:05Z"), 0);
	v = stored_member(&m, "updated");
	CHECK_STR(v, "2030-01-02T03:04:05Z");
	free(v);
	v = stored_member(&m, "status");
	CHECK_STR(v, "resolved");
	free(v);
	REQUIRE(sfs_metadata_peek(&m, &after, &alen, NULL) == 0);
	v = stored_member(&m, "created");
	CHECK(v && strstr(before, v) != NULL);
	free(v);
	sfs_metadata_free(after, alen);
	CHECK_EQ(count_prefixed(m.rootfd, SFS_META_PREFIX), 0);

	/* A document is stored: no unlinked node for a new one. */
	CHECK_EQ(sfs_metadata_new_unlinked(m.rootfd, m.dirid, &a, c->keys, id), -EEXIST);
	sfs_metadata_free(before, blen);
	sfs_metadata_close(&m);
	CHECK_EQ(m.rootfd, -1);
}

static void test_life(void)
{
	struct sfs_new_session ns = {
		.id = ID,
		.name = "pager storm",
		.password = PW,
		.pwlen = strlen(PW),
		.kdf = SFS_KDF_INTERACTIVE,
		.cipher = SFS_CIPHER_XCHACHA,
		.uid = getuid(),
		.gid = getgid(),
	};
	struct sfs_container_key k = {.lockfd = -1};
	struct sfs_container c;
	struct sfs_session_report r;
	struct sfs_metadata m;
	struct sfs_log ev;
	unsigned char kf[SFS_KEYFILE_MAX], kf2[SFS_KEYFILE_MAX];
	size_t kflen;
	char buf[64];
	int cfd;

	/* Create: open at once, its log empty. */
	sfs_container_init(&c, ID);
	CHECK(!sfs_container_is_open(&c));
	CHECK_EQ(sfs_container_create(sessfd, &ns, &k), 0);
	REQUIRE(k.keys && k.lockfd >= 0);
	sfs_container_open(&c, &k);
	CHECK(sfs_container_is_open(&c));
	CHECK_EQ(sfs_container_create(sessfd, &ns, &k), -EEXIST);
	CHECK(k.keys == NULL && k.lockfd == -1);
	cfd = sfs_container_dir(sessfd, ID);
	REQUIRE(cfd >= 0);
	CHECK_EQ(sfs_container_dir(sessfd, "../x"), -ENOENT);
	CHECK_EQ(sfs_container_prepare(&c, cfd, 0, &ev, &r), 0);
	sfs_container_set_log(&c, &ev, true);
	CHECK(c.ev_ok && c.ev.fd >= 0);
	CHECK_EQ(c.ev.size, 0);
	CHECK_EQ(sfs_log_append(&c.ev, "{\"a\":1}\n", 8), 0);
	test_metadata(&c, cfd);

	/* Close: keys gone, lock given back, the log's state still known. */
	sfs_container_close(&c);
	CHECK(!sfs_container_is_open(&c));
	CHECK(c.keys == NULL && c.lockfd == -1 && c.ev.fd == -1 && !c.ev_ok);
	CHECK_EQ(c.ev.size, 8);
	CHECK_EQ(sfs_store_session_held(cfd), 0);
	CHECK_EQ(sfs_container_metadata(&c, cfd, &m), -EACCES);
	CHECK_EQ(sfs_container_delete(&c, sessfd), -EACCES);
	sfs_container_close(&c); /* closed: nothing */

	/* A wrong password: refused, nothing held, nothing changed. */
	kflen = read_key(cfd, kf, sizeof(kf));
	CHECK_EQ(open_with(&c, cfd, "hunter2"), -EKEYREJECTED);
	CHECK(!sfs_container_is_open(&c));
	CHECK_EQ(sfs_store_session_held(cfd), 0);
	CHECK_EQ(read_key(cfd, kf2, sizeof(kf2)), kflen);
	CHECK_MEM(kf2, kf, kflen);

	/* Reopen: the log and the touched document are there. */
	CHECK_EQ(open_with(&c, cfd, PW), 0);
	CHECK_EQ(c.ev.size, 8);
	CHECK_EQ(c.ev.lines, 1);
	CHECK_EQ(sfs_log_read(&c.ev, buf, sizeof(buf), 0), 8);
	CHECK_MEM(buf, "{\"a\":1}\n", 8);
	REQUIRE(sfs_container_metadata(&c, cfd, &m) == 0);
	{
		char *v = stored_member(&m, "updated");

		CHECK_STR(v, "2030-01-02T03:04:05Z");
		free(v);
	}
	sfs_metadata_close(&m);
	/* Open here: a second unlock finds it busy (after the lock's short wait). */
	CHECK_EQ(sfs_container_unlock((int[2]){sessfd, archfd}, ID, cfd, PW, strlen(PW), &k),
		 -EBUSY);

	/* Move to archive/ while open (its holder moves it), and back. */
	CHECK_EQ(sfs_container_move(sessfd, archfd, ID, true), 0);
	CHECK(!exists(sessfd, ID) && exists(archfd, ID));
	CHECK_EQ(sfs_container_move(archfd, sessfd, ID, false), -EBUSY); /* we hold it */
	CHECK(exists(archfd, ID));
	sfs_container_close(&c);
	CHECK_EQ(sfs_container_move(archfd, sessfd, ID, false), 0);
	CHECK(exists(sessfd, ID) && !exists(archfd, ID));
	CHECK_EQ(sfs_store_session_held(cfd), 0);
	/* Never over another container. */
	REQUIRE(mkdirat(archfd, ID, 0700) == 0);
	CHECK_EQ(sfs_container_move(sessfd, archfd, ID, false), -EEXIST);
	CHECK(exists(sessfd, ID));
	REQUIRE(unlinkat(archfd, ID, AT_REMOVEDIR) == 0);

	/* passwd: the old password no longer opens it, the new one does. */
	CHECK_EQ(sfs_container_passwd(cfd, "wrong", 5, PW2, strlen(PW2), NULL), -EKEYREJECTED);
	CHECK_EQ(sfs_container_passwd(cfd, PW, strlen(PW), PW2, strlen(PW2), NULL), 0);
	CHECK_EQ(open_with(&c, cfd, PW), -EKEYREJECTED);
	CHECK_EQ(open_with(&c, cfd, PW2), 0);

	/*
	 * An unlock that got the busy lock after a delete renamed the
	 * container away (and let go of the lock) finds it gone: -ENOENT, no
	 * keys, no lock kept; under its new name too.
	 */
	sfs_container_close(&c);
	{
		char gone[SFS_CONTAINER_GONE_MAX];

		REQUIRE(sfs_container_delete_begin(sessfd, ID, gone) == 0);
		CHECK_EQ(open_with(&c, cfd, PW2), -ENOENT);
		CHECK_EQ(sfs_store_session_held(cfd), 0);
		REQUIRE(renameat(sessfd, gone, sessfd, ID) == 0);
	}
	CHECK_EQ(open_with(&c, cfd, PW2), 0);

	/* Delete: gone whole, nothing left beside it, the object closed. */
	CHECK_EQ(sfs_container_delete(&c, sessfd), 0);
	CHECK(!sfs_container_is_open(&c) && c.lockfd == -1);
	CHECK(!exists(sessfd, ID));
	CHECK_EQ(count_prefixed(sessfd, ".del-"), 0);
	CHECK_EQ(count_prefixed(sessfd, ".new-"), 0);
	close(cfd);
}

/* Cheap Argon2id for the added slots. */
static struct sfs_slot_new pw_slot(const char *pw, const char *label)
{
	return (struct sfs_slot_new){.kdf = SFS_SLOT_ARGON2ID,
				     .secret = pw,
				     .len = strlen(pw),
				     .opslimit = crypto_pwhash_OPSLIMIT_MIN,
				     .memlimit = crypto_pwhash_MEMLIMIT_MIN,
				     .label = label};
}

static void test_slots(void)
{
	static const char id[] = "INC-5107";
	unsigned char rk[SFS_RECOVERY_KEY_BYTES], kf[SFS_KEYFILE_MAX], kf2[SFS_KEYFILE_MAX];
	char rktext[SFS_RECOVERY_TEXT_MAX], pw[16], label[16];
	struct sfs_new_session ns = {
		.id = id,
		.name = "",
		.password = PW,
		.pwlen = strlen(PW),
		.kdf = SFS_KDF_INTERACTIVE,
		.cipher = SFS_CIPHER_XCHACHA,
		.uid = getuid(),
		.gid = getgid(),
		.recovery = rk,
	};
	struct sfs_container_key k = {.lockfd = -1};
	struct sfs_slot_info sl[SFS_SLOTS_MAX];
	struct sfs_slot_new sn;
	struct sfs_container c;
	enum sfs_cipher cipher;
	unsigned int n;
	int cfd, version, index;
	unsigned long runs;
	size_t kflen;

	sfs_slot_recovery_new(rk, rktext);
	sfs_container_init(&c, id);
	REQUIRE(sfs_container_create(sessfd, &ns, &k) == 0);
	sfs_container_open(&c, &k);
	cfd = sfs_container_dir(sessfd, id);
	REQUIRE(cfd >= 0);
	/* Made with a recovery key: version 3, a password (0) and the key (1). */
	CHECK_EQ(sfs_container_slots(cfd, c.keys, sl, &n, &version, &cipher), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(version, 3);
	CHECK_EQ(cipher, SFS_CIPHER_XCHACHA);
	CHECK(sl[0].index == 0 && sl[0].kdf == SFS_SLOT_ARGON2ID &&
	      sl[0].level == SFS_KDF_INTERACTIVE);
	CHECK(sl[1].index == 1 && sl[1].kdf == SFS_SLOT_RECOVERY && sl[1].level == 0);
	CHECK(sl[0].added > 0 && sl[0].label_known && sl[0].label[0] == '\0');
	sfs_container_close(&c);
	CHECK_EQ(open_id_with(&c, id, cfd, rktext), 0);
	sfs_container_close(&c);
	/* passwd does not turn the recovery slot into a password. */
	CHECK_EQ(sfs_container_passwd(cfd, rktext, strlen(rktext), PW2, strlen(PW2), NULL),
		 SFS_SLOT_ERECOVERY);

	/* Up to 8: the 9th is refused, the file unchanged; a bad label too. */
	sn = pw_slot(PW2, "tab\there");
	CHECK_EQ(sfs_container_slot_add(cfd, PW, strlen(PW), &sn, &index), -EINVAL);
	for (int i = 2; i < SFS_SLOTS_MAX; i++) {
		snprintf(pw, sizeof(pw), "pw %d", i);
		snprintf(label, sizeof(label), "label %d", i);
		sn = pw_slot(pw, label);
		CHECK_EQ(sfs_container_slot_add(cfd, rktext, strlen(rktext), &sn, &index), 0);
		CHECK_EQ(index, i);
	}
	kflen = read_key(cfd, kf, sizeof(kf));
	CHECK_EQ(kflen, SFS_KEYFILE_V3_MAX);
	sn = pw_slot(PW2, NULL);
	CHECK_EQ(sfs_container_slot_add(cfd, PW, strlen(PW), &sn, &index), SFS_SLOT_EFULL);
	CHECK_EQ(read_key(cfd, kf2, sizeof(kf2)), kflen);
	CHECK_MEM(kf2, kf, kflen);

	/* Labels: known with the session's keys only. */
	CHECK_EQ(sfs_container_slots(cfd, NULL, sl, &n, &version, &cipher), 0);
	CHECK(n == 8 && !sl[5].label_known && sl[5].label[0] == '\0');
	CHECK_EQ(open_id_with(&c, id, cfd, "pw 5"), 0);
	CHECK_EQ(sfs_container_slots(cfd, c.keys, sl, &n, &version, &cipher), 0);
	CHECK(sl[5].label_known);
	CHECK_STR(sl[5].label, "label 5");
	sfs_container_close(&c);

	/*
	 * Remove: its own password, a wrong one, then another's; a second time:
	 * none. A refusal runs Argon2id once per password slot (7 here: slot 1
	 * is the recovery key's), under the key file's lock: the slots that
	 * stay, then slot 5 alone to tell its own password from a wrong one
	 * (before, every slot again: 13).
	 */
	runs = sfs_crypto_pwhash_runs();
	CHECK_EQ(sfs_container_slot_remove(cfd, 5, "pw 5", 4), SFS_SLOT_ESELF);
	CHECK_EQ(sfs_crypto_pwhash_runs() - runs, 7);
	runs = sfs_crypto_pwhash_runs();
	CHECK_EQ(sfs_container_slot_remove(cfd, 5, "nope", 4), -EKEYREJECTED);
	CHECK_EQ(sfs_crypto_pwhash_runs() - runs, 7);
	CHECK_EQ(read_key(cfd, kf2, sizeof(kf2)), kflen);
	CHECK_MEM(kf2, kf, kflen);
	CHECK_EQ(sfs_container_slot_remove(cfd, 5, "pw 6", 4), 0);
	CHECK_EQ(sfs_container_slot_remove(cfd, 5, PW, strlen(PW)), SFS_SLOT_ENONE);
	CHECK_EQ(open_id_with(&c, id, cfd, "pw 5"), -EKEYREJECTED);
	/* The freed index is the next one added; passwd keeps a slot's label. */
	sn = pw_slot("pw 5 again", NULL);
	CHECK_EQ(sfs_container_slot_add(cfd, PW, strlen(PW), &sn, &index), 0);
	CHECK_EQ(index, 5);
	CHECK_EQ(sfs_container_passwd(cfd, "pw 6", 4, "pw six", 6, &index), 0);
	CHECK_EQ(index, 6);
	CHECK_EQ(open_id_with(&c, id, cfd, "pw six"), 0);
	CHECK_EQ(sfs_container_slots(cfd, c.keys, sl, &n, &version, &cipher), 0);
	CHECK_STR(sl[6].label, "label 6");
	sfs_container_close(&c);

	/* Down to one slot; the last one stays. */
	for (int i = 0; i < SFS_SLOTS_MAX; i++)
		if (i != 1)
			CHECK_EQ(sfs_container_slot_remove(cfd, i, rktext, strlen(rktext)), 0);
	CHECK_EQ(sfs_container_slot_remove(cfd, 1, rktext, strlen(rktext)), SFS_SLOT_ELAST);
	CHECK_EQ(sfs_container_slot_remove(cfd, 1, "wrong", 5), SFS_SLOT_ELAST);
	CHECK_EQ(sfs_container_slots(cfd, NULL, sl, &n, &version, &cipher), 0);
	CHECK(n == 1 && sl[0].index == 1 && version == 3);
	CHECK_EQ(open_id_with(&c, id, cfd, rktext), 0);
	/* No temporary of the key file left. */
	CHECK_EQ(count_prefixed(cfd, ".tmp."), 0);
	CHECK_EQ(sfs_container_delete(&c, sessfd), 0);
	close(cfd);
}

int main(void)
{
	struct sfs_store_config cfg;
	char store[600], why[256];
	int storefd;

	REQUIRE(sfs_crypto_init() == 0);
	REQUIRE(mkdtemp(top));
	snprintf(store, sizeof(store), "%s/store", top);
	REQUIRE(sfs_store_create(store, SFS_KDF_INTERACTIVE, SFS_CIPHER_XCHACHA, why,
				 sizeof(why)) == 0);
	REQUIRE(sfs_store_open(store, &storefd, &cfg, why, sizeof(why)) == 0);
	sessfd = openat(storefd, SFS_SESSIONS_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	archfd = openat(storefd, SFS_ARCHIVE_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(sessfd >= 0 && archfd >= 0);
	test_life();
	test_slots();
	close(sessfd);
	close(archfd);
	close(storefd);
	CHECK_EQ(sfs_remove_tree(AT_FDCWD, top), 0);
	return check_done();
}
