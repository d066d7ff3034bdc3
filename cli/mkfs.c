/*
 * mkfs.c - mkfs.sessionfs: make an empty sessionfs store.
 *
 * Only parses arguments and calls the store layer; knows nothing of the
 * format beyond the names of KDF levels and ciphers.
 */
#include "crypto.h"
#include "exitcode.h"
#include "store.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out, "Usage: mkfs.sessionfs [--kdf=interactive|moderate|sensitive]\n"
		     "                      [--cipher=auto|aes256gcm|xchacha20poly1305] STORE\n"
		     "Make an empty sessionfs store in STORE (absent or an empty directory).\n\n"
		     "  --kdf=LEVEL    Argon2id cost for the store's sessions (default moderate)\n"
		     "  --cipher=NAME  content cipher of the store's sessions: aes256gcm (faster;\n"
		     "                 AES-256-GCM with derived per-write keys; opens only where\n"
		     "                 libsodium has AES-NI), xchacha20poly1305\n"
		     "                 (opens on any CPU), or auto (default): aes256gcm if this\n"
		     "                 CPU has AES-NI, else xchacha20poly1305\n"
		     "  -h, --help     show this help\n"
		     "  -V, --version  show the version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"kdf", required_argument, NULL, 'k'},
		{"cipher", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	enum sfs_kdf_level kdf = SFS_KDF_MODERATE;
	enum sfs_cipher cipher = 0; /* auto */
	char why[512];
	int c, rc;

	opterr = 0; /* the messages are ours: "mkfs.sessionfs: ..." */
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			kdf = sfs_kdf_level_from_name(optarg);
			if (!kdf) {
				fprintf(stderr,
					"mkfs.sessionfs: bad --kdf '%s': want interactive, "
					"moderate or sensitive\n",
					optarg);
				return SFS_EXIT_USAGE;
			}
			break;
		case 'c':
			cipher = strcmp(optarg, "auto") == 0 ? 0 : sfs_cipher_from_name(optarg);
			if (!cipher && strcmp(optarg, "auto") != 0) {
				fprintf(stderr,
					"mkfs.sessionfs: bad --cipher '%s': want auto, aes256gcm "
					"or xchacha20poly1305\n",
					optarg);
				return SFS_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return SFS_EXIT_OK;
		case 'V':
			printf("mkfs.sessionfs %s\n", SFS_VERSION);
			return SFS_EXIT_OK;
		default:
			fprintf(stderr,
				"mkfs.sessionfs: unknown option or missing argument in '%s' (see "
				"mkfs.sessionfs --help)\n",
				argv[optind - 1]);
			return SFS_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr,
			"mkfs.sessionfs: want one argument, STORE; got %d (see mkfs.sessionfs "
			"--help)\n",
			argc - optind);
		return SFS_EXIT_USAGE;
	}
	if (sfs_crypto_init() < 0) {
		fprintf(stderr, "mkfs.sessionfs: cannot initialise libsodium\n");
		return SFS_EXIT_FAIL;
	}
	if (!cipher)
		cipher = sfs_cipher_available(SFS_CIPHER_AESGCM_DERIVED) ? SFS_CIPHER_AESGCM_DERIVED
									 : SFS_CIPHER_XCHACHA;
	rc = sfs_store_create(argv[optind], kdf, cipher, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "mkfs.sessionfs: %s\n", why);
		return (rc == -EEXIST || rc == -ENOTEMPTY || rc == -ENOTDIR) ? SFS_EXIT_MKFS_EXISTS
									     : SFS_EXIT_FAIL;
	}
	printf("mkfs.sessionfs: made an empty store in %s (kdf %s, cipher %s)\n", argv[optind],
	       sfs_kdf_level_name(kdf), sfs_cipher_name(cipher));
	if (!sfs_cipher_available(cipher))
		fprintf(stderr,
			"mkfs.sessionfs: note: this CPU cannot run %s; sessions made here will "
			"use xchacha20poly1305\n",
			sfs_cipher_name(cipher));
	return SFS_EXIT_OK;
}
