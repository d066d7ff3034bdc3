/*
 * proto.c - the tables behind proto.h: ops with what each takes, error codes
 * with their errno and exit code, and the daemon's texts for errnos.
 *
 * Names and numbers only: no FUSE, no JSON, no session.
 */
#include "proto.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *name;
	unsigned int takes;
} ops[SFS_PROTO_OPS] = {
	[SFS_PROTO_OP_HELLO] = {"hello", 0},
	[SFS_PROTO_OP_NEW] = {"new", SFS_PROTO_TAKES_PASSWORD | SFS_PROTO_SETS_PASSWORD},
	[SFS_PROTO_OP_UNLOCK] = {"unlock", SFS_PROTO_TAKES_SESSION | SFS_PROTO_TAKES_PASSWORD},
	[SFS_PROTO_OP_LOCK] = {"lock", SFS_PROTO_TAKES_SESSION},
	[SFS_PROTO_OP_LOCK_ALL] = {"lock_all", 0},
	[SFS_PROTO_OP_LIST] = {"list", 0},
	[SFS_PROTO_OP_PASSWD] = {"passwd", SFS_PROTO_TAKES_SESSION | SFS_PROTO_TAKES_PASSWORD |
						   SFS_PROTO_TAKES_NEW_PASSWORD},
	[SFS_PROTO_OP_DELETE] = {"delete", SFS_PROTO_TAKES_SESSION},
	[SFS_PROTO_OP_USE] = {"use", SFS_PROTO_TAKES_SESSION},
	[SFS_PROTO_OP_UNUSE] = {"unuse", 0},
	[SFS_PROTO_OP_STATUS] = {"status", SFS_PROTO_TAKES_SESSION},
	[SFS_PROTO_OP_ARCHIVE] = {"archive", SFS_PROTO_TAKES_SESSION},
	[SFS_PROTO_OP_KEYS] = {"keys", SFS_PROTO_TAKES_SESSION},
	[SFS_PROTO_OP_ADD_PASSWORD] = {"add_password", SFS_PROTO_TAKES_SESSION |
							       SFS_PROTO_TAKES_PASSWORD |
							       SFS_PROTO_TAKES_NEW_PASSWORD},
	[SFS_PROTO_OP_ADD_RECOVERY_KEY] = {"add_recovery_key",
					   SFS_PROTO_TAKES_SESSION | SFS_PROTO_TAKES_PASSWORD},
	[SFS_PROTO_OP_REMOVE_SLOT] = {"remove_slot",
				      SFS_PROTO_TAKES_SESSION | SFS_PROTO_TAKES_PASSWORD},
	[SFS_PROTO_OP_REDACT] = {"redact", SFS_PROTO_TAKES_SESSION},
	[SFS_PROTO_OP_RULES] = {"rules", SFS_PROTO_TAKES_SESSION},
	[SFS_PROTO_OP_COPY] = {"copy", SFS_PROTO_TAKES_SESSION},
	[SFS_PROTO_OP_REKEY] = {"rekey", SFS_PROTO_TAKES_SESSION | SFS_PROTO_TAKES_PASSWORD},
};

/* Each code: its name, the errno it stands for, sessionctl's exit code. */
static const struct {
	const char *name;
	int err;
	enum sfs_exit exit;
} errs[SFS_PROTO_ERRS] = {
	[SFS_PROTO_ERR_IO] = {"io", -EIO, SFS_EXIT_FAIL},
	[SFS_PROTO_ERR_WRONG_PASSWORD] = {"wrong-password", -EKEYREJECTED,
					  SFS_EXIT_CTL_WRONG_PASSWORD},
	[SFS_PROTO_ERR_NO_SUCH_SESSION] = {"no-such-session", -ENOENT, SFS_EXIT_CTL_NO_SESSION},
	[SFS_PROTO_ERR_BUSY] = {"busy", -EBUSY, SFS_EXIT_CTL_BUSY},
	[SFS_PROTO_ERR_LOCKED] = {"locked", -EACCES, SFS_EXIT_CTL_LOCKED},
	[SFS_PROTO_ERR_EXISTS] = {"exists", -EEXIST, SFS_EXIT_CTL_EXISTS},
	[SFS_PROTO_ERR_INVALID] = {"invalid", -EINVAL, SFS_EXIT_USAGE},
	[SFS_PROTO_ERR_PERMISSION] = {"permission", -EPERM, SFS_EXIT_CTL_PERMISSION},
	[SFS_PROTO_ERR_UNSUPPORTED] = {"unsupported", -ENOTSUP, SFS_EXIT_FAIL},
	[SFS_PROTO_ERR_SLOT] = {"slot", -ENOKEY, SFS_EXIT_CTL_SLOT},
};

