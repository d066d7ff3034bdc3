/*
 * ctl_request.c - parse the bytes of one control request (ctl_request.h).
 *
 * Only jansson: no FUSE, no sessions, no store. Which ops exist and what
 * their members mean is fs/ctl.c's business, not this file's.
 */
#include "ctl_request.h"

#include <errno.h>

int sfs_ctl_request_parse(const char *buf, size_t size, json_t **req)
{
	json_error_t err;
	json_t *v;

	*req = NULL;
	if (size > SFS_CTL_REQUEST_MAX)
		return -EFBIG;
	/* Flags 0: one value, nothing after it but white space, no "\u0000". */
	v = json_loadb(buf, size, 0, &err);
	if (!v)
		return json_error_code(&err) == json_error_out_of_memory ? -ENOMEM : -EINVAL;
	if (!json_is_object(v)) {
		json_decref(v);
		return -EINVAL;
	}
	*req = v;
	return 0;
}
