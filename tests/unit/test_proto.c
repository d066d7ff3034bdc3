/*
 * test_proto.c - the control protocol's tables (lib/proto.h): the wire
 * names of ops and codes as doc/control.md spells them, what each op takes,
 * the errno mapping both ways, and sessionctl's exit code for each code
 * (doc/exit-codes.md).
 */
#include "check.h"
#include "proto.h"

#include <errno.h>

static void test_ops(void)
{
	static const char *const names[] = {
		"hello",       "new",	  "unlock", "lock",	    "lock_all",
		"list",	       "passwd",  "delete", "use",	    "unuse",
		"status",      "archive", "keys",   "add_password", "add_recovery_key",
		"remove_slot", "redact",  "rules",  "copy",	    "rekey"};

	CHECK_EQ(sizeof(names) / sizeof(names[0]), SFS_PROTO_OPS);
	for (int op = 0; op < SFS_PROTO_OPS; op++) {
		CHECK_STR(sfs_proto_op_name(op), names[op]);
		CHECK_EQ(sfs_proto_op_find(names[op]), op);
	}
	CHECK_EQ(sfs_proto_op_find("Lock"), -EINVAL);
	CHECK_EQ(sfs_proto_op_find(""), -EINVAL);
	CHECK_EQ(sfs_proto_op_find(NULL), -EINVAL);
	CHECK(sfs_proto_op_name(SFS_PROTO_OPS) == NULL);
	CHECK(sfs_proto_op_name((enum sfs_proto_op) - 1) == NULL);

	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_HELLO), 0);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_NEW),
		 SFS_PROTO_TAKES_PASSWORD | SFS_PROTO_SETS_PASSWORD);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_UNLOCK),
		 SFS_PROTO_TAKES_SESSION | SFS_PROTO_TAKES_PASSWORD);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_LOCK), SFS_PROTO_TAKES_SESSION);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_LOCK_ALL), 0);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_LIST), 0);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_PASSWD),
		 SFS_PROTO_TAKES_SESSION | SFS_PROTO_TAKES_PASSWORD | SFS_PROTO_TAKES_NEW_PASSWORD);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_DELETE), SFS_PROTO_TAKES_SESSION);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_USE), SFS_PROTO_TAKES_SESSION);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_UNUSE), 0);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_STATUS), SFS_PROTO_TAKES_SESSION);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_ARCHIVE), SFS_PROTO_TAKES_SESSION);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_KEYS), SFS_PROTO_TAKES_SESSION);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_ADD_PASSWORD),
		 SFS_PROTO_TAKES_SESSION | SFS_PROTO_TAKES_PASSWORD | SFS_PROTO_TAKES_NEW_PASSWORD);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_ADD_RECOVERY_KEY),
		 SFS_PROTO_TAKES_SESSION | SFS_PROTO_TAKES_PASSWORD);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_REMOVE_SLOT),
		 SFS_PROTO_TAKES_SESSION | SFS_PROTO_TAKES_PASSWORD);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_REDACT), SFS_PROTO_TAKES_SESSION);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_RULES), SFS_PROTO_TAKES_SESSION);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_COPY), SFS_PROTO_TAKES_SESSION);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OP_REKEY),
		 SFS_PROTO_TAKES_SESSION | SFS_PROTO_TAKES_PASSWORD);
	CHECK_EQ(sfs_proto_op_takes(SFS_PROTO_OPS), 0);
}

/* Code, wire name, errno it stands for, sessionctl's exit code (doc/exit-codes.md). */
static const struct {
	enum sfs_proto_err err;
	const char *name;
	int errnum;
	int exit;
} codes[] = {
	{SFS_PROTO_ERR_IO, "io", -EIO, 1},
	{SFS_PROTO_ERR_WRONG_PASSWORD, "wrong-password", -EKEYREJECTED, 3},
	{SFS_PROTO_ERR_NO_SUCH_SESSION, "no-such-session", -ENOENT, 4},
	{SFS_PROTO_ERR_BUSY, "busy", -EBUSY, 6},
	{SFS_PROTO_ERR_LOCKED, "locked", -EACCES, 7},
	{SFS_PROTO_ERR_EXISTS, "exists", -EEXIST, 8},
	{SFS_PROTO_ERR_INVALID, "invalid", -EINVAL, 2},
	{SFS_PROTO_ERR_PERMISSION, "permission", -EPERM, 9},
	{SFS_PROTO_ERR_UNSUPPORTED, "unsupported", -ENOTSUP, 1},
	{SFS_PROTO_ERR_SLOT, "slot", -ENOKEY, 12},
};

