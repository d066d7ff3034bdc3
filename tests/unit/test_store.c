/*
 * test_store.c - the store config: create and open, refusals (non-empty
 * directory, existing store, missing path, not a store, newer version,
 * unknown feature, bad JSON), plus session ids and the first metadata.json;
 * a stored metadata.json that is no object is damage, an allocation that
 * fails reading it is ENOMEM.
 */
#include "check.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[] = "/tmp/sfs-unit-store-XXXXXX";
static char path[512], why[256];

static void at(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", top, name);
}

static void write_conf(const char *store, const char *text)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", store, SFS_CONF_NAME);
	f = fopen(p, "w");
	REQUIRE(f);
	fputs(text, f);
	REQUIRE(fclose(f) == 0);
}

/* Open @store expecting @rc; the reason, if any, must contain @needle. */
static void expect_open(const char *store, int rc, const char *needle)
{
	struct sfs_store_config cfg;
	int fd = 123;

	why[0] = '\0';
	CHECK_EQ(sfs_store_open(store, &fd, &cfg, why, sizeof(why)), rc);
	if (rc < 0) {
		CHECK_EQ(fd, -1);
		if (needle && !strstr(why, needle)) {
			fprintf(stderr, "reason \"%s\" lacks \"%s\"\n", why, needle);
			check_failures++;
		}
	} else if (fd >= 0) {
		close(fd);
	}
}

