"""sessionfs: mounting, refusing what is not a (readable) store, allow_other."""
import json
import os
import resource
import sys
import stat
import time
import unittest

import sfs


class MountTest(unittest.TestCase):
    def env(self, **kw):
        e = sfs.Env(**kw)
        self.addCleanup(e.cleanup)
        return e

    def test_daemon_mode_ready_on_return(self):
        e = self.env()
        m = e.mount()
        # No waiting: the mount must be ready the moment sessionfs returns.
        self.assertEqual(sorted(os.listdir(m.mnt)), ["archive", "sessions"])
        self.assertEqual(os.listdir(m.sessions()), [])
        self.assertEqual(os.listdir(os.path.join(m.mnt, "archive")), [])
        self.assertTrue(stat.S_ISDIR(os.stat(m.sessions()).st_mode))
        e.assert_umount(m)
        self.assertFalse(os.path.ismount(m.mnt))

    def test_foreground_stays(self):
        e = self.env()
        m = e.mount(foreground=True)
        self.assertEqual(sorted(os.listdir(m.mnt)), ["archive", "sessions"])
        time.sleep(0.5)
        self.assertIsNone(m.proc.poll(), "sessionfs -f left the foreground: " + m.read_log())
        self.assertTrue(m.mounted)
        e.assert_umount(m)  # checks that the daemon exits 0 once unmounted
        self.assertEqual(m.proc.returncode, 0)

    def test_type_and_source_whatever_the_program_is_called(self):
        # The mount is fuse.sessionfs with the store as its source even when
        # the daemon runs under another name (a link) and the store path has
        # a comma in it: sessionctl trusts only a fuse.sessionfs mount.
        e = self.env()
        store = e.path("st,ore")
        os.rename(e.store, store)
        link = e.path("otherfs")
        os.symlink(sfs.SESSIONFS, link)
        mnt = e.path("mnt-link")
        os.mkdir(mnt)
        r = sfs.run([link, store, mnt])
        self.assertEqual(r.rc, 0, r)
        self.addCleanup(sfs.umount, mnt)
        with open("/proc/self/mounts") as f:
            rows = [ln.split() for ln in f if ln.split()[1] == mnt]
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0][2], "fuse.sessionfs", rows)
        self.assertEqual(rows[0][0], store, rows)
        r = e.ctl("list", mnt)
        self.assertEqual(r.rc, 0, r)

    def test_files_closed_after_a_lazy_unmount(self):
        # fusermount3 -u -z with files open: their RELEASE never reaches the
        # daemon (the kernel tears the connection down first). The daemon
        # must still free and wipe their handles and exit 0 (the ASan build's
        # leak check made it exit 1).
        e = self.env()
        m = e.mount(foreground=True)
        sid = e.new(m)
        fds = [os.open(os.path.join(m.sdir(sid), "f%d" % k), os.O_CREAT | os.O_RDWR)
               for k in range(5)]
        os.write(fds[0], b"written before the unmount")
        r = sfs.run(["fusermount3", "-u", "-z", m.mnt])
        self.assertEqual(r.rc, 0, r)
        for fd in fds:
            os.close(fd)
        m.proc.wait(timeout=sfs.TIMEOUT)
        self.assertEqual(m.proc.returncode, 0, m.read_log())

    def test_control_file_hidden(self):
        e = self.env()
        m = e.mount()
        self.assertNotIn(".sessionfs", os.listdir(m.mnt))
        # ...but reachable by name (doc/control.md)
        os.stat(os.path.join(m.mnt, ".sessionfs"))

    def test_more_inodes_than_the_descriptor_limit(self):
        # Every inode the kernel holds costs the daemon a descriptor; root's
        # daemon raises its limit to fs.nr_open (fs/main.c harden()), so a
        # start under a limit of 256 still holds 1500 new files at once.
        probe = sfs.run(["prlimit", "--nofile=256:256", sys.executable, "-c",
                         "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))"])
        if probe.rc != 0:
            self.skipTest("no CAP_SYS_RESOURCE here: a hard limit cannot be raised")
        e = self.env()
        old = sfs.WRAPPER
        sfs.WRAPPER = ["prlimit", "--nofile=256:256"] + old
        try:
            m = e.mount()
        finally:
            sfs.WRAPPER = old
        sid = e.new(m)
        e.unlock(m, sid)
        d = os.path.join(m.sdir(sid), "many")
        os.mkdir(d)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 4096 <= hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
        fds = []
        try:
            for i in range(1500):
                fds.append(os.open(os.path.join(d, "f%04d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
                os.write(fds[-1], b"%d\n" % i)
        finally:
            for fd in fds:
                os.close(fd)
        self.assertEqual(len(os.listdir(d)), 1500)
        with open(os.path.join(d, "f1499"), "rb") as f:
            self.assertEqual(f.read(), b"1499\n")

    def refused(self, store, rc, *words):
        mnt = os.path.join(os.path.dirname(store), "mnt-refused")
        os.makedirs(mnt, exist_ok=True)
        r = sfs.run([sfs.SESSIONFS, store, mnt])
        try:
            self.assertFalse(os.path.ismount(mnt), "mounted anyway")
        finally:
            sfs.umount(mnt)
        self.assertEqual(r.rc, rc, r)
        self.assertTrue(r.err.startswith("sessionfs: "), r.err)
        for w in words:
            self.assertIn(w, r.err)
        return r

    def test_refuses_missing_store(self):
        e = self.env(make_store=False)
        self.refused(e.path("nowhere"), 3, "does not exist")

    def test_refuses_non_store(self):
        e = self.env(make_store=False)
        os.mkdir(e.path("plain"))
        sfs.write_file(e.path("plain", "file.txt"), "x")
        self.refused(e.path("plain"), 3, "not a sessionfs store")

    def test_refuses_empty_dir(self):
        e = self.env(make_store=False)
        os.mkdir(e.path("empty"))
        self.refused(e.path("empty"), 3, "not a sessionfs store")

    def edit_conf(self, e, change):
        p = os.path.join(e.store, "sessionfs.conf")
        with open(p) as f:
            conf = json.load(f)
        change(conf)
        with open(p, "w") as f:
            json.dump(conf, f)

    def test_refuses_newer_version(self):
        e = self.env()
        self.edit_conf(e, lambda c: c.__setitem__("version", 99))
        self.refused(e.store, 4, "newer")

    def test_refuses_unknown_feature(self):
        e = self.env()
        self.edit_conf(e, lambda c: c.__setitem__("features", ["future"]))
        self.refused(e.store, 4, "future")

    def test_refuses_missing_mountpoint(self):
        e = self.env()
        r = sfs.run([sfs.SESSIONFS, e.store, e.path("no-mnt")])
        self.assertEqual(r.rc, 5, r)
        self.assertTrue(r.err.startswith("sessionfs: "), r.err)

    def test_usage(self):
        r = sfs.run([sfs.SESSIONFS])
        self.assertEqual(r.rc, 2, r)
        r = sfs.run([sfs.SESSIONFS, "--help"])
        self.assertEqual(r.rc, 0, r)

    def run_as_nobody(self, fn):
        """Run @fn() in a child with uid/gid 65534; its return value (a short
        str) or the name of the exception it raised."""
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(rfd)
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                try:
                    out = "ok:" + fn()
                except OSError as ex:
                    out = "err:%s" % type(ex).__name__
                os.write(wfd, out.encode())
            finally:
                os._exit(0)
        os.close(wfd)
        chunks = []
        while True:
            b = os.read(rfd, 4096)
            if not b:
                break
            chunks.append(b)
        os.close(rfd)
        os.waitpid(pid, 0)
        return b"".join(chunks).decode()

    def test_allow_other(self):
        e = self.env()
        os.chmod(e.tmp, 0o755)  # mkdtemp made it 0700: let others reach the mountpoint
        m = e.mount(opts="allow_other,default_permissions")
        sid = e.new(m)
        d = m.sdir(sid)
        os.chmod(d, 0o755)
        sfs.write_file(os.path.join(d, "shared.txt"), "for everyone\n", mode=0o644)
        sfs.write_file(os.path.join(d, "private.txt"), "owner only\n", mode=0o600)

        def read(name):
            return lambda: sfs.read_file(os.path.join(d, name)).decode()

        self.assertEqual(self.run_as_nobody(read("shared.txt")), "ok:for everyone\n")
        self.assertEqual(self.run_as_nobody(read("private.txt")), "err:PermissionError")
        # Other users may not write to a 0644 file either.
        def write():
            with open(os.path.join(d, "shared.txt"), "a") as f:
                f.write("x")
            return "wrote"
        self.assertEqual(self.run_as_nobody(write), "err:PermissionError")
        # The control file stays the mounting user's (doc/control.md).
        def ctl():
            os.open(os.path.join(m.mnt, ".sessionfs"), os.O_RDWR)
            return "opened"
        self.assertEqual(self.run_as_nobody(ctl), "err:PermissionError")

    def test_without_allow_other_others_are_out(self):
        e = self.env()
        os.chmod(e.tmp, 0o755)  # so that only the mount can keep others out
        m = e.mount()
        sid = e.new(m)
        d = m.sdir(sid)
        os.chmod(d, 0o755)
        sfs.write_file(os.path.join(d, "shared.txt"), "x", mode=0o644)
        self.assertEqual(
            self.run_as_nobody(lambda: sfs.read_file(os.path.join(d, "shared.txt")).decode()),
            "err:PermissionError")


class SetIdTest(unittest.TestCase):
    """A plain `sessionfs STORE MNT` is nosuid,nodev whatever "dev" and
    "suid" it is given (mount.fuse3, behind `mount -t fuse.sessionfs` and
    fstab lines, passes mount(8)'s defaults "dev,suid" to every daemon):
    only -o sfs_allow_suid and -o sfs_allow_dev let set-id programs and
    device files work, and an explicit nosuid or nodev wins over them. Checked
    in the kernel's mount table and by what a set-user-ID-root copy of id(1)
    run as nobody and a /dev/zero node made in a session do
    (test_install.py checks the same through the installed helper)."""

    def mount(self, opts):
        e = sfs.Env()
        self.addCleanup(e.cleanup)
        os.chmod(e.tmp, 0o755)  # let nobody reach the mountpoint
        m = e.mount(foreground=True, opts="allow_other," + opts if opts else "allow_other")
        sid = e.new(m)
        return m, sfs.mount_options(m.mnt), sfs.setid_outcome(m.sdir(sid))

    def test_default(self):
        m, flags, outcome = self.mount("")
        self.assertLessEqual({"nosuid", "nodev"}, flags)
        self.assertEqual(outcome, (sfs.NOBODY, "EACCES"))

    def test_mount_defaults_ignored(self):
        # exactly what mount.fuse3 gives the daemon for a plain fstab line
        m, flags, outcome = self.mount("rw,dev,suid")
        self.assertLessEqual({"nosuid", "nodev"}, flags)
        self.assertEqual(outcome, (sfs.NOBODY, "EACCES"))
        self.assertIn("ignored -o dev,suid", m.read_log())
        self.assertIn("sfs_allow_dev", m.read_log())

    def test_allow_both(self):
        m, flags, outcome = self.mount("sfs_allow_suid,sfs_allow_dev,rw,dev,suid")
        self.assertEqual({"nosuid", "nodev"} & flags, set())
        self.assertEqual(outcome, (0, b"\0" * 4))
        self.assertNotIn("ignored", m.read_log())

    def test_allow_dev_only(self):
        m, flags, outcome = self.mount("sfs_allow_dev,dev,suid")
        self.assertIn("nosuid", flags)
        self.assertNotIn("nodev", flags)
        self.assertEqual(outcome, (sfs.NOBODY, b"\0" * 4))
        self.assertIn("ignored -o suid ", m.read_log())

    def test_allow_suid_only(self):
        m, flags, outcome = self.mount("sfs_allow_suid")
        self.assertNotIn("nosuid", flags)
        self.assertIn("nodev", flags)
        self.assertEqual(outcome, (0, "EACCES"))

    def test_nosuid_nodev_win(self):
        m, flags, outcome = self.mount("sfs_allow_suid,sfs_allow_dev,nosuid,nodev")
        self.assertLessEqual({"nosuid", "nodev"}, flags)
        self.assertEqual(outcome, (sfs.NOBODY, "EACCES"))


if __name__ == "__main__":
    sfs.main()