static void test_codes(void)
{
	const char *text;

	CHECK_EQ(sizeof(codes) / sizeof(codes[0]), SFS_PROTO_ERRS);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		CHECK_STR(sfs_proto_err_name(codes[i].err), codes[i].name);
		CHECK_EQ(sfs_proto_err_find(codes[i].name), codes[i].err);
		CHECK_EQ(sfs_proto_err_errno(codes[i].err), codes[i].errnum);
		CHECK_EQ(sfs_proto_err_exit(codes[i].err), codes[i].exit);
		/* Both ways: each code's errno comes back as it, but "permission" (never sent). */
		if (codes[i].err != SFS_PROTO_ERR_PERMISSION)
			CHECK_EQ(sfs_proto_err_from_errno(codes[i].errnum, NULL), codes[i].err);
	}
	CHECK_EQ(sfs_proto_err_find("no-such-thing"), SFS_PROTO_ERR_IO);
	CHECK_EQ(sfs_proto_err_find(NULL), SFS_PROTO_ERR_IO);
	CHECK_STR(sfs_proto_err_name(SFS_PROTO_ERRS), "io");
	CHECK_EQ(sfs_proto_err_exit(SFS_PROTO_ERRS), 1);

	/* The texts the daemon sends (tests/mount check some of them). */
	CHECK_EQ(sfs_proto_err_from_errno(-EKEYREJECTED, &text), SFS_PROTO_ERR_WRONG_PASSWORD);
	CHECK_STR(text, "wrong password");
	CHECK_EQ(sfs_proto_err_from_errno(-EBUSY, &text), SFS_PROTO_ERR_BUSY);
	CHECK_STR(text, "the session is unlocked by another mount of this store");
	CHECK_EQ(sfs_proto_err_from_errno(-EUCLEAN, &text), SFS_PROTO_ERR_UNSUPPORTED);
	CHECK_STR(text, "the session's key file is damaged or not sessionfs's");
	CHECK_EQ(sfs_proto_err_from_errno(-EPROTONOSUPPORT, &text), SFS_PROTO_ERR_UNSUPPORTED);
	CHECK_STR(text, "the session's key file has a newer format");
	CHECK_EQ(sfs_proto_err_from_errno(-ENOTSUP, &text), SFS_PROTO_ERR_UNSUPPORTED);
	CHECK_STR(text, "the session's content cipher (AES-256-GCM) needs AES-NI, which this "
			"CPU or libsodium lacks");
	/* Key slot refusals: one code, a text each. */
	CHECK_EQ(sfs_proto_err_from_errno(-EXFULL, &text), SFS_PROTO_ERR_SLOT);
	CHECK_STR(text, "all 8 key slots of the session are in use");
	CHECK_EQ(sfs_proto_err_from_errno(-EMLINK, &text), SFS_PROTO_ERR_SLOT);
	CHECK_STR(text, "that is the session's last key slot: one must stay");
	CHECK_EQ(sfs_proto_err_from_errno(-ENOTUNIQ, NULL), SFS_PROTO_ERR_SLOT);
	CHECK_EQ(sfs_proto_err_from_errno(-EMEDIUMTYPE, NULL), SFS_PROTO_ERR_SLOT);
	/* A damaged metadata.json (SFS_METADATA_EDAMAGED): io, exit 1, not usage. */
	CHECK_EQ(sfs_proto_err_from_errno(-EBADE, &text), SFS_PROTO_ERR_IO);
	CHECK_EQ(sfs_proto_err_exit(SFS_PROTO_ERR_IO), SFS_EXIT_FAIL);
	CHECK(strncmp(text, "metadata.json is damaged", 24) == 0);
	/* Others are io with strerror's text; so is -EPERM. */
	CHECK_EQ(sfs_proto_err_from_errno(-ENOSPC, &text), SFS_PROTO_ERR_IO);
	CHECK_STR(text, strerror(ENOSPC));
	CHECK_EQ(sfs_proto_err_from_errno(-EPERM, &text), SFS_PROTO_ERR_IO);
	CHECK_STR(text, strerror(EPERM));
}

/* The numbers are public (doc/exit-codes.md): never renumbered. */
static void test_exit_codes(void)
{
	CHECK_EQ(SFS_EXIT_OK, 0);
	CHECK_EQ(SFS_EXIT_FAIL, 1);
	CHECK_EQ(SFS_EXIT_USAGE, 2);
	CHECK_EQ(SFS_EXIT_CTL_WRONG_PASSWORD, 3);
	CHECK_EQ(SFS_EXIT_CTL_NO_SESSION, 4);
	CHECK_EQ(SFS_EXIT_CTL_NOT_MOUNT, 5);
	CHECK_EQ(SFS_EXIT_CTL_BUSY, 6);
	CHECK_EQ(SFS_EXIT_CTL_LOCKED, 7);
	CHECK_EQ(SFS_EXIT_CTL_EXISTS, 8);
	CHECK_EQ(SFS_EXIT_CTL_PERMISSION, 9);
	CHECK_EQ(SFS_EXIT_CTL_BAD_PASSWORD, 10);
	CHECK_EQ(SFS_EXIT_CTL_CANCELLED, 11);
	CHECK_EQ(SFS_EXIT_CTL_SLOT, 12);
	CHECK_EQ(SFS_EXIT_FS_NO_STORE, 3);
	CHECK_EQ(SFS_EXIT_FS_NEWER, 4);
	CHECK_EQ(SFS_EXIT_FS_MOUNT, 5);
	CHECK_EQ(SFS_EXIT_FS_BUSY, 6);
	CHECK_EQ(SFS_EXIT_MKFS_EXISTS, 3);
}

int main(void)
{
	test_ops();
	test_codes();
	test_exit_codes();
	return check_done();
}
