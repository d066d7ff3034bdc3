/*
 * password.h - reading passwords for sessionctl: from the first line of a
 * file (or standard input), or from the terminal without echo. Passwords
 * live in sodium_malloc memory and are wiped by sfs_password_free.
 * Knows nothing of sessions or the control protocol.
 */
#ifndef SFS_PASSWORD_H
#define SFS_PASSWORD_H

#include <stddef.h>

#define SFS_PASSWORD_MAX 4096

struct sfs_password {
	char *buf; /* sodium_malloc'd, NUL-terminated */
	size_t len;
};

/*
 * Read a password: from @file ("-" = stdin) if not NULL, else from
 * /dev/tty with @prompt, asked twice when @confirm. 0; -ENOTTY no terminal;
 * -EINVAL empty; -EMSGSIZE too long; -EKEYREJECTED the two entries differ;
 * other -errno reading the file.
 */
int sfs_password_read(struct sfs_password *pw, const char *file, const char *prompt, int confirm);

void sfs_password_free(struct sfs_password *pw);

#endif
