/*
 * ctl_request.h - the bytes of one control request (doc/control.md): what
 * a write(2) to MOUNTPOINT/.sessionfs must hold to be dispatched.
 *
 * Pure parsing (jansson): knows nothing of FUSE, sessions or the daemon,
 * so that a unit test and a libFuzzer harness (tests/fuzz/fuzz_ctl_request.c)
 * can reach it without a mount. What each op does is fs/ctl.c's.
 */
#ifndef SFS_CTL_REQUEST_H
#define SFS_CTL_REQUEST_H

#include "proto.h"

#include <jansson.h>
#include <stddef.h>

/* The largest request, in bytes: a larger write is refused (EFBIG). */
#define SFS_CTL_REQUEST_MAX SFS_PROTO_REQUEST_MAX

/*
 * Parse the @size bytes at @buf as one request: 0 with *@req a JSON object
 * (the caller decrefs it); -EFBIG if @size passes SFS_CTL_REQUEST_MAX;
 * -EINVAL if the bytes are not exactly one JSON object (a string with a
 * NUL byte in it included); -ENOMEM. *@req is NULL on error. @buf is
 * neither changed nor wiped: that is the caller's.
 */
int sfs_ctl_request_parse(const char *buf, size_t size, json_t **req);

#endif
