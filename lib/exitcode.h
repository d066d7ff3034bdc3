/*
 * exitcode.h - the exit codes of every sessionfs program (sessionfs,
 * sessionctl, mkfs.sessionfs), as doc/exit-codes.md documents them.
 *
 * 0, 1 and 2 mean the same for all three; from 3 up a code means what its
 * program's section says, so each name carries its program (CTL sessionctl,
 * FS sessionfs, MKFS mkfs.sessionfs). The numbers are public: scripts rely
 * on them, tests check them; never renumber, only add. Knows no C library,
 * no protocol: a list of numbers.
 */
#ifndef SFS_EXITCODE_H
#define SFS_EXITCODE_H

enum sfs_exit {
	SFS_EXIT_OK = 0,    /* success */
	SFS_EXIT_FAIL = 1,  /* any other failure */
	SFS_EXIT_USAGE = 2, /* unknown option, missing or extra argument, bad value */

	/* sessionctl */
	SFS_EXIT_CTL_WRONG_PASSWORD = 3,
	SFS_EXIT_CTL_NO_SESSION = 4,
	SFS_EXIT_CTL_NOT_MOUNT = 5,	/* not proven a sessionfs mount: nothing was sent */
	SFS_EXIT_CTL_BUSY = 6,		/* unlocked by another mount of the store */
	SFS_EXIT_CTL_LOCKED = 7,	/* the session is locked and must not be */
	SFS_EXIT_CTL_EXISTS = 8,	/* a session with that id exists */
	SFS_EXIT_CTL_PERMISSION = 9,	/* only the mounting user and root may control */
	SFS_EXIT_CTL_BAD_PASSWORD = 10, /* empty, the two differ, no terminal */
	SFS_EXIT_CTL_CANCELLED = 11,	/* delete not confirmed */
	SFS_EXIT_CTL_SLOT = 12,		/* a key slot change refused: full, no such, the last */

	/* sessionfs */
	SFS_EXIT_FS_NO_STORE = 3, /* missing, not a directory, not a store */
	SFS_EXIT_FS_NEWER = 4,	  /* newer format, unknown feature or cipher */
	SFS_EXIT_FS_MOUNT = 5,	  /* the mount itself failed */
	SFS_EXIT_FS_BUSY = 6,	  /* a sessionfs is mounted there already */

	/* mkfs.sessionfs */
	SFS_EXIT_MKFS_EXISTS = 3, /* already a store, not empty, not a directory */
};

#endif
