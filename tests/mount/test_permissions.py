"""Access checks and set-id bits for other users (issue 4), differential:
every check runs the same steps, as root and as other users (a forked child
that calls setgroups, setresgid and setresuid), in a native directory on
this machine (under /tmp; the file system type is printed, ext4 on the CI
machine) and inside an unlocked session, and compares the outcomes (return
value or errno) and the resulting modes, owners and groups. Nothing about
the kernel's rules is hard-coded, except for sessionfs' own files
(events.jsonl and metadata.json stay 0600 root: other users get EACCES).

Users: U1 = 4242 (group 4242; "member" means also in group 4343, the group
of the files checked; group 4444 for chgrp), U2 = 65534 (nobody). Checks:
- read/write/truncate/append of files by mode (0000 to 0666), as U1 outside
  and inside the file's group, and root's access(X_OK);
- directory r/w/x bits: list, stat, read, create, rename, unlink, mkdir;
- the sticky bit (01777): others cannot unlink or rename, or rename over,
  what they do not own; the directory's owner can;
- set-id bits cleared by a write, append, truncate, ftruncate and
  open(O_TRUNC) by a user (member of the file's group or not), kept when
  root does them; cleared by chown as root (also chown -1 -1 and of
  sticky set-id files), kept on directories;
- exact modes on create and mkdir with umask 0 (0151 stays 0151, 07777 on
  mkdir) and 022, in a set-group-id directory as a member and not (the new
  entry's group, S_ISGID inherited by directories, stripped from files of
  non-members);
- chown to other owners by root (also lchown of a symlink), refused to
  others; chgrp by the owner to a group they belong to, refused to others;
  chmod by non-owners refused, S_ISGID dropped by chmod of a non-member;
- utimens by others (now needs write access, explicit times ownership);
  hard links to files one cannot read (fs.protected_hardlinks).

Three mounts: -o allow_other,default_permissions (every check);
-o allow_other alone (sessionfs then checks permissions all the same: it
adds default_permissions to allow_other, so every check must still hold);
and a plain mount, where only root gets in, for the checks root alone makes.
"""
import errno
import json
import os
import shutil
import stat
import subprocess
import tempfile
import traceback
import unittest

import sfs

U1, G1 = 4242, 4242   # a user with no account here, and its own group
GF = 4343             # the group of the files in the read/write and set-id checks
G2 = 4444             # another group U1 is in, for chgrp
U2 = 65534            # nobody


def outcome(fn):
    try:
        return ["ok", fn()]
    except OSError as e:
        return ["err", errno.errorcode.get(e.errno, str(e.errno))]


def as_user(fn, uid, gid=None, groups=None, umask=0):
    """Run fn() in a child as @uid/@gid with supplementary @groups (default:
    just @gid); its outcome, ["ok", value] or ["err", "ENAME"]."""
    gid = uid if gid is None else gid
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups(list(groups) if groups is not None else [gid])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            os.umask(umask)
            data = json.dumps(outcome(fn))
        except BaseException:
            data = json.dumps(["crash", traceback.format_exc()])
        b = data.encode()
        while b:
            b = b[os.write(w, b):]
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    os.waitpid(pid, 0)
    res = json.loads(b"".join(chunks))
    if res[0] == "crash":
        raise AssertionError("child as uid %d crashed:\n%s" % (uid, res[1]))
    return res


def mode(path):
    return "%04o" % stat.S_IMODE(os.lstat(path).st_mode)


def owner(path):
    st = os.lstat(path)
    return "%d:%d" % (st.st_uid, st.st_gid)


def mkfile(path, m, content=b"data\n", uid=None, gid=None):
    """As root: a file with @content, mode @m (chmod, so umask and set-id
    rules at create do not apply), owned by uid:gid if given."""
    with open(path, "wb") as f:
        f.write(content)
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    os.chmod(path, m)
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read().decode()


def write(path, flags=os.O_WRONLY, data=b"x"):
    fd = os.open(path, flags)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def ftruncate(path, size):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def otrunc(path):
    os.close(os.open(path, os.O_WRONLY | os.O_TRUNC))


