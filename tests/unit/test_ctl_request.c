/*
 * test_ctl_request.c - the control request parser (fs/ctl_request.c): one
 * JSON object per write, nothing else, bounded in size.
 */
#include "check.h"
#include "ctl_request.h"

#include <errno.h>

static int parse(const char *text, size_t len)
{
	json_t *req = (json_t *)1;
	int rc = sfs_ctl_request_parse(text, len, &req);

	CHECK(rc == 0 ? json_is_object(req) : req == NULL);
	json_decref(req);
	return rc;
}

#define P(s) parse(s, sizeof(s) - 1)

static void test_objects(void)
{
	const char *unlock =
		"{\"op\":\"unlock\",\"session\":\"INC-0001\",\"password\":\"p\\u00e9\"}";
	json_t *req;

	CHECK_EQ(P("{\"op\":\"hello\"}"), 0);
	CHECK_EQ(P("  {\"op\":\"list\"}\n"), 0);
	CHECK_EQ(P("{}"), 0); /* no op: dispatch's to refuse */
	REQUIRE(sfs_ctl_request_parse(unlock, strlen(unlock), &req) == 0);
	CHECK_STR(json_string_value(json_object_get(req, "session")), "INC-0001");
	CHECK_EQ(json_string_length(json_object_get(req, "password")), 3);
	json_decref(req);
}

static void test_refused(void)
{
	CHECK_EQ(P(""), -EINVAL);
	CHECK_EQ(P("   "), -EINVAL);
	CHECK_EQ(P("[]"), -EINVAL);
	CHECK_EQ(P("\"op\""), -EINVAL);
	CHECK_EQ(P("42"), -EINVAL);
	CHECK_EQ(P("null"), -EINVAL);
	CHECK_EQ(P("{\"op\":\"list\"}{}"), -EINVAL);	     /* two requests */
	CHECK_EQ(P("{\"op\":\"list\"} x"), -EINVAL);	     /* trailing garbage */
	CHECK_EQ(P("{\"op\":\"list\""), -EINVAL);	     /* cut */
	CHECK_EQ(P("{\"op\":\"a\\u0000b\"}"), -EINVAL);	     /* a NUL inside a string */
	CHECK_EQ(parse("{\"op\":\"list\"}\0", 15), -EINVAL); /* a NUL byte after it */
	CHECK_EQ(P("{\"op\":\"\xff\"}"), -EINVAL);	     /* not UTF-8 */
}

static void test_size(void)
{
	size_t n = SFS_CTL_REQUEST_MAX + 1;
	char *big = malloc(n);

	REQUIRE(big);
	/* The largest request parses; one byte more is refused before parsing. */
	memset(big, ' ', n);
	memcpy(big, "{\"op\":\"list\"}", 13);
	CHECK_EQ(parse(big, SFS_CTL_REQUEST_MAX), 0);
	CHECK_EQ(parse(big, n), -EFBIG);
	free(big);
}

int main(void)
{
	test_objects();
	test_refused();
	test_size();
	return check_done();
}
