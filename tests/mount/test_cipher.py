"""Content ciphers: mkfs --cipher, the store's default, key file versions 1
and 2 on disk, sessions of both ciphers side by side in one store (export
and import across stores of different defaults), passwd keeping the cipher,
clean refusals of what this build does not know, and the binaries on a CPU
without AES-NI (emulated by qemu-user)."""
import json
import os
import subprocess
import unittest

import sfs


def aes_here():
    """libsodium 1.0.18 runs AES-256-GCM only with AES-NI and PCLMUL."""
    with open("/proc/cpuinfo") as f:
        flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    return "aes" in flags and "pclmulqdq" in flags


def conf(store):
    with open(os.path.join(store, "sessionfs.conf")) as f:
        return json.load(f)


def key_file(store, sid, where="sessions"):
    with open(os.path.join(store, where, sid, "key"), "rb") as f:
        return f.read()


class MkfsCipherTest(unittest.TestCase):
    def setUp(self):
        sfs.need_binaries()
        self.tmp = sfs.Env(make_store=False)
        self.addCleanup(self.tmp.cleanup)

    def test_default_is_auto(self):
        store = self.tmp.path("auto")
        r = sfs.mkfs(store)
        want = "aes256gcm" if aes_here() else "xchacha20poly1305"
        self.assertEqual(conf(store)["cipher"], want)
        self.assertIn("cipher " + want, r.out)

    def test_explicit(self):
        for name in ("xchacha20poly1305", "aes256gcm", "auto"):
            store = self.tmp.path("s-" + name)
            sfs.mkfs(store, cipher=name)
            want = name if name != "auto" else ("aes256gcm" if aes_here()
                                               else "xchacha20poly1305")
            self.assertEqual(conf(store)["cipher"], want)

    def test_bad_name(self):
        store = self.tmp.path("bad")
        r = sfs.run([sfs.MKFS, "--cipher=rot13", store])
        self.assertEqual(r.rc, 2, r)
        self.assertIn("bad --cipher 'rot13'", r.err)
        self.assertFalse(os.path.exists(os.path.join(store, "sessionfs.conf")))

    def test_unknown_cipher_in_config_refused(self):
        store = self.tmp.path("future")
        sfs.mkfs(store)
        c = conf(store)
        c["cipher"] = "aegis256"
        with open(os.path.join(store, "sessionfs.conf"), "w") as f:
            json.dump(c, f)
        mnt = self.tmp.path("mnt")
        os.mkdir(mnt)
        r = sfs.run([sfs.SESSIONFS, store, mnt])
        self.assertEqual(r.rc, 4, r)
        self.assertIn("cipher 'aegis256', unknown to this sessionfs", r.err)
        self.assertFalse(os.path.ismount(mnt))

    def test_config_without_cipher_makes_xchacha_sessions(self):
        """A store made before the field existed keeps making version 1 sessions."""
        store = self.tmp.path("old")
        sfs.mkfs(store)
        c = conf(store)
        del c["cipher"]
        with open(os.path.join(store, "sessionfs.conf"), "w") as f:
            json.dump(c, f)
        m = self.tmp.mount(store=store)
        sid = self.tmp.new(m)
        kf = key_file(store, sid)
        self.assertEqual(len(kf), 112)
        self.assertEqual(kf[4:6], b"\x01\x00")