static void test_create_open(void)
{
	struct sfs_store_config cfg = {0};
	char store[600];
	struct stat st;
	int fd = -1;

	at("s1");
	strcpy(store, path);
	/* The legacy AES-256-GCM of per-file keys names no store's new sessions. */
	CHECK_EQ(sfs_store_create(store, SFS_KDF_MODERATE, SFS_CIPHER_AESGCM, why, sizeof(why)),
		 -EINVAL);
	CHECK_EQ(access(store, F_OK), -1);
	CHECK_EQ(sfs_store_create(store, SFS_KDF_MODERATE, SFS_CIPHER_AESGCM_DERIVED, why,
				  sizeof(why)),
		 0);
	CHECK_EQ(sfs_store_open(store, &fd, &cfg, why, sizeof(why)), 0);
	CHECK(fd >= 0);
	CHECK_EQ(cfg.version, 1);
	CHECK_EQ(cfg.kdf, SFS_KDF_MODERATE);
	CHECK_EQ(cfg.cipher, SFS_CIPHER_AESGCM_DERIVED);
	CHECK_EQ(fstatat(fd, SFS_SESSIONS_DIR, &st, 0), 0);
	CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
	CHECK_EQ(fstatat(fd, SFS_ARCHIVE_DIR, &st, 0), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ(fstatat(fd, SFS_CONF_NAME, &st, 0), 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	CHECK_EQ(stat(store, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0700);
	close(fd);

	/* The config is the documented JSON. */
	json_t *conf;
	char p[700];

	snprintf(p, sizeof(p), "%s/%s", store, SFS_CONF_NAME);
	conf = json_load_file(p, 0, NULL);
	CHECK(conf && json_is_object(conf));
	CHECK_STR(json_string_value(json_object_get(conf, "format")), "sessionfs");
	CHECK_EQ(json_integer_value(json_object_get(conf, "version")), 1);
	CHECK_STR(json_string_value(json_object_get(conf, "kdf")), "moderate");
	CHECK_EQ(json_integer_value(json_object_get(conf, "block_size")), 4096);
	CHECK_STR(json_string_value(json_object_get(conf, "cipher")), "aes256gcm");
	CHECK(json_is_array(json_object_get(conf, "features")) &&
	      json_array_size(json_object_get(conf, "features")) == 0);
	json_decref(conf);

	CHECK_EQ(sfs_store_create(store, SFS_KDF_INTERACTIVE, SFS_CIPHER_AESGCM_DERIVED, why,
				  sizeof(why)),
		 -EEXIST);

	/* An existing empty directory is fine; a non-empty one is not. */
	at("s2");
	CHECK_EQ(mkdir(path, 0755), 0);
	CHECK_EQ(sfs_store_create(path, SFS_KDF_INTERACTIVE, SFS_CIPHER_AESGCM_DERIVED, why,
				  sizeof(why)),
		 0);
	expect_open(path, 0, NULL);
	at("full");
	CHECK_EQ(mkdir(path, 0700), 0);
	at("full/.hidden");
	CHECK_EQ(mkdir(path, 0700), 0);
	at("full");
	CHECK_EQ(sfs_store_create(path, SFS_KDF_INTERACTIVE, SFS_CIPHER_AESGCM_DERIVED, why,
				  sizeof(why)),
		 -ENOTEMPTY);
	CHECK(strstr(why, "not empty") != NULL);
	at("afile");
	close(open(path, O_CREAT | O_WRONLY, 0600));
	CHECK_EQ(sfs_store_create(path, SFS_KDF_INTERACTIVE, SFS_CIPHER_AESGCM_DERIVED, why,
				  sizeof(why)),
		 -ENOTDIR);
	expect_open(path, -ENOTDIR, NULL);
}

static void test_refusals(void)
{
	char store[600];

	at("missing");
	expect_open(path, -ENOENT, "missing");
	at("empty");
	CHECK_EQ(mkdir(path, 0700), 0);
	expect_open(path, -EUCLEAN, "not a sessionfs store");

	at("s3");
	strcpy(store, path);
	REQUIRE(sfs_store_create(store, SFS_KDF_INTERACTIVE, SFS_CIPHER_AESGCM_DERIVED, why,
				 sizeof(why)) == 0);
	write_conf(store, "{\"format\": \"sessionfs\", \"version\": 2, \"features\": [], "
			  "\"kdf\": \"interactive\", \"block_size\": 4096}");
	expect_open(store, -EPROTONOSUPPORT, "version 2");
	write_conf(store, "{\"format\": \"sessionfs\", \"version\": 1, \"features\": [\"x\"], "
			  "\"kdf\": \"interactive\", \"block_size\": 4096}");
	expect_open(store, -EPROTONOSUPPORT, "'x'");
	write_conf(store, "{\"format\": \"sessionfs\", \"version\": 1, \"features\": [], "
			  "\"kdf\": \"interactive\", \"block_size\": 8192}");
	expect_open(store, -EPROTONOSUPPORT, "8192");
	write_conf(store, "{\"format\": \"sessionfs\", \"version\": 0, \"features\": [], "
			  "\"kdf\": \"interactive\", \"block_size\": 4096}");
	expect_open(store, -EUCLEAN, NULL);
	write_conf(store, "{\"format\": \"gocryptfs\", \"version\": 1, \"features\": [], "
			  "\"kdf\": \"interactive\", \"block_size\": 4096}");
	expect_open(store, -EUCLEAN, NULL);
	write_conf(store, "{\"format\": \"sessionfs\", \"version\": 1, \"features\": [], "
			  "\"kdf\": \"extreme\", \"block_size\": 4096}");
	expect_open(store, -EUCLEAN, "extreme");
	write_conf(store, "{\"format\": \"sessionfs\", \"version\": 1, \"features\": [], "
			  "\"kdf\": \"interactive\", \"block_size\": 4096, \"cipher\": \"rot13\"}");
	expect_open(store, -EPROTONOSUPPORT, "'rot13'");
	write_conf(store, "{\"format\": \"sessionfs\", \"version\": 1, \"features\": [], "
			  "\"kdf\": \"interactive\", \"block_size\": 4096, \"cipher\": 2}");
	expect_open(store, -EUCLEAN, NULL);
	write_conf(store, "{\"format\": \"sessionfs\", \"version\": 1}");
	expect_open(store, -EUCLEAN, NULL);
	write_conf(store, "{\"format\": \"sessionfs\", \"vers");
	expect_open(store, -EUCLEAN, "JSON");
	write_conf(store, "");
	expect_open(store, -EUCLEAN, NULL);
	write_conf(store, "[1, 2]");
	expect_open(store, -EUCLEAN, NULL);

	/* A good config again (one from before "cipher": XChaCha sessions), but sessions/ gone. */
	write_conf(store, "{\"format\": \"sessionfs\", \"version\": 1, \"features\": [], "
			  "\"kdf\": \"sensitive\", \"block_size\": 4096}");
	expect_open(store, 0, NULL);
	{
		struct sfs_store_config c2 = {0};
		int fd2 = -1;

		CHECK_EQ(sfs_store_open(store, &fd2, &c2, why, sizeof(why)), 0);
		CHECK_EQ(c2.cipher, SFS_CIPHER_XCHACHA);
		if (fd2 >= 0)
			close(fd2);
	}
	at("s3/sessions");
	CHECK_EQ(rmdir(path), 0);
	expect_open(store, -EUCLEAN, "sessions");
}

static void test_ids(void)
{
	static const struct {
		const char *id;
		bool ok;
	} v[] = {
		/* clang-format off */
		{"INC-3f2a", true},
		{"INC-0123456789abcdef", true},
		{"INC-00000", true},
		{"INC-3F2A", false},
		{"INC-3f2", false},
		{"INC-0123456789abcdef0", false},
		{"XYZ-1234", false},
		{"inc-3f2a", false},
		{"INC-3f2g", false},
		{"INC-3f2a ", false},
		{"INC-", false},
		{"INC3f2a", false},
		{"", false},
		{"../INC-3f2a", false},
		/* clang-format on */
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (sfs_id_valid(v[i].id) != v[i].ok) {
			fprintf(stderr, "sfs_id_valid(\"%s\") != %d\n", v[i].id, v[i].ok);
			check_failures++;
		}
}

static void test_metadata_new(void)
{
	char *text = sfs_store_metadata_new("INC-0001", "db \"outage\"\n\\ é");
	json_error_t err;
	json_t *doc, *tags;
	const char *created, *updated;

	REQUIRE(text);
	CHECK(text[strlen(text) - 1] == '\n');
	doc = json_loads(text, 0, &err);
	REQUIRE(doc && json_is_object(doc));
	CHECK_STR(json_string_value(json_object_get(doc, "id")), "INC-0001");
	CHECK_STR(json_string_value(json_object_get(doc, "name")), "db \"outage\"\n\\ é");
	CHECK_STR(json_string_value(json_object_get(doc, "status")), "active");
	created = json_string_value(json_object_get(doc, "created"));
	updated = json_string_value(json_object_get(doc, "updated"));
	REQUIRE(created && updated);
	CHECK_EQ(strlen(created), 20);
	CHECK(created[4] == '-' && created[10] == 'T' && created[19] == 'Z');
	CHECK_STR(updated, created);
	tags = json_object_get(doc, "tags");
	CHECK(json_is_array(tags) && json_array_size(tags) == 0);
	CHECK_EQ(json_object_size(doc), 6);
	json_decref(doc);
	free(text);
}

/*
 * The sanitizers' allocators want address space of their own (shadow memory)
 * and abort when it is refused: no RLIMIT_AS under them (gcc's and clang's
 * names for ASan and TSan).
 */
#if !defined(__has_feature)
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) ||                               \
	__has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER true
#else
#define UNDER_SANITIZER false
#endif

/*
 * Run @fn(@arg) with malloc failing for real: RLIMIT_AS down to nothing
 * (no brk or mmap grows the process; RLIMIT_DATA does not stop mmap on
 * every kernel), and every free block of the heap taken first, largest
 * sizes down to the smallest. All it took is given back.
 */
static void without_memory(void (*fn)(void *), void *arg)
{
	struct rlimit was, none;
	void *held = NULL, *p;

	REQUIRE(getrlimit(RLIMIT_AS, &was) == 0);
	none = (struct rlimit){.rlim_cur = 0, .rlim_max = was.rlim_max};
	REQUIRE(setrlimit(RLIMIT_AS, &none) == 0);
	for (size_t n = 1 << 20; n >= 16; n = n > 1024 ? n / 2 : n - 16)
		while ((p = malloc(n))) {
			*(void **)p = held;
			held = p;
		}
	fn(arg);
	while (held) {
		p = held;
		held = *(void **)p;
		free(p);
	}
	REQUIRE(setrlimit(RLIMIT_AS, &was) == 0);
}

struct nomem_run {
	const char *doc;
	int sum_rc, set_rc;
	json_t *sum;
	char *text;
};

static void nomem_run(void *arg)
{
	struct nomem_run *r = arg;

	r->sum_rc = sfs_store_metadata_summary(r->doc, strlen(r->doc), &r->sum);
	r->set_rc =
		sfs_store_metadata_set_status(r->doc, strlen(r->doc), "failed", "now", &r->text);
}

/*
 * What status shows (and sets) of a stored metadata.json: a document that
 * is no JSON object is damage (-EINVAL: "metadata.json is damaged"), but a
 * parse that runs out of memory is -ENOMEM, never damage (jansson itself
 * calls it a syntax error). Before, both were NULL, and `sessionctl status`
 * said "metadata.json is damaged" on ENOMEM.
 */
static void test_metadata_nomem(void)
{
	static const char doc[] = "{\"id\":\"INC-1234\",\"status\":\"paused\",\"name\":\"db\","
				  "\"created\":\"2026-01-01T00:00:00Z\",\"tags\":[\"a\"]}";
	struct nomem_run r = {.doc = doc};
	json_t *sum;
	char *text;

	CHECK_EQ(sfs_store_metadata_summary("[1]", 3, &sum), -EINVAL);
	CHECK(sum == NULL);
	CHECK_EQ(sfs_store_metadata_summary("{\"id\":", 6, &sum), -EINVAL);
	CHECK_EQ(sfs_store_metadata_set_status("[1]", 3, "active", "now", &text), -EINVAL);
	CHECK(text == NULL);
	REQUIRE(sfs_store_metadata_summary(doc, strlen(doc), &sum) == 0);
	CHECK_STR(json_string_value(json_object_get(sum, "status")), "paused");
	CHECK_EQ(json_object_size(sum), 3);
	json_decref(sum);
	REQUIRE(sfs_store_metadata_set_status(doc, strlen(doc), "failed", "now", &text) == 0);
	CHECK(strstr(text, "\"failed\"") != NULL);
	free(text);
	/* valgrind stops a client that limits its address space (tests/valgrind) */
	if (UNDER_SANITIZER || getenv("SFS_TEST_NO_RLIMIT_AS"))
		return; /* see UNDER_SANITIZER */
	without_memory(nomem_run, &r);
	CHECK_EQ(r.sum_rc, -ENOMEM);
	CHECK(r.sum == NULL);
	CHECK_EQ(r.set_rc, -ENOMEM);
	CHECK(r.text == NULL);
}

/* A copy's first document (sessionctl copy): the source's "created", "copying", "copy_of". */
static void test_metadata_first_copy(void)
{
	const struct sfs_new_session ns = {.id = "INC-c0de",
					   .name = "n",
					   .created = "2020-01-02T03:04:05Z",
					   .copy_of = "INC-3f2a"};
	const char *same = "{\"id\":\"INC-c0de\",\"created\":\"2020-01-02T03:04:05Z\"}";
	const char *moved = "{\"id\":\"INC-c0de\",\"created\":\"2020-01-02T03:04:06Z\"}";
	char *text = sfs_store_metadata_first(&ns);
	json_t *doc;
	int line;

	REQUIRE(text);
	doc = json_loads(text, 0, NULL);
	REQUIRE(json_is_object(doc));
	CHECK_STR(json_string_value(json_object_get(doc, "id")), "INC-c0de");
	CHECK_STR(json_string_value(json_object_get(doc, "created")), "2020-01-02T03:04:05Z");
	CHECK_STR(json_string_value(json_object_get(doc, "status")), SFS_STATUS_COPYING);
	CHECK_STR(json_string_value(json_object_get(doc, SFS_COPY_OF)), "INC-3f2a");
	CHECK(strcmp(json_string_value(json_object_get(doc, "updated")), "2020-01-02T03:04:05Z"));
	CHECK_EQ(json_object_size(doc), 7);
	/* A document that keeps "created" replaces it; one that moves it does not. */
	CHECK(sfs_store_metadata_check("INC-c0de", same, strlen(same), text, strlen(text), &line) ==
	      NULL);
	CHECK(sfs_store_metadata_check("INC-c0de", moved, strlen(moved), text, strlen(text),
				       &line) != NULL);
	json_decref(doc);
	free(text);
	CHECK(sfs_store_utc_time_ok("2020-01-02T03:04:05Z"));
	CHECK(sfs_store_utc_time_ok("2024-02-29T23:59:60.5+00:00"));
	CHECK(!sfs_store_utc_time_ok("2023-02-29T00:00:00Z"));
	CHECK(!sfs_store_utc_time_ok("2020-01-02 03:04:05Z"));
	CHECK(!sfs_store_utc_time_ok("yesterday"));
	CHECK(!sfs_store_utc_time_ok(NULL));
}

/* Why @text is refused as session INC-1234's metadata.json replacing @old, or NULL. */
static const char *meta_why(const char *text, const char *old)
{
	int line;

	return sfs_store_metadata_check("INC-1234", text, strlen(text), old, old ? strlen(old) : 0,
					&line);
}

/* The members sessionfs writes have its types; users' own members are free. */
static void test_metadata_types(const char *old)
{
	static const char *good[] = {
		"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"updated\":"
		"\"2026-02-28T23:59:59Z\",\"status\":\"paused\",\"name\":\"db\",\"tags\":[\"a\","
		"\"b\"]}",
		"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"tags\":[]}",
		"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"updated\":"
		"\"2024-02-29T12:00:60.123456Z\"}",
		"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"updated\":"
		"\"2026-03-01T12:00:00+00:00\"}",
		/* users' own members, of any type */
		"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"owner\":7,\"x\":"
		"{\"tags\":1},\"labels\":[1,null],\"n\":null}",
	};
	static const struct {
		const char *text, *why;
	} bad[] = {
		{"{\"id\":1234,\"created\":\"2026-01-01T00:00:00Z\"}", "\"id\" changed"},
		{"{\"id\":[\"INC-1234\"],\"created\":\"2026-01-01T00:00:00Z\"}", "\"id\" changed"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"updated\":"
		 "\"yesterday\"}",
		 "\"updated\" is not a UTC time (2025-03-01T12:00:00Z)"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"updated\":"
		 "1767225600}",
		 "\"updated\" is not a UTC time (2025-03-01T12:00:00Z)"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"updated\":"
		 "\"2026-01-01T00:00:00\"}",
		 "\"updated\" is not a UTC time (2025-03-01T12:00:00Z)"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"updated\":"
		 "\"2026-01-01T00:00:00+02:00\"}",
		 "\"updated\" is not a UTC time (2025-03-01T12:00:00Z)"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"updated\":"
		 "\"2025-02-29T00:00:00Z\"}",
		 "\"updated\" is not a UTC time (2025-03-01T12:00:00Z)"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"updated\":"
		 "\"2026-13-01T00:00:00Z\"}",
		 "\"updated\" is not a UTC time (2025-03-01T12:00:00Z)"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"updated\":"
		 "\"2026-01-01T24:00:00Z\"}",
		 "\"updated\" is not a UTC time (2025-03-01T12:00:00Z)"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"updated\":"
		 "\"2026-01-01T00:00:00.Z\"}",
		 "\"updated\" is not a UTC time (2025-03-01T12:00:00Z)"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"status\":1}",
		 "\"status\" is not a string"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"status\":null}",
		 "\"status\" is not a string"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"name\":[\"x\"]}",
		 "\"name\" is not a string"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"tags\":\"a,b\"}",
		 "\"tags\" is not an array of strings"},
		{"{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\",\"tags\":[\"a\",1]}",
		 "\"tags\" is not an array of strings"},
	};
	/* What an older build (or a user) stored stays acceptable as it is. */
	const char *legacy = "{\"id\":\"INC-1234\",\"created\":1767225600,\"updated\":\"soon\","
			     "\"status\":2,\"tags\":\"x\"}";

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(meta_why(good[i], old) == NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_STR(meta_why(bad[i].text, old), bad[i].why);
	/* With no document to replace, "created" is checked for its type only. */
	CHECK_STR(meta_why("{\"id\":\"INC-1234\",\"created\":\"1 Jan 2026\"}", NULL),
		  "\"created\" is not a UTC time (2025-03-01T12:00:00Z)");
	CHECK(meta_why("{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00.5Z\"}", NULL) ==
	      NULL);
	CHECK(meta_why(legacy, legacy) == NULL);
	CHECK(meta_why("{\"id\":\"INC-1234\",\"created\":1767225600,\"updated\":\"soon\","
		       "\"status\":\"paused\",\"tags\":\"x\",\"note\":1}",
		       legacy) == NULL);
	CHECK_STR(meta_why("{\"id\":\"INC-1234\",\"created\":1767225600,\"status\":3}", legacy),
		  "\"status\" is not a string");
	CHECK_STR(meta_why("{\"id\":\"INC-1234\",\"created\":1767225601}", legacy),
		  "\"created\" changed");
}

/* The document rules: event lines and metadata.json replacements. */
static void test_documents(void)
{
	static const char *good[] = {"{}", "{\"type\":\"note\"}", " {\"a\": [1, {\"b\": null}]} "};
	static const char *bad[] = {
		"", "[]", "1", "\"x\"", "null", "{", "{} {}", "{\"a\":1}x", "{\"a\":\"\\ud800\"}"};
	const char *old = "{\"id\":\"INC-1234\",\"created\":\"2026-01-01T00:00:00Z\"}";
	int line;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(sfs_store_event_line_ok(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!sfs_store_event_line_ok(bad[i], strlen(bad[i])));
	/* A line is judged by its length, not by a NUL. */
	CHECK(!sfs_store_event_line_ok("{}\0{}", 5));

	CHECK(sfs_store_metadata_check("INC-1234", old, strlen(old), NULL, 0, &line) == NULL);
	CHECK(sfs_store_metadata_check("INC-1234", old, strlen(old), old, strlen(old), &line) ==
	      NULL);
	CHECK_STR(sfs_store_metadata_check("INC-1234", "{\n\"id\":", 8, old, strlen(old), &line),
		  "not valid JSON");
	CHECK_EQ(line, 2);
	CHECK_STR(sfs_store_metadata_check("INC-1234", "[1]", 3, old, strlen(old), &line),
		  "not a JSON object");
	CHECK_STR(sfs_store_metadata_check("INC-1235", old, strlen(old), NULL, 0, &line),
		  "\"id\" changed");
	CHECK_STR(sfs_store_metadata_check("INC-1234", "{\"id\":\"INC-1234\"}", 17, old,
					   strlen(old), &line),
		  "\"created\" changed");
	/* An old document that cannot be read does not pin "created". */
	CHECK(sfs_store_metadata_check("INC-1234", "{\"id\":\"INC-1234\"}", 17, "{", 1, &line) ==
	      NULL);
	test_metadata_types(old);
}

/* mountinfo's escapes, as the kernel writes them (fs/proc_namespace.c: " \t\n\\"). */
static void test_mountinfo_unescape(void)
{
	char a[] = "/tmp/a\\040b\\011c\\012d\\134e", b[] = "\\04x\\8\\", c[] = "";

	sfs_mountinfo_unescape(a);
	CHECK(strcmp(a, "/tmp/a b\tc\nd\\e") == 0);
	sfs_mountinfo_unescape(b); /* not escapes: left as they are */
	CHECK(strcmp(b, "\\04x\\8\\") == 0);
	sfs_mountinfo_unescape(c);
	CHECK(c[0] == '\0');
}

int main(void)
{
	REQUIRE(sfs_crypto_init() == 0);
	sfs_store_json_wipe_on_free(); /* as the daemon: its allocations are counted */
	REQUIRE(mkdtemp(top));
	test_create_open();
	test_refusals();
	test_ids();
	test_metadata_new();
	test_metadata_first_copy();
	test_metadata_nomem();
	test_documents();
	test_mountinfo_unescape();
	CHECK_EQ(sfs_remove_tree(AT_FDCWD, top), 0);
	return check_done();
}