/*
 * The errnos the daemon answers with a code of their own, and the text sent
 * with each. Any other errno is "io" with strerror's text; -EPERM stays so
 * ("permission" is understood by sessionctl, not sent).
 */
static const struct {
	int err;
	enum sfs_proto_err code;
	const char *text;
} texts[] = {
	{-EKEYREJECTED, SFS_PROTO_ERR_WRONG_PASSWORD, "wrong password"},
	{-ENOENT, SFS_PROTO_ERR_NO_SUCH_SESSION, "no such session"},
	{-EBUSY, SFS_PROTO_ERR_BUSY, "the session is unlocked by another mount of this store"},
	{-EACCES, SFS_PROTO_ERR_LOCKED, "the session is locked"},
	{-EEXIST, SFS_PROTO_ERR_EXISTS, "a session with that id already exists"},
	{-EINVAL, SFS_PROTO_ERR_INVALID, "invalid request"},
	{-EUCLEAN, SFS_PROTO_ERR_UNSUPPORTED,
	 "the session's key file is damaged or not sessionfs's"},
	{-EPROTONOSUPPORT, SFS_PROTO_ERR_UNSUPPORTED, "the session's key file has a newer format"},
	{-ENOTSUP, SFS_PROTO_ERR_UNSUPPORTED,
	 "the session's content cipher (AES-256-GCM) needs AES-NI, which this CPU or libsodium "
	 "lacks"},
	/* key slots: lib/session.h's SFS_SLOT_E* */
	{-ENOKEY, SFS_PROTO_ERR_SLOT, "the session has no key slot of that number"},
	{-EXFULL, SFS_PROTO_ERR_SLOT, "all 8 key slots of the session are in use"},
	{-EMLINK, SFS_PROTO_ERR_SLOT, "that is the session's last key slot: one must stay"},
	{-ENOTUNIQ, SFS_PROTO_ERR_SLOT,
	 "the password given opens only the slot to be removed: give another slot's password"},
	{-EMEDIUMTYPE, SFS_PROTO_ERR_SLOT,
	 "that is a recovery key: passwd changes password slots only (use passwd --add)"},
	{-EDESTADDRREQ, SFS_PROTO_ERR_SLOT,
	 "a key slot has no secret given: give its password or recovery key, or drop it"},
	/* status: lib/metadata.h's SFS_METADATA_EDAMAGED */
	{-EBADE, SFS_PROTO_ERR_IO,
	 "metadata.json is damaged: the stored document is not a JSON object (write a whole "
	 "document to it, or see fsck.sessionfs)"},
	/* rekey: lib/rekey.h's SFS_REKEY_EKEPT */
	{-ENOTNAM, SFS_PROTO_ERR_IO,
	 "the session keeps bytes cut from a damaged file (events.kept-*, torn.kept-*) under "
	 "its old key: look at them, remove them, then rekey"},
};

const char *sfs_proto_op_name(enum sfs_proto_op op)
{
	return (unsigned int)op < SFS_PROTO_OPS ? ops[op].name : NULL;
}

int sfs_proto_op_find(const char *name)
{
	for (size_t i = 0; name && i < COUNT(ops); i++)
		if (strcmp(name, ops[i].name) == 0)
			return (int)i;
	return -EINVAL;
}

unsigned int sfs_proto_op_takes(enum sfs_proto_op op)
{
	return (unsigned int)op < SFS_PROTO_OPS ? ops[op].takes : 0;
}

const char *sfs_proto_err_name(enum sfs_proto_err err)
{
	return errs[(unsigned int)err < SFS_PROTO_ERRS ? err : SFS_PROTO_ERR_IO].name;
}

enum sfs_proto_err sfs_proto_err_find(const char *name)
{
	for (size_t i = 0; name && i < COUNT(errs); i++)
		if (strcmp(name, errs[i].name) == 0)
			return (enum sfs_proto_err)i;
	return SFS_PROTO_ERR_IO;
}

enum sfs_proto_err sfs_proto_err_from_errno(int rc, const char **text)
{
	for (size_t i = 0; i < COUNT(texts); i++)
		if (texts[i].err == rc) {
			if (text)
				*text = texts[i].text;
			return texts[i].code;
		}
	if (text)
		*text = strerror(-rc);
	return SFS_PROTO_ERR_IO;
}

int sfs_proto_err_errno(enum sfs_proto_err err)
{
	return errs[(unsigned int)err < SFS_PROTO_ERRS ? err : SFS_PROTO_ERR_IO].err;
}

enum sfs_exit sfs_proto_err_exit(enum sfs_proto_err err)
{
	return errs[(unsigned int)err < SFS_PROTO_ERRS ? err : SFS_PROTO_ERR_IO].exit;
}