@unittest.skipUnless(aes_here(), "this CPU has no AES-NI/PCLMUL: libsodium cannot run AES-256-GCM")
class MixedCiphersTest(unittest.TestCase):
    """An AES-256-GCM store and an XChaCha20-Poly1305 store, sessions moved between them."""

    def setUp(self):
        self.aes = sfs.Env(cipher="aes256gcm")
        self.addCleanup(self.aes.cleanup)
        self.xc = sfs.Env(cipher="xchacha20poly1305")
        self.addCleanup(self.xc.cleanup)
        self.data = os.urandom(5 * 4096 + 777)

    def fill(self, env, m, password):
        sid = env.new(m, password=password)
        d = m.sdir(sid)
        sfs.write_file(os.path.join(d, "blob.bin"), self.data)
        with open(os.path.join(d, "events.jsonl"), "ab") as f:
            f.write(b'{"type":"note","text":"made here"}\n')
        os.makedirs(os.path.join(d, "data", "logs"))
        target = "x" * 300  # a long symlink: one content block
        os.symlink(target, os.path.join(d, "data", "long-link"))
        return sid

    def check(self, d):
        self.assertEqual(sfs.read_file(os.path.join(d, "blob.bin")), self.data)
        self.assertIn(b"made here", sfs.read_file(os.path.join(d, "events.jsonl")))
        self.assertEqual(os.readlink(os.path.join(d, "data", "long-link")), "x" * 300)

    def test_key_files_on_disk(self):
        m = self.aes.mount()
        sid = self.fill(self.aes, m, "pw-aes")
        kf = key_file(self.aes.store, sid)
        self.assertEqual(len(kf), 116)
        self.assertEqual(kf[:8], b"SFSK\x02\x00\x01\x00")  # magic, version 2, Argon2id
        self.assertEqual(kf[40:44], b"\x03\x00\x00\x00")   # AES-256-GCM derived keys, reserved 0
        m2 = self.xc.mount()
        sid2 = self.fill(self.xc, m2, "pw-xc")
        kf2 = key_file(self.xc.store, sid2)
        self.assertEqual(len(kf2), 112)
        self.assertEqual(kf2[:8], b"SFSK\x01\x00\x01\x00")
        self.check(m.sdir(sid))
        self.check(m2.sdir(sid2))

    def test_export_import_across_ciphers(self):
        """Each session keeps its own cipher wherever it is copied."""
        ma, mx = self.aes.mount(), self.xc.mount()
        a = self.fill(self.aes, ma, "pw-aes")
        x = self.fill(self.xc, mx, "pw-xc")
        self.aes.ctl("lock", "--all", ma.mnt)
        self.xc.ctl("lock", "--all", mx.mnt)
        subprocess.run(["cp", "-a", os.path.join(self.xc.store, "sessions", x),
                        os.path.join(self.aes.store, "sessions", x)], check=True)
        subprocess.run(["cp", "-a", os.path.join(self.aes.store, "sessions", a),
                        os.path.join(self.xc.store, "sessions", a)], check=True)
        for env, m in ((self.aes, ma), (self.xc, mx)):
            for sid, pw in ((a, "pw-aes"), (x, "pw-xc")):
                r = env.ctl("unlock", m.sdir(sid), password=pw)
                self.assertEqual(r.rc, 0, r)
                self.check(m.sdir(sid))
                sfs.write_file(os.path.join(m.sdir(sid), "added.txt"), b"after import\n")
        self.aes.assert_umount(ma)
        ma = self.aes.mount()
        for sid, pw, n in ((a, "pw-aes", 116), (x, "pw-xc", 112)):
            self.aes.unlock(ma, sid, password=pw)
            self.check(ma.sdir(sid))
            self.assertEqual(sfs.read_file(os.path.join(ma.sdir(sid), "added.txt")),
                             b"after import\n")
            self.assertEqual(len(key_file(self.aes.store, sid)), n)

    def test_passwd_keeps_the_cipher(self):
        m = self.aes.mount()
        sid = self.fill(self.aes, m, "pw-aes")
        before = key_file(self.aes.store, sid)
        r = self.aes.ctl("passwd", m.sdir(sid), password="pw-aes", new_password="pw-new")
        self.assertEqual(r.rc, 0, r)
        after = key_file(self.aes.store, sid)
        self.assertEqual(len(after), 116)
        self.assertEqual(after[:24], before[:24])
        self.assertEqual(after[40:44], before[40:44])
        self.assertNotEqual(after[44:], before[44:])
        self.aes.ctl("lock", m.sdir(sid))
        self.assertNotEqual(self.aes.ctl("unlock", m.sdir(sid), password="pw-aes").rc, 0)
        self.aes.unlock(m, sid, password="pw-new")
        self.check(m.sdir(sid))

    def test_unknown_key_file_field_refused(self):
        """A version 2 key file with a reserved field set, or an unknown cipher number,
        is refused as newer, and nothing changes."""
        m = self.aes.mount()
        sid = self.fill(self.aes, m, "pw-aes")
        self.aes.ctl("lock", m.sdir(sid))
        path = os.path.join(self.aes.store, "sessions", sid, "key")
        good = key_file(self.aes.store, sid)
        for at, val in ((42, 1), (40, 4)):
            bad = bytearray(good)
            bad[at] = val
            with open(path, "wb") as f:
                f.write(bad)
            r = self.aes.ctl("unlock", m.sdir(sid), password="pw-aes")
            self.assertNotEqual(r.rc, 0, r)
            self.assertIn("newer format", r.err)
            self.assertEqual(key_file(self.aes.store, sid), bytes(bad))
        # Cipher 3 -> 1 (XChaCha) or -> 2 (the legacy AES form, bounded IV budget) breaks the
        # key file's AD: refused like a wrong password.
        for val in (1, 2):
            bad = bytearray(good)
            bad[40] = val
            with open(path, "wb") as f:
                f.write(bad)
            r = self.aes.ctl("unlock", m.sdir(sid), password="pw-aes")
            self.assertEqual(r.rc, 3, r)
        with open(path, "wb") as f:
            f.write(good)
        self.aes.unlock(m, sid, password="pw-aes")
        self.check(m.sdir(sid))


