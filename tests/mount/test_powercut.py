"""Power cuts, by snapshot: the short (CI) run of the power-cut harness,
tests/powercut/powercut.py (its docstring says how a cut is taken and what
each check means).

A store on ext4 (loop device with direct I/O) on a reflink XFS image; writers
of every file kind and namespace operation run in one unlocked session while
3 snapshots are taken with `cp --reflink=always` at random moments; each is
repaired (e2fsck), mounted, unlocked and checked against what the writers had
acknowledged before it began. The control runs the same writers and every
check in a plain ext4 directory (2 snapshots), where all must pass. About
20 s in all.

Which checks fail the test: $SFS_POWERCUT_CHECKS (comma-separated, "all", or
"none"; meson.build sets it to the checks that hold today); every check runs
and is reported anyway. Skipped (not failed) when not root, without
mkfs.xfs, a free loop device or XFS reflinks. SFS_POWERCUT_SNAPSHOTS changes
the number of snapshots, SFS_POWERCUT_SEED the seed.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "powercut"))
import powercut  # noqa: E402
import sfs  # noqa: E402


class PowerCutTest(unittest.TestCase):
    def test_snapshots(self):
        n = os.environ.get("SFS_POWERCUT_SNAPSHOTS", "3")
        rc = powercut.run(["--snapshots", n, "--first", "3", "--gap", "1,4"])
        if rc == powercut.SKIP:
            self.skipTest("the machine cannot run the power-cut harness (see above)")
        self.assertEqual(rc, 0, "an enforced check failed in a snapshot (see the "
                         "'powercut: snapshot N: FAIL' lines above)")

    def test_native_control(self):
        """The same writers and every check, 'unread' too, on ext4 itself
        without sessionfs: all must pass, or the harness asks more than ext4
        gives (a false failure of the harness, not of sessionfs)."""
        rc = powercut.run(["--native", "--checks", "all", "--snapshots", "2", "--first", "3",
                           "--gap", "1,3"])
        if rc == powercut.SKIP:
            self.skipTest("the machine cannot run the power-cut harness (see above)")
        self.assertEqual(rc, 0, "a check failed on plain ext4: the harness is wrong")


if __name__ == "__main__":
    sfs.main()
