/*
 * fsck.c - fsck.sessionfs: check a sessionfs store offline and repair what
 * it can (lib/fsck.h does the walk and the repairs).
 *
 * Parses arguments, reads passwords (password.c: a file's first line or a
 * no-echo prompt, never argv or the environment), asks on the terminal
 * before each repair when neither -n nor -y is given, shows progress on a
 * terminal, and prints the findings as text or as one JSON document. Knows
 * nothing of the format.
 */
#include "crypto.h"
#include "fsck.h"
#include "password.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "fsck.sessionfs"
#define MAX_PW 64

struct pwent {
	const char *id;	  /* NULL: every session */
	const char *file; /* NULL: ask on the terminal */
	struct sfs_password pw;
	bool read;
	bool used; /* a session of that id was found */
};

struct cli {
	struct pwent pw[MAX_PW];
	int npw;
	bool json, verbose, progress;
	FILE *tty;
	struct timespec start, last;
	bool shown;
};

static volatile sig_atomic_t cancel;

static void on_signal(int sig)
{
	(void)sig;
	cancel = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG
		" [-n | -y] [--password-file F | --session ID [--password-file F]]...\n"
		"                      [--json] [-v] STORE\n"
		"Check a sessionfs store offline (not while a mount uses the sessions checked),\n"
		"and repair what can be repaired.\n\n"
		"  -n, --no             change nothing: only report\n"
		"  -y, --yes            repair without asking (without -n or -y, ask on the\n"
		"                       terminal before each repair; no terminal: change nothing)\n"
		"  --password-file F    the first line of F ('-' = standard input) is the\n"
		"                       password of the session named by the --session before it,\n"
		"                       or of every session if none is\n"
		"  --session ID         authenticate session ID too (password from the following\n"
		"                       --password-file, else asked on the terminal)\n"
		"  --json               print one JSON document with every finding\n"
		"  -v, --verbose        also print notes (what is worth knowing but not wrong)\n"
		"  -h, --help           show this help\n"
		"  -V, --version        show the version\n\n"
		"Exit status, a bit mask: 0 clean, 1 errors corrected, 4 errors left uncorrected,\n"
		"8 operational error, 16 usage error, 32 cancelled.\n");
}

