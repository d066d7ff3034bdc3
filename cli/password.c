/*
 * password.c - password input for sessionctl; see password.h.
 *
 * While echo is off, a signal that would end or stop the process (Ctrl-C,
 * Ctrl-\, Ctrl-Z, kill, a hangup) first puts the terminal back as it was,
 * then takes its default action; after a stop and SIGCONT in the
 * foreground, echo goes off again and the prompt is shown again.
 */
#include "password.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* The signals caught while echo is off; the last three stop the process. */
static const int caught[] = {
	SIGINT,	 SIGTERM, SIGHUP,  SIGQUIT, SIGALRM, SIGPIPE,
	SIGUSR1, SIGUSR2, SIGTSTP, SIGTTIN, SIGTTOU,
};
#define N_CAUGHT (sizeof(caught) / sizeof(caught[0]))

/* What the handler needs; set before the handlers go in, read only by it. */
static struct {
	int tty;
	const char *prompt;
	struct termios old, quiet;
	struct sigaction saved[N_CAUGHT];
	bool installed[N_CAUGHT];
	volatile sig_atomic_t active; /* echo is meant to be off right now */
} echo_off;

static void on_signal(int sig);

static void set_handler(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	/* Block the others meanwhile: also SIGTTOU, so tcsetattr works in the background. */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < N_CAUGHT; i++)
		sigaddset(&sa.sa_mask, caught[i]);
	sigaction(sig, &sa, NULL);
}

/* Only async-signal-safe calls here. */
static void on_signal(int sig)
{
	int saved_errno = errno;
	struct sigaction dfl;
	sigset_t just;

	tcsetattr(echo_off.tty, TCSANOW, &echo_off.old);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	sigemptyset(&just);
	sigaddset(&just, sig);
	/* Now, with the default action: it ends or stops the process here. */
	raise(sig);
	sigprocmask(SIG_UNBLOCK, &just, NULL);
	/* Continued after a stop: hide the typing again, if we are in the foreground. */
	set_handler(sig);
	if (echo_off.active && tcgetpgrp(echo_off.tty) == getpgrp()) {
		tcsetattr(echo_off.tty, TCSANOW, &echo_off.quiet);
		if (write(echo_off.tty, echo_off.prompt, strlen(echo_off.prompt)) < 0) {
			/* nothing to be done in a handler */
		}
	}
	errno = saved_errno;
}

/* Catch what would leave the terminal without echo; not what was ignored. */
static void catch_signals(void)
{
	for (size_t i = 0; i < N_CAUGHT; i++) {
		echo_off.installed[i] = false;
		if (sigaction(caught[i], NULL, &echo_off.saved[i]) < 0 ||
		    echo_off.saved[i].sa_handler == SIG_IGN)
			continue;
		set_handler(caught[i]);
		echo_off.installed[i] = true;
	}
}

static void release_signals(void)
{
	for (size_t i = 0; i < N_CAUGHT; i++)
		if (echo_off.installed[i])
			sigaction(caught[i], &echo_off.saved[i], NULL);
}

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
	echo_off.tty = tty;
	echo_off.prompt = prompt;
	echo_off.old = old;
	echo_off.quiet = quiet;
	catch_signals();
	echo_off.active = 1;
	/* TCSANOW, not TCSAFLUSH: keep what was typed ahead of the prompt. */
	if (write(tty, prompt, strlen(prompt)) < 0 || tcsetattr(tty, TCSANOW, &quiet) < 0) {
		echo_off.active = 0;
		tcsetattr(tty, TCSANOW, &old);
		release_signals();
		return -ENOTTY;
	}
	rc = read_line(tty, buf, cap, len);
	echo_off.active = 0;
	tcsetattr(tty, TCSANOW, &old);
	release_signals();
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

int sfs_password_read(struct sfs_password *pw, const char *file, const char *prompt, int confirm)
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
