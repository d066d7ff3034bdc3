"""`sessionctl list` sorted and filtered, with what the store tells of every
session without a password (issue 17 item 2), through a real mount:

- every session, locked ones included, has "size" (the sizes of its
  container's backing files, as os.walk of the store finds them),
  "allocated", and "changed"/"changed_ns" (the newest mtime in the
  container); a locked session has exactly those and id, where, locked
  (its name and status stay secret); an unlock and lock without a change
  moves nothing;
- the default order is the last change, newest first, and a change to a
  session that is then locked moves it to the top; --sort id, created
  (unknown, locked, last), size, updated;
- --status, --archived, --locked, --unlocked filter (and combine); a locked
  session matches no --status; the table shows the same rows;
- bad input: an unknown --sort, --locked with --unlocked, an empty --status
  are usage errors (2) that print nothing on stdout.
"""
import json
import os
import shutil
import time
import unittest

import sfs

LOCKED_KEYS = {"id", "where", "locked", "size", "allocated", "changed", "changed_ns"}


def store_usage(container):
    """(bytes of files, newest mtime in ns) of a container in the store."""
    size, newest = 0, os.lstat(container).st_mtime_ns
    for root, dirs, files in os.walk(container):
        for n in dirs + files:
            st = os.lstat(os.path.join(root, n))
            newest = max(newest, st.st_mtime_ns)
            if n in files:
                size += st.st_size
    return size, newest


class ListTest(unittest.TestCase):
    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        # made in this order, each changed a little later than the one before
        self.a = self.e.new(self.m, name="alpha", sid="INC-aaaa")
        time.sleep(0.05)
        self.b = self.e.new(self.m, name="bravo", sid="INC-bbbb")
        time.sleep(0.05)
        self.c = self.e.new(self.m, name="charlie", sid="INC-cccc")
        # bravo gets a big file, then everything but charlie is locked
        sfs.write_file(os.path.join(self.m.sdir(self.b), "big.bin"), os.urandom(200000))
        self.e.lock(self.m, self.a, self.b)

    def ids(self, *args):
        r = self.e.ctl("list", "--json", *args, self.m.mnt)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        return [s["id"] for s in json.loads(r.out)]

    def test_store_figures_for_locked_sessions(self):
        lst = {s["id"]: s for s in self.e.list(self.m)}
        for sid in (self.a, self.b):
            s = lst[sid]
            self.assertEqual(set(s), LOCKED_KEYS, s)
            size, newest = store_usage(os.path.join(self.e.store, "sessions", sid))
            self.assertEqual(s["size"], size)
            self.assertEqual(s["changed_ns"], newest)
            self.assertTrue(sfs.ISO_Z_RE.match(s["changed"]), s)
            self.assertEqual(s["changed"], time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                         time.gmtime(newest // 10**9)))
            self.assertGreaterEqual(s["allocated"], 4096)
        self.assertGreater(lst[self.b]["size"], 200000)
        self.assertLess(lst[self.a]["size"], 200000)
        self.assertNotIn("alpha", json.dumps(lst[self.a]))
        # the unlocked one has the store's figures and its metadata
        c = lst[self.c]
        self.assertLess(LOCKED_KEYS, set(c))
        for k in ("status", "name", "created", "updated", "events", "events_bytes", "kdf",
                  "opslimit", "memlimit", "cipher"):
            self.assertIn(k, c)
        # an unlock and lock that change nothing move nothing
        time.sleep(1.1)
        self.e.unlock(self.m, self.a)
        self.e.lock(self.m, self.a)
        again = {s["id"]: s for s in self.e.list(self.m)}[self.a]
        self.assertEqual(again, lst[self.a])

    def test_default_order_and_sorts(self):
        self.assertEqual(self.ids(), [self.b, self.c, self.a])
        self.assertEqual(self.ids("--sort", "updated"), [self.b, self.c, self.a])
        self.assertEqual(self.ids("--sort", "id"), [self.a, self.b, self.c])
        self.assertEqual(self.ids("--sort", "size")[0], self.b)
        # created is known for unlocked sessions only: locked ones last, by id
        self.assertEqual(self.ids("--sort", "created"), [self.c, self.a, self.b])
        # a change to alpha, then locked: it is the newest now
        time.sleep(0.05)
        self.e.unlock(self.m, self.a)
        with open(os.path.join(self.m.sdir(self.a), "events.jsonl"), "a") as f:
            f.write('{"type":"note"}\n')
        self.e.lock(self.m, self.a)
        self.assertEqual(self.ids(), [self.a, self.b, self.c])

    def test_filters(self):
        r = self.e.ctl("status", self.m.sdir(self.c), "paused")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.ids("--status", "paused"), [self.c])
        self.assertEqual(self.ids("--status", "active"), [])
        self.assertEqual(self.ids("--locked", "--sort", "id"), [self.a, self.b])
        self.assertEqual(self.ids("--unlocked"), [self.c])
        self.assertEqual(self.ids("--archived"), [])
        os.rename(self.m.sdir(self.a), os.path.join(self.m.mnt, "archive", self.a))
        os.rename(self.m.sdir(self.c), os.path.join(self.m.mnt, "archive", self.c))
        self.assertEqual(self.ids("--archived", "--sort", "id"), [self.a, self.c])
        self.assertEqual(self.ids("--archived", "--locked"), [self.a])
        self.assertEqual(self.ids("--archived", "--status", "paused"), [self.c])
        lst = {s["id"]: s for s in self.e.list(self.m)}
        self.assertEqual(lst[self.a]["where"], "archive")
        # the table has the same rows, in the same order, and shows every size
        r = self.e.ctl("list", "--locked", self.m.mnt)
        self.assertEqual(r.rc, 0, r)
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split()[:7],
                         ["ID", "WHERE", "STATE", "STATUS", "CREATED", "CHANGED", "SIZE"])
        self.assertEqual([ln.split()[0] for ln in lines[1:]], self.ids("--locked"))
        for ln in lines[1:]:
            self.assertRegex(ln.split()[5], sfs.ISO_Z_RE)
            self.assertRegex(ln.split()[6], r"^\d+(\.\d[KMGTP])?$")

    def test_bad_input(self):
        for args in (["--sort", "name"], ["--locked", "--unlocked"], ["--status", ""],
                     ["--sort"]):
            r = self.e.ctl("list", *args, self.m.mnt)
            self.assertEqual(r.rc, 2, r)
            self.assertEqual(r.out, "")
            self.assertTrue(r.err.startswith("sessionctl: list: "), r.err)
        r = self.e.ctl("list", "--sort", "name", self.m.mnt)
        self.assertIn("id, created, updated or size", r.err)

    def test_imported_containers_counted(self):
        # containers copied into the store (export/import): listed with their figures
        src = os.path.join(self.e.store, "sessions", self.a)
        for i in range(20):
            shutil.copytree(src, os.path.join(self.e.store, "sessions", "INC-1%03x" % i),
                            symlinks=True)
        lst = self.e.list(self.m)
        self.assertEqual(len(lst), 23)
        for s in lst:
            self.assertIn("size", s)
            self.assertIn("changed_ns", s)


if __name__ == "__main__":
    sfs.main()