class Base:
    """The checks; subclasses say how the mount is made (OPTS) and whether
    other users may use it (OTHERS)."""
    OPTS = None
    OTHERS = True

    @classmethod
    def setUpClass(cls):
        sfs.need_binaries()
        cls.e = sfs.Env()
        try:
            os.chmod(cls.e.tmp, 0o755)
            cls.m = cls.e.mount(opts=cls.OPTS)
            cls.sid = cls.e.new(cls.m)
            cls.sdir = cls.m.sdir(cls.sid)
            os.chmod(cls.sdir, 0o755)
            cls.native = tempfile.mkdtemp(prefix="sfs-perm-native-", dir="/tmp")
            os.chmod(cls.native, 0o755)
        except BaseException:
            cls.e.cleanup()
            raise
        fstype = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", cls.native],
                                capture_output=True, text=True).stdout.strip()
        print("\n%s: native side %s is on %s" % (cls.__name__, cls.native, fstype))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.native, ignore_errors=True)
        cls.e.cleanup()

    def setUp(self):
        os.umask(0)
        self.addCleanup(os.umask, 0o022)

    def both(self, fn):
        """Run fn(base) in a fresh 0755 directory on each side; the two
        results must be equal. Returns sessionfs' result."""
        res = []
        for side in (self.native, self.sdir):
            base = os.path.join(side, "%s-%s" % (type(self).__name__, self._testMethodName))
            os.mkdir(base, 0o755)
            res.append(fn(base))
        if res[1] != res[0]:
            keys = sorted(set(res[0]) | set(res[1]))
            self.fail("sessionfs differs from the native directory in %d of %d cases "
                      "(case: sessionfs / native):\n%s" % (
                          sum(res[1].get(k) != res[0].get(k) for k in keys), len(keys),
                          "\n".join("  %s: %s / %s" % (k, res[1].get(k), res[0].get(k))
                                     for k in keys if res[1].get(k) != res[0].get(k))))
        return res[1]

    def need_others(self):
        if not self.OTHERS:
            self.skipTest("only root can reach a mount made without allow_other")

    # -- reading and writing by mode -------------------------------------

    def test_file_modes(self):
        self.need_others()

        def run(base):
            out = {}
            for m in (0o000, 0o600, 0o640, 0o644, 0o604, 0o606, 0o660, 0o666, 0o755, 0o744):
                p = mkfile(os.path.join(base, "f%03o" % m), m, gid=GF)
                for who, groups in (("other", [G1]), ("member", [G1, GF])):
                    out["%03o %s read" % (m, who)] = as_user(lambda: read(p), U1, groups=groups)
                    out["%03o %s write" % (m, who)] = as_user(
                        lambda: write(p, os.O_WRONLY, b"y"), U1, groups=groups)
                    out["%03o %s append" % (m, who)] = as_user(
                        lambda: write(p, os.O_WRONLY | os.O_APPEND, b"z"), U1, groups=groups)
                    out["%03o %s truncate" % (m, who)] = as_user(
                        lambda: os.truncate(p, 3), U1, groups=groups)
                    out["%03o %s access X" % (m, who)] = as_user(
                        lambda: os.access(p, os.X_OK), U1, groups=groups)
                out["%03o root read" % m] = outcome(lambda: read(p))
                out["%03o root access X" % m] = outcome(lambda: os.access(p, os.X_OK))
                out["%03o content" % m] = read(p)
            return out
        r = self.both(run)
        # the cases the issue names, stated outright as well
        self.assertEqual(r["600 other read"], ["err", "EACCES"])
        self.assertEqual(r["644 other read"], ["ok", "data\n"])
        self.assertEqual(r["644 other write"], ["err", "EACCES"])

    def test_directory_bits(self):
        self.need_others()

        def run(base):
            out = {}
            for m in (0o755, 0o711, 0o700, 0o733, 0o766, 0o777, 0o753, 0o705):
                d = os.path.join(base, "d%03o" % m)
                os.mkdir(d)
                mkfile(os.path.join(d, "in"), 0o666)
                os.chmod(d, m)
                j = lambda n: os.path.join(d, n)
                steps = [("list", lambda: sorted(os.listdir(d))),
                         ("stat", lambda: mode(j("in"))),
                         ("read", lambda: read(j("in"))),
                         ("create", lambda: write(j("new"), os.O_WRONLY | os.O_CREAT)),
                         ("rename", lambda: os.rename(j("in"), j("in2"))),
                         ("unlink", lambda: os.unlink(j("in"))),
                         ("mkdir", lambda: os.mkdir(j("sub"))),
                         ("symlink", lambda: os.symlink("t", j("ln")))]
                for name, fn in steps:
                    out["%03o %s" % (m, name)] = as_user(fn, U1)
                out["%03o after" % m] = sorted(os.listdir(d))
            return out
        self.both(run)

    def test_sticky_directory(self):
        self.need_others()

        def run(base):
            out = {}
            d = os.path.join(base, "tmp")
            os.mkdir(d)
            os.chmod(d, 0o1777)
            j = lambda n: os.path.join(d, n)
            mkfile(j("rootf"), 0o666)
            mkfile(j("rootf2"), 0o666)
            os.mkdir(j("rootdir"))
            os.chmod(j("rootdir"), 0o777)
            out["u1 create"] = as_user(lambda: write(j("u1f"), os.O_WRONLY | os.O_CREAT), U1)
            out["u1 create 2"] = as_user(lambda: write(j("u1g"), os.O_WRONLY | os.O_CREAT), U1)
            out["u1 write rootf"] = as_user(lambda: write(j("rootf")), U1)
            out["u1 unlink rootf"] = as_user(lambda: os.unlink(j("rootf")), U1)
            out["u1 rename rootf"] = as_user(lambda: os.rename(j("rootf"), j("x")), U1)
            out["u1 rename over rootf"] = as_user(lambda: os.rename(j("u1g"), j("rootf")), U1)
            out["u1 rmdir rootdir"] = as_user(lambda: os.rmdir(j("rootdir")), U1)
            out["u2 unlink u1f"] = as_user(lambda: os.unlink(j("u1f")), U2)
            out["u2 rename u1f"] = as_user(lambda: os.rename(j("u1f"), j("y")), U2)
            out["u1 rename own"] = as_user(lambda: os.rename(j("u1f"), j("u1h")), U1)
            out["u1 unlink own"] = as_user(lambda: os.unlink(j("u1h")), U1)
            out["root unlink u1g"] = outcome(lambda: os.unlink(j("u1g")))
            # the directory's owner may remove what others own in it
            out["u2 create"] = as_user(lambda: write(j("u2f"), os.O_WRONLY | os.O_CREAT), U2)
            os.chown(d, U1, G1)
            out["owner u1 unlink u2f"] = as_user(lambda: os.unlink(j("u2f")), U1)
            out["owner u1 unlink rootf2"] = as_user(lambda: os.unlink(j("rootf2")), U1)
            out["after"] = sorted((n, owner(j(n))) for n in os.listdir(d))
            out["mode"] = mode(d)
            return out
        r = self.both(run)
        self.assertEqual(r["u1 unlink rootf"], ["err", "EPERM"])
        self.assertEqual(r["u2 unlink u1f"], ["err", "EPERM"])

    # -- set-id bits -------------------------------------------------------

    SETID_MODES = (0o6777, 0o6767, 0o4777, 0o2777, 0o2767, 0o7777, 0o6776)
    ACTIONS = {
        "write": lambda p: write(p),
        "append": lambda p: write(p, os.O_WRONLY | os.O_APPEND),
        "truncate": lambda p: os.truncate(p, 2),
        "truncate-same": lambda p: os.truncate(p, 5),
        "ftruncate": lambda p: ftruncate(p, 1),
        "O_TRUNC": otrunc,
        "write-nothing": lambda p: write(p, os.O_WRONLY, b""),
    }

    def setid_after(self, who, groups=None):
        """Mode and content after each action on each set-id mode, done by
        @who (0: root, else U1 with @groups); files root:GF."""
        def run(base):
            out = {}
            for m in self.SETID_MODES:
                for name, act in self.ACTIONS.items():
                    p = mkfile(os.path.join(base, "%s-%04o" % (name, m)), m, gid=GF,
                               content=b"12345")
                    if who == 0:
                        res = outcome(lambda: act(p))
                    else:
                        res = as_user(lambda: act(p), U1, groups=groups)
                    out["%04o %s" % (m, name)] = [res, mode(p), os.path.getsize(p)]
            return out
        return self.both(run)

    def test_setid_cleared_by_user_not_in_group(self):
        self.need_others()
        r = self.setid_after(U1, [G1])
        self.assertEqual(r["6777 write"][1], "0777")

    def test_setid_cleared_by_user_in_group(self):
        self.need_others()
        r = self.setid_after(U1, [G1, GF])
        self.assertEqual(r["6777 truncate"][1], "0777")

    def test_setid_kept_by_root(self):
        r = self.setid_after(0)
        self.assertEqual(r["6777 write"][1], "6777")

    def test_chown_by_root(self):
        def run(base):
            out = {}
            # Without default_permissions the kernel keeps S_ISVTX out of a
            # FUSE inode's mode, and the mode it sends to clear set-id bits at
            # chown lacks it: sessionfs puts it back (7777, 7767), except at
            # chown(-1, -1), where that mode comes alone, as from a chmod.
            modes = (0o6777, 0o6767, 0o6755, 0o2755, 0o2745, 0o4755, 0o7777, 0o7767, 0o1755)
            targets = ((U1, G1), (U1, -1), (-1, G1), (-1, -1), (0, 0))
            for m in modes:
                for uid, gid in targets:
                    if (not self.OTHERS and uid == gid == -1 and m & 0o1000
                            and m & 0o6000):
                        continue
                    p = mkfile(os.path.join(base, "f%04o-%d-%d" % (m, uid, gid)), m)
                    res = outcome(lambda: os.chown(p, uid, gid))
                    out["file %04o chown %d %d" % (m, uid, gid)] = [res, mode(p), owner(p)]
                d = os.path.join(base, "d%04o" % m)
                os.mkdir(d)
                os.chmod(d, m)
                res = outcome(lambda: os.chown(d, U1, G1))
                out["dir %04o chown" % m] = [res, mode(d), owner(d)]
            ln = os.path.join(base, "ln")
            os.symlink("f6777-%d-%d" % (U1, G1), ln)
            res = outcome(lambda: os.chown(ln, U2, U2, follow_symlinks=False))
            out["lchown"] = [res, owner(ln), os.readlink(ln),
                             owner(os.path.join(base, "f6777-%d-%d" % (U1, G1)))]
            return out
        r = self.both(run)
        self.assertEqual(r["file 6777 chown %d %d" % (U1, G1)], [["ok", None], "0777",
                                                                 "%d:%d" % (U1, G1)])

    def test_chown_by_others(self):
        self.need_others()

        def run(base):
            out = {}
            for m in (0o6775, 0o2765, 0o4755, 0o2775, 0o0644):
                for gid in (G1, 0):
                    p = mkfile(os.path.join(base, "f%04o-%d" % (m, gid)), m, uid=U1, gid=gid)
                    for name, (u, g) in (("chgrp member", (-1, G2)), ("chgrp other", (-1, 0)),
                                         ("chown other", (U2, -1)), ("chown same", (U1, -1))):
                        res = as_user(lambda: os.chown(p, u, g), U1, groups=[G1, G2])
                        out["%04o gid %d %s" % (m, gid, name)] = [res, mode(p), owner(p)]
                        os.chown(p, U1, gid)
                        os.chmod(p, m)
                    q = mkfile(os.path.join(base, "r%04o-%d" % (m, gid)), m, gid=gid)
                    res = as_user(lambda: os.chown(q, -1, G2), U1, groups=[G1, G2])
                    out["root's %04o gid %d chgrp by U1" % (m, gid)] = [res, mode(q), owner(q)]
            return out
        r = self.both(run)
        self.assertEqual(r["0644 gid %d chgrp member" % G1], [["ok", None], "0644",
                                                             "%d:%d" % (U1, G2)])

    def test_chmod_by_others(self):
        self.need_others()

        def run(base):
            out = {}
            p = mkfile(os.path.join(base, "rootf"), 0o644)
            out["non-owner chmod"] = as_user(lambda: os.chmod(p, 0o777), U1)
            out["non-owner mode"] = mode(p)
            for gid in (G1, 0):
                for m in (0o2755, 0o4755, 0o1755, 0o6777):
                    q = mkfile(os.path.join(base, "u%d-%04o" % (gid, m)), 0o644, uid=U1, gid=gid)
                    out["owner chmod %04o gid %d" % (m, gid)] = [
                        as_user(lambda: os.chmod(q, m), U1), mode(q)]
                d = os.path.join(base, "dir%d" % gid)
                os.mkdir(d)
                os.chown(d, U1, gid)
                out["owner chmod dir 3777 gid %d" % gid] = [
                    as_user(lambda: os.chmod(d, 0o3777), U1), mode(d)]
            return out
        self.both(run)

    def test_utimens_by_others(self):
        self.need_others()

        def run(base):
            out = {}
            for m in (0o666, 0o644):
                p = mkfile(os.path.join(base, "f%03o" % m), m)
                out["%03o now" % m] = as_user(lambda: os.utime(p), U1)
                out["%03o explicit" % m] = as_user(lambda: os.utime(p, (1, 2)), U1)
                q = mkfile(os.path.join(base, "own%03o" % m), m, uid=U1)
                out["own %03o explicit" % m] = as_user(lambda: os.utime(q, ns=(5, 7)), U1)
                out["own %03o mtime" % m] = os.stat(q).st_mtime_ns
            return out
        self.both(run)

    def test_hard_links(self):
        self.need_others()

        def run(base):
            out = {}
            for m in (0o600, 0o644, 0o666):
                p = mkfile(os.path.join(base, "f%03o" % m), m)
                out["%03o link" % m] = as_user(
                    lambda: os.link(p, os.path.join(base, "sub", "l%03o" % m)), U1)
            return out

        def prepared(base):
            os.mkdir(os.path.join(base, "sub"))
            os.chmod(os.path.join(base, "sub"), 0o777)
            return run(base)
        self.both(prepared)

    # -- modes at create ---------------------------------------------------

    def test_create_modes(self):
        def run(base):
            out = {}
            for umask in (0, 0o022, 0o077):
                os.umask(umask)
                for m in (0o151, 0o7777, 0o4755, 0o2711, 0o1644, 0o000, 0o777, 0o666):
                    p = os.path.join(base, "f%04o-%03o" % (m, umask))
                    os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, m))
                    out[os.path.basename(p)] = mode(p)
                    d = os.path.join(base, "d%04o-%03o" % (m, umask))
                    os.mkdir(d, m)
                    out[os.path.basename(d)] = mode(d)
            os.umask(0)
            ln = os.path.join(base, "ln")
            os.symlink("anything", ln)
            out["symlink"] = [mode(ln), owner(ln)]
            return out
        r = self.both(run)
        self.assertEqual(r["f0151-000"], "0151")
        self.assertEqual(r["d0151-000"], "0151")

    def test_create_in_setgid_directory(self):
        self.need_others()

        def run(base):
            out = {}
            d = os.path.join(base, "sgid")
            os.mkdir(d)
            os.chown(d, 0, GF)
            os.chmod(d, 0o2777)
            for who, groups in (("other", [G1]), ("member", [G1, GF])):
                for m in (0o2777, 0o2755, 0o6777, 0o0777):
                    p = os.path.join(d, "f-%s-%04o" % (who, m))
                    res = as_user(lambda: os.close(os.open(p, os.O_CREAT | os.O_WRONLY, m)), U1,
                                  groups=groups)
                    out["create %s %04o" % (who, m)] = [res, mode(p), owner(p)]
                    q = os.path.join(d, "d-%s-%04o" % (who, m))
                    res = as_user(lambda: os.mkdir(q, m), U1, groups=groups)
                    out["mkdir %s %04o" % (who, m)] = [res, mode(q), owner(q)]
            p = os.path.join(d, "root")
            os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o2777))
            out["root create"] = [mode(p), owner(p)]
            ln = os.path.join(d, "ln")
            as_user(lambda: os.symlink("x", ln), U1)
            out["symlink"] = owner(ln)
            return out
        self.both(run)

    # -- sessionfs' own things ---------------------------------------------

    def test_mount_options(self):
        """allow_other brings default_permissions along (sessionfs checks
        no permission itself)."""
        with open("/proc/self/mountinfo") as f:
            line = [ln for ln in f if ln.split()[4] == self.m.mnt]
        self.assertEqual(len(line), 1, line)
        fields = line[0].split()
        opts = set(fields[fields.index("-") + 3].split(","))
        if self.OTHERS:
            self.assertIn("allow_other", opts)
            self.assertIn("default_permissions", opts)
        else:
            self.assertNotIn("allow_other", opts)

    def test_session_files_are_private(self):
        self.need_others()
        for name in ("events.jsonl", "metadata.json"):
            p = os.path.join(self.sdir, name)
            self.assertEqual(mode(p), "0600")
            self.assertEqual(as_user(lambda: read(p), U1), ["err", "EACCES"], name)
            self.assertEqual(as_user(lambda: write(p, os.O_WRONLY | os.O_APPEND,
                                                   b'{"a":1}\n'), U1), ["err", "EACCES"], name)
            self.assertEqual(as_user(lambda: os.chmod(p, 0o666), U1), ["err", "EPERM"], name)
        self.assertEqual(as_user(lambda: os.listdir(self.sdir), U1)[0], "ok")
        os.chmod(self.sdir, 0o700)
        try:
            self.assertEqual(as_user(lambda: os.listdir(self.sdir), U1), ["err", "EACCES"])
        finally:
            os.chmod(self.sdir, 0o755)


class DefaultPermissions(Base, unittest.TestCase):
    OPTS = "allow_other,default_permissions"


class AllowOtherAlone(Base, unittest.TestCase):
    OPTS = "allow_other"


class RootOnly(Base, unittest.TestCase):
    OPTS = None
    OTHERS = False


if __name__ == "__main__":
    sfs.main()
