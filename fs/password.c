/*
 * password.c - password input for sessionctl; see password.h.
 */
#include "password.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Read one line from @fd into @buf (cap bytes), without the newline. */
static int read_line(int fd, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0 || c == '\n')
			break;
		if (n + 1 >= cap)
			return -EMSGSIZE;
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len = n;
	return 0;
}

/* Prompt on the terminal @tty with echo off; the answer into @buf. */
static int ask(int tty, const char *prompt, char *buf, size_t cap, size_t *len)
{
	struct termios old, quiet;
	int rc;

	if (tcgetattr(tty, &old) < 0)
		return -ENOTTY;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	/* TCSANOW, not TCSAFLUSH: keep what was typed ahead of the prompt. */
	if (write(tty, prompt, strlen(prompt)) < 0 || tcsetattr(tty, TCSANOW, &quiet) < 0)
		return -ENOTTY;
	rc = read_line(tty, buf, cap, len);
	tcsetattr(tty, TCSANOW, &old);
	if (write(tty, "\n", 1) < 0)
		rc = rc ? rc : -EIO;
	return rc;
}

static int from_tty(struct sfs_password *pw, const char *prompt, int confirm)
{
	char *again = sodium_malloc(SFS_PASSWORD_MAX);
	size_t len2 = 0;
	int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC), rc;

	if (tty < 0 || !again) {
		if (tty >= 0)
			close(tty);
		if (again)
			sodium_free(again);
		return tty < 0 ? -ENOTTY : -ENOMEM;
	}
	rc = ask(tty, prompt, pw->buf, SFS_PASSWORD_MAX, &pw->len);
	if (rc == 0 && confirm) {
		rc = ask(tty, "Repeat the password: ", again, SFS_PASSWORD_MAX, &len2);
		if (rc == 0 && (len2 != pw->len || sodium_memcmp(again, pw->buf, len2) != 0))
			rc = -EKEYREJECTED;
	}
	sodium_free(again);
	close(tty);
	return rc;
}

int sfs_password_read(struct sfs_password *pw, const char *file, const char *prompt,
		      int confirm)
{
	int rc, fd;

	pw->len = 0;
	pw->buf = sodium_malloc(SFS_PASSWORD_MAX);
	if (!pw->buf)
		return -ENOMEM;
	if (file) {
		fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
		} else {
			rc = read_line(fd, pw->buf, SFS_PASSWORD_MAX, &pw->len);
			if (fd != STDIN_FILENO)
				close(fd);
		}
	} else {
		rc = from_tty(pw, prompt, confirm);
	}
	if (rc == 0 && pw->len == 0)
		rc = -EINVAL;
	if (rc < 0)
		sfs_password_free(pw);
	return rc;
}

void sfs_password_free(struct sfs_password *pw)
{
	if (pw->buf)
		sodium_free(pw->buf);
	pw->buf = NULL;
	pw->len = 0;
}