static double elapsed(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static int get_password(void *arg, const char *id, const char **pw, size_t *len)
{
	struct cli *cl = arg;
	struct pwent *any = NULL, *e = NULL;
	char prompt[128];
	int rc;

	for (int i = 0; i < cl->npw; i++) {
		if (cl->pw[i].id && strcmp(cl->pw[i].id, id) == 0)
			e = &cl->pw[i];
		else if (!cl->pw[i].id)
			any = &cl->pw[i];
	}
	if (e)
		e->used = true;
	else
		e = any;
	if (!e)
		return 0;
	if (!e->read) {
		snprintf(prompt, sizeof(prompt), "Password of %s: ", id);
		if (cl->shown && cl->progress) {
			fprintf(stderr, "\r\033[K");
			cl->shown = false;
		}
		rc = sfs_password_read(&e->pw, e->file, prompt, 0);
		if (rc < 0) {
			fprintf(stderr, PROG ": %s: cannot read a password: %s\n", id,
				rc == -ENOTTY ? "no terminal (use --password-file)"
					      : strerror(-rc));
			return 0;
		}
		e->read = true;
	}
	*pw = e->pw.buf;
	*len = e->pw.len;
	return 1;
}

static const char *state_name(enum sfs_fsck_state s)
{
	switch (s) {
	case SFS_FSCK_NOTE:
		return "note";
	case SFS_FSCK_FIXED:
		return "fixed";
	case SFS_FSCK_LEFT:
		return "left";
	case SFS_FSCK_SKIPPED:
		return "skipped";
	case SFS_FSCK_FAILED:
		return "failed";
	}
	return "?";
}

static void clear_progress(struct cli *cl)
{
	if (cl->shown) {
		fprintf(stderr, "\r\033[K");
		cl->shown = false;
	}
}

static void print_finding(FILE *out, const struct sfs_fsck_finding *f)
{
	fprintf(out, "%s%s%s: %s", f->session, *f->session ? ": " : "", f->path, f->what);
	if (f->state == SFS_FSCK_FIXED)
		fprintf(out, "; repaired: %s\n", f->repair);
	else if (f->state == SFS_FSCK_FAILED && f->repair)
		fprintf(out, "; repair failed (%s): %s\n", strerror(-f->err), f->repair);
	else if (f->state == SFS_FSCK_LEFT && f->repair)
		fprintf(out, "; left as it is (repair: %s)\n", f->repair);
	else if (f->state == SFS_FSCK_LEFT)
		fprintf(out, "; left as it is (no repair)\n");
	else
		fputc('\n', out);
}

static bool ask(void *arg, const struct sfs_fsck_finding *f)
{
	struct cli *cl = arg;
	char line[64];

	if (!cl->tty)
		return false;
	clear_progress(cl);
	fprintf(cl->tty, "%s%s%s: %s\nRepair: %s? [y/N] ", f->session, *f->session ? ": " : "",
		f->path, f->what, f->repair);
	fflush(cl->tty);
	if (!fgets(line, sizeof(line), cl->tty)) {
		cancel = 1;
		return false;
	}
	return line[0] == 'y' || line[0] == 'Y';
}

static void report(void *arg, const struct sfs_fsck_finding *f)
{
	struct cli *cl = arg;

	if (cl->json || (f->state == SFS_FSCK_NOTE && !cl->verbose))
		return;
	clear_progress(cl);
	print_finding(stdout, f);
	fflush(stdout);
}

static void progress(void *arg, const struct sfs_fsck_progress *p)
{
	struct cli *cl = arg;
	struct timespec now;
	double t;

	if (!cl->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (elapsed(&cl->last, &now) < 0.25)
		return;
	cl->last = now;
	t = elapsed(&cl->start, &now);
	fprintf(stderr, "\r\033[K" PROG ": %u/%u sessions, %.1f of %.1f MB checked, %.1f MB/s",
		p->done, p->sessions, (double)p->bytes / 1e6, (double)p->total / 1e6,
		t > 0 ? (double)p->bytes / 1e6 / t : 0.0);
	if (t > 1 && p->bytes > 0 && p->total > p->bytes)
		fprintf(stderr, ", %.0f s left",
			(double)(p->total - p->bytes) * t / (double)p->bytes);
	if (*p->current)
		fprintf(stderr, ", now %s", p->current);
	cl->shown = true;
}

static int print_json(const struct sfs_fsck *c, const char *mode, int bits, double secs)
{
	json_t *doc = json_object(), *arr = json_array();

	for (size_t i = 0; i < c->n; i++) {
		const struct sfs_fsck_finding *f = &c->v[i];

		json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:s, s:s, s:s?, s:s, s:i}",
						     "session", f->session, "path", f->path,
						     "path_decrypted", f->plain, "code", f->code,
						     "what", f->what, "repair", f->repair, "state",
						     state_name(f->state), "errno", -f->err));
	}
	json_object_set_new(doc, "store", json_string(c->store));
	json_object_set_new(doc, "mode", json_string(mode));
	json_object_set_new(doc, "exit", json_integer(bits));
	json_object_set_new(doc, "sessions", json_integer(c->prog.sessions));
	json_object_set_new(doc, "sessions_done", json_integer(c->prog.done));
	json_object_set_new(doc, "bytes_checked", json_integer((json_int_t)c->prog.bytes));
	json_object_set_new(doc, "seconds", json_real(secs));
	json_object_set_new(doc, "cancelled", json_boolean(c->cancelled));
	json_object_set_new(doc, "findings", arr);
	if (json_dumpf(doc, stdout, JSON_INDENT(2)) < 0) {
		json_decref(doc);
		return -EIO;
	}
	putchar('\n');
	json_decref(doc);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"no", no_argument, NULL, 'n'},
		{"yes", no_argument, NULL, 'y'},
		{"password-file", required_argument, NULL, 'p'},
		{"session", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	static struct cli cl;
	struct sfs_fsck c = {0};
	bool no = false, yes = false, stdin_used = false;
	const char *mode;
	struct timespec end;
	int opt, bits, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "nyvhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			no = true;
			break;
		case 'y':
			yes = true;
			break;
		case 's':
			if (!sfs_id_valid(optarg)) {
				fprintf(stderr, PROG ": bad --session '%s': want INC-xxxx\n",
					optarg);
				return SFS_FSCK_EXIT_USAGE;
			}
			if (cl.npw == MAX_PW) {
				fprintf(stderr, PROG ": too many --session options\n");
				return SFS_FSCK_EXIT_USAGE;
			}
			cl.pw[cl.npw++] = (struct pwent){.id = optarg};
			break;
		case 'p':
			if (strcmp(optarg, "-") == 0) {
				if (stdin_used) {
					fprintf(stderr, PROG ": only one --password-file may be "
							     "'-' (standard input)\n");
					return SFS_FSCK_EXIT_USAGE;
				}
				stdin_used = true;
			}
			if (cl.npw > 0 && cl.pw[cl.npw - 1].id && !cl.pw[cl.npw - 1].file) {
				cl.pw[cl.npw - 1].file = optarg;
			} else if (cl.npw < MAX_PW) {
				cl.pw[cl.npw++] = (struct pwent){.file = optarg};
			}
			break;
		case 'j':
			cl.json = true;
			break;
		case 'v':
			cl.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return SFS_FSCK_EXIT_CLEAN;
		case 'V':
			printf(PROG " %s\n", SFS_VERSION);
			return SFS_FSCK_EXIT_CLEAN;
		default:
			fprintf(stderr,
				PROG ": unknown option or missing argument in '%s' (see " PROG
				     " --help)\n",
				argv[optind - 1]);
			return SFS_FSCK_EXIT_USAGE;
		}
	}
	if (no && yes) {
		fprintf(stderr, PROG ": -n and -y exclude each other\n");
		return SFS_FSCK_EXIT_USAGE;
	}
	if (optind != argc - 1) {
		fprintf(stderr, PROG ": want one argument, STORE; got %d (see " PROG " --help)\n",
			argc - optind);
		return SFS_FSCK_EXIT_USAGE;
	}
	for (int i = 0; i < cl.npw; i++)
		for (int j = 0; j < i; j++)
			if ((cl.pw[i].id == NULL) == (cl.pw[j].id == NULL) &&
			    (!cl.pw[i].id || strcmp(cl.pw[i].id, cl.pw[j].id) == 0)) {
				fprintf(stderr, PROG ": a password given twice for %s\n",
					cl.pw[i].id ? cl.pw[i].id : "every session");
				return SFS_FSCK_EXIT_USAGE;
			}
	if (sfs_crypto_init() < 0) {
		fprintf(stderr, PROG ": cannot initialise libsodium\n");
		return SFS_FSCK_EXIT_ERROR;
	}
	sfs_store_json_wipe_on_free();
	c.store = argv[optind];
	if (no) {
		c.mode = SFS_FSCK_CHECK;
		mode = "check";
	} else if (yes) {
		c.mode = SFS_FSCK_REPAIR;
		mode = "repair";
	} else {
		cl.tty = isatty(STDIN_FILENO) ? fopen("/dev/tty", "r+") : NULL;
		if (cl.tty) {
			c.mode = SFS_FSCK_ASK;
			mode = "ask";
		} else {
			fprintf(stderr,
				PROG ": no terminal to ask before repairs: changing nothing "
				     "(use -y to repair, -n to only check)\n");
			c.mode = SFS_FSCK_CHECK;
			mode = "check";
		}
	}
	cl.progress = !cl.json && isatty(STDERR_FILENO);
	c.measure = cl.progress;
	c.password = get_password;
	c.ask = ask;
	c.report = report;
	c.progress = progress;
	c.arg = &cl;
	c.cancel = &cancel;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	clock_gettime(CLOCK_MONOTONIC, &cl.start);
	rc = sfs_fsck_run(&c);
	clock_gettime(CLOCK_MONOTONIC, &end);
	clear_progress(&cl);
	bits = rc < 0 ? SFS_FSCK_EXIT_ERROR : sfs_fsck_exit_bits(&c);
	if (cl.json) {
		if (print_json(&c, mode, bits, elapsed(&cl.start, &end)) < 0)
			bits |= SFS_FSCK_EXIT_ERROR;
	} else if (rc < 0) {
		fprintf(stderr, PROG ": %s: %s\n", c.store, c.n ? c.v[0].what : strerror(-rc));
	} else {
		size_t fixed = 0, left = 0;

		for (size_t i = 0; i < c.n; i++) {
			fixed += c.v[i].state == SFS_FSCK_FIXED;
			left += c.v[i].state == SFS_FSCK_LEFT || c.v[i].state == SFS_FSCK_SKIPPED ||
				c.v[i].state == SFS_FSCK_FAILED;
		}
		printf(PROG ": %s: %u of %u sessions checked, %.1f MB in %.2f s; %zu problem(s) "
			    "repaired, %zu left%s\n",
		       c.store, c.prog.done, c.prog.sessions, (double)c.prog.bytes / 1e6,
		       elapsed(&cl.start, &end), fixed, left,
		       c.cancelled ? "; cancelled before the end" : "");
	}
	for (int i = 0; rc == 0 && !c.cancelled && i < cl.npw; i++)
		if (cl.pw[i].id && !cl.pw[i].used) {
			fprintf(stderr,
				PROG ": %s: no such session in the store (or it could not be "
				     "checked)\n",
				cl.pw[i].id);
			bits |= SFS_FSCK_EXIT_ERROR;
		}
	sfs_fsck_free(&c);
	for (int i = 0; i < cl.npw; i++)
		if (cl.pw[i].read)
			sfs_password_free(&cl.pw[i].pw);
	if (cl.tty)
		fclose(cl.tty);
	return bits;
}
