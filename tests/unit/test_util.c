/*
 * test_util.c - the POSIX helpers of lib/util.c that parse user input:
 * sfs_parse_duration (mount options idle_lock and max_unlock, prune
 * --older-than, audit --since), every unit, the bare-number rule, and the
 * inputs it must refuse.
 */
#include "check.h"
#include "util.h"

#include <errno.h>

/* @s parses (with @flags) to @want seconds. */
static void ok(const char *s, unsigned flags, long long want)
{
	long long v = -1;

	CHECK_EQ(sfs_parse_duration(s, flags, &v), 0);
	CHECK_EQ(v, want);
}

/* @s is refused (with @flags) and *secs is left alone. */
static void bad(const char *s, unsigned flags)
{
	long long v = 12345;

	CHECK_EQ(sfs_parse_duration(s, flags, &v), -EINVAL);
	CHECK_EQ(v, 12345);
}

int main(void)
{
	ok("0", 0, 0);
	ok("90", 0, 90);
	ok("45s", 0, 45);
	ok("15m", 0, 900);
	ok("2h", 0, 7200);
	ok("7d", 0, 604800);
	ok("2w", 0, 1209600);
	ok("007m", 0, 420);
	ok("30d", SFS_DUR_UNIT_REQUIRED, 2592000);
	ok("0s", SFS_DUR_UNIT_REQUIRED, 0);
	ok("1099511627776", 0, 1LL << 40);
	ok("1817975w", 0, 1817975LL * 604800);

	bad("30", SFS_DUR_UNIT_REQUIRED); /* --older-than 30: days? minutes? */
	bad("", 0);
	bad(NULL, 0);
	bad("m", 0);
	bad("-5m", 0);
	bad("+5m", 0);
	bad(" 5m", 0);
	bad("5 m", 0);
	bad("5m ", 0);
	bad("1.5h", 0);
	bad(".5", 0);
	bad("5M", 0);
	bad("5y", 0);
	bad("5ms", 0);
	bad("nan", 0);
	bad("0x10", 0);
	bad("1099511627777", 0);
	bad("1817976w", 0);
	bad("99999999999999999999", 0);
	bad("9223372036854775807s", 0);
	return check_done();
}
