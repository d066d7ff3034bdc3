/*
 * fuzz_config.c - the store config: sfs_store_open over a real store
 * directory whose sessionfs.conf holds the input (JSON through jansson,
 * then its fields: format, version, features, kdf, block size, cipher).
 *
 * Input: the file's bytes as stored. Oracle: a config that opens names a
 * known version, KDF level and cipher.
 */
#include "fuzz.h"
#include "store.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sfs_store_config cfg;
	static bool made;
	char why[512], path[128];
	int storefd, rc;

	if (!made) {
		mkdirat(fz_dir(), "store", 0700);
		mkdirat(fz_dir(), "store/" SFS_SESSIONS_DIR, 0700);
		mkdirat(fz_dir(), "store/" SFS_ARCHIVE_DIR, 0700);
		made = true;
	}
	fz_put_file(fz_dir(), "store/" SFS_CONF_NAME, data, size);
	snprintf(path, sizeof(path), "%s/store", fz_dir_path);
	rc = sfs_store_open(path, &storefd, &cfg, why, sizeof(why));
	if (rc == 0) {
		FZ_ASSERT(cfg.version == SFS_FORMAT_VERSION);
		FZ_ASSERT(sfs_kdf_level_name(cfg.kdf) && sfs_cipher_name(cfg.cipher));
		FZ_ASSERT(strcmp(sfs_cipher_name(cfg.cipher), "unknown") != 0);
		close(storefd);
	} else {
		FZ_ASSERT(why[0] && memchr(why, '\0', sizeof(why)));
	}
	return 0;
}

static void seeds(void)
{
	char path[128], conf[4096];
	ssize_t n;

	/* What mkfs.sessionfs writes, for each level and cipher. */
	static const struct {
		enum sfs_kdf_level kdf;
		enum sfs_cipher cipher;
	} stores[] = {{SFS_KDF_INTERACTIVE, SFS_CIPHER_XCHACHA},
		      {SFS_KDF_SENSITIVE, SFS_CIPHER_AESGCM_DERIVED}};

	for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]); i++) {
		char why[256];
		int fd;

		(void)fz_dir();
		snprintf(path, sizeof(path), "%s/seed%zu", fz_dir_path, i);
		if (sfs_store_create(path, stores[i].kdf, stores[i].cipher, why, sizeof(why)) < 0) {
			fprintf(stderr, "fuzz_config: %s\n", why);
			exit(1);
		}
		fd = open(path, O_PATH | O_DIRECTORY);
		n = sfs_read_small(fd, SFS_CONF_NAME, conf, sizeof(conf));
		if (n < 0)
			abort();
		fz_seed(conf, (size_t)n);
		close(fd);
	}
	/* Older and odd ones: no cipher member, a feature, a newer version. */
	static const char *more[] = {
		"{\"format\":\"sessionfs\",\"version\":1,\"features\":[],\"kdf\":\"moderate\","
		"\"block_size\":4096}",
		"{\"format\":\"sessionfs\",\"version\":1,\"features\":[\"x\"],\"kdf\":\"moderate\","
		"\"block_size\":4096}",
		"{\"format\":\"sessionfs\",\"version\":2,\"features\":[],\"kdf\":\"moderate\","
		"\"block_size\":4096,\"cipher\":\"aes256gcm\"}",
	};
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		fz_seed(more[i], strlen(more[i]));
}
