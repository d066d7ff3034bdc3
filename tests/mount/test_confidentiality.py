"""The store holds only ciphertext: no plaintext content or names, modes 0600/0700."""
import os
import unittest

import sfs
from test_mkfs import assert_store_modes

MARKER = "PLAINTEXT-MARKER-8d1e"
SECRETS = [
    MARKER,
    "secret-name-7f3c",        # a file name
    "secret-dir-3b9a",         # a directory name
    "secret-link-target-55aa", # a symlink target
    "secret-session-name-c0de",  # the session's name (in metadata.json)
    "pw-never-stored-4e4e",    # the password
]


class ConfidentialityTest(unittest.TestCase):
    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        self.sid = self.e.new(self.m, password="pw-never-stored-4e4e",
                              name="secret-session-name-c0de")
        d = self.m.sdir(self.sid)
        sfs.write_file(os.path.join(d, "secret-name-7f3c.txt"),
                       ("log line with %s inside\n" % MARKER) * 3)
        os.mkdir(os.path.join(d, "secret-dir-3b9a"))
        sfs.write_file(os.path.join(d, "secret-dir-3b9a", "inner.txt"), MARKER)
        # a marker straddling a block boundary
        with open(os.path.join(d, "straddle.bin"), "wb") as f:
            f.write(b"\0" * (4096 - 10) + MARKER.encode() + b"\0" * 100)
        os.symlink("secret-link-target-55aa", os.path.join(d, "link"))
        with open(os.path.join(d, "events.jsonl"), "a") as f:
            f.write('{"type":"note","text":"%s"}\n' % MARKER)
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
        os.sync()

    def assert_no_secrets(self):
        store = self.e.store
        for s in SECRETS:
            r = sfs.run(["grep", "-ra", s, store])
            self.assertEqual(r.rc, 1, "grep found %r in the store: %s" % (s, r.out[:500]))
        for root, dirs, files in os.walk(store):
            for n in dirs + files:
                p = os.path.join(root, n)
                texts = [n]
                if os.path.islink(p):  # grep -r reads no link targets
                    texts.append(os.readlink(p))
                for t in texts:
                    for s in SECRETS + ["secret", "inner.txt", "straddle", "metadata", "events"]:
                        self.assertNotIn(s, t, p)

    def test_store_holds_no_plaintext_while_mounted(self):
        self.assert_no_secrets()

    def test_store_holds_no_plaintext_after_umount(self):
        self.e.assert_umount(self.m)
        self.assert_no_secrets()

    def test_store_modes_after_use(self):
        self.e.new(self.m)  # a second session, left unlocked
        self.e.lock(self.m, self.sid)
        assert_store_modes(self, self.e.store)
        self.e.assert_umount(self.m)
        assert_store_modes(self, self.e.store)

    def test_file_modes_inside_do_not_leak_to_store(self):
        d = self.m.sdir(self.sid)
        sfs.write_file(os.path.join(d, "world.txt"), "x", mode=0o666)
        os.chmod(os.path.join(d, "secret-dir-3b9a"), 0o777)
        assert_store_modes(self, self.e.store)

    def test_session_ids_visible(self):
        self.assertEqual(os.listdir(os.path.join(self.e.store, "sessions")), [self.sid])


if __name__ == "__main__":
    sfs.main()