# A CPU without AES-NI and PCLMUL, emulated: qemu's user-mode "qemu64" model.
QEMU = ["qemu-x86_64", "-cpu", "qemu64"]


def qemu_problem():
    """Why the emulated-CPU tests cannot run here, or None."""
    import platform
    import shutil
    if platform.machine() != "x86_64":
        return "qemu-x86_64 emulates an x86-64 CPU without AES-NI; this is %s" % platform.machine()
    if not shutil.which(QEMU[0]):
        return "qemu-x86_64 is not installed (package qemu-user; .ci/deps installs it)"
    with open(sfs.SESSIONFS, "rb") as f:
        exe = f.read()
        if b"__asan_init" in exe or b"__tsan_init" in exe:
            # ASan and TSan reserve terabytes of shadow memory, which qemu-user cannot map
            return ("a sanitizer build does not run under qemu-user (the plain build runs "
                    "these)")
    return None


class NoAesNiTest(unittest.TestCase):
    """The binaries on a CPU without AES-NI (qemu-user's qemu64 model): mkfs
    picks XChaCha20-Poly1305, a mount of an AES store makes its new sessions
    XChaCha and says so, an AES session is refused at unlock with the reason
    and left as it was, and a native mount opens everything afterwards."""

    def setUp(self):
        why = qemu_problem()
        if why:
            self.skipTest(why)
        if not aes_here():
            self.skipTest("this CPU has no AES-NI: no AES session to take elsewhere")
        self.e = sfs.Env(cipher="aes256gcm")
        self.addCleanup(self.e.cleanup)

    def test_mkfs_auto_picks_xchacha(self):
        store = self.e.path("store-emulated")
        r = sfs.run(QEMU + [sfs.MKFS, "--kdf=interactive", store])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("cipher xchacha20poly1305", r.out + r.err)
        self.assertEqual(conf(store)["cipher"], "xchacha20poly1305")
        # natively, auto is AES-256-GCM: the emulated CPU is what changed it
        r = sfs.run([sfs.MKFS, "--kdf=interactive", self.e.path("store-native")])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(conf(self.e.path("store-native"))["cipher"], "aes256gcm")

    def test_aes_store_on_a_cpu_without_aes(self):
        m = self.e.mount()
        aes_sid = self.e.new(m)
        data = os.urandom(3 * 4096 + 5)
        sfs.write_file(os.path.join(m.sdir(aes_sid), "blob.bin"), data)
        self.assertEqual(len(key_file(self.e.store, aes_sid)), 116)
        self.e.assert_umount(m)
        aes_key = key_file(self.e.store, aes_sid)

        q = self.e.mount(foreground=True, wrapper=QEMU)
        self.assertIn("which this CPU cannot run: new sessions made by this mount use "
                      "xchacha20poly1305", q.read_log())
        r = self.e.ctl("unlock", q.sdir(aes_sid), password=sfs.PASSWORD)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("needs AES-NI", r.err)
        self.assertNotIn(sfs.PASSWORD, r.err)
        self.assertEqual(key_file(self.e.store, aes_sid), aes_key, "a refused unlock wrote")
        with self.assertRaises(PermissionError, msg="a refused session lists"):
            os.listdir(q.sdir(aes_sid))  # still locked
        xc_sid = self.e.new(q)
        self.assertEqual(key_file(self.e.store, xc_sid)[:5], b"SFSK\x01", "not a v1 key file")
        d = q.sdir(xc_sid)
        sfs.write_file(os.path.join(d, "notes.txt"), "made without AES-NI\n")
        with open(os.path.join(d, "events.jsonl"), "ab") as f:
            f.write(b'{"type":"note","text":"emulated"}\n')
        self.e.assert_umount(q)

        n = self.e.mount()
        self.e.unlock(n, aes_sid)
        self.assertEqual(sfs.read_file(os.path.join(n.sdir(aes_sid), "blob.bin")), data)
        self.e.unlock(n, xc_sid)
        d = n.sdir(xc_sid)
        self.assertEqual(sfs.read_file(os.path.join(d, "notes.txt")), b"made without AES-NI\n")
        self.assertIn(b'"emulated"', sfs.read_file(os.path.join(d, "events.jsonl")))


if __name__ == "__main__":
    sfs.main()
