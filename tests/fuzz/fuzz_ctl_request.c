/*
 * fuzz_ctl_request.c - the control protocol's requests: the bytes of one
 * write(2) to MOUNTPOINT/.sessionfs as sfs_ctl_request_parse
 * (fs/ctl_request.c) takes them, then the members fs/ctl.c's dispatch
 * reads from a request ("op", "session", "id", "name", "password",
 * "new_password").
 *
 * Input: the request's bytes. Oracles: a request that parses is an
 * object; none is larger than SFS_CTL_REQUEST_MAX; no string member holds
 * a NUL byte (ids and names go on as C strings, passwords with their
 * length, and both must mean the same bytes).
 */
#include "ctl_request.h"
#include "fuzz.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *members[] = {"op", "session", "id", "name", "password", "new_password"};
	json_t *req;
	int rc = sfs_ctl_request_parse((const char *)data, size, &req);

	if (size > SFS_CTL_REQUEST_MAX)
		FZ_ASSERT(rc == -EFBIG);
	if (rc < 0) {
		FZ_ASSERT(!req);
		return 0;
	}
	FZ_ASSERT(json_is_object(req));
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		json_t *v = json_object_get(req, members[i]);

		if (!json_is_string(v))
			continue;
		FZ_ASSERT(strlen(json_string_value(v)) == json_string_length(v));
		(void)sfs_id_valid(json_string_value(v));
	}
	json_decref(req);
	return 0;
}

static void seeds(void)
{
	/* clang-format off */
	static const char *reqs[] = {
		"{\"op\":\"hello\"}",
		"{\"op\":\"list\"}\n",
		"{\"op\":\"new\",\"name\":\"disk full\",\"password\":\"secret\"}",
		"{\"op\":\"new\",\"id\":\"INC-00ff\",\"password\":\"s\\u00e9cret\"}",
		"{\"op\":\"unlock\",\"session\":\"INC-0001\",\"password\":\"secret\"}",
		"{\"op\":\"lock\",\"session\":\"INC-0001\"}",
		"{\"op\":\"lock_all\"}",
		"{\"op\":\"passwd\",\"session\":\"INC-0001\",\"password\":\"a\",\"new_password\":\"b\"}",
		"{\"op\":\"delete\",\"session\":\"INC-0001\"}",
		"                    {\"op\":\"list\"}",
	};
	/* clang-format on */

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		fz_seed(reqs[i], strlen(reqs[i]));
}
