"""The golden store: tests/fixtures/golden-v1.tar.gz, made by
tests/fixtures/make-golden with the build that introduced format version 1,
and golden-v1.json, what it must read as. This build must mount a copy of
it, list its sessions, refuse a wrong password, unlock each session with the
password in the manifest and see exactly the recorded tree: names, types,
modes, owners, link counts, sizes, content hashes, symlink targets, device
numbers, xattrs, mtimes and hard-link groups. Then it must be able to write
to it (append an event, create and remove a file) and read it again after a
remount. The format is a promise: never regenerate a shipped version's files
to make this test pass.

golden-aes.tar.gz is the same tree in sessions whose content is AES-256-GCM
with one key per file (version 2 key files, content cipher 2, now legacy),
made by `make-golden build aes256gcm` at 2cd5a03 when that cipher came;
GoldenAesTest holds every build to it the same way. golden-aes-derived.tar.gz
is the tree again in sessions of content cipher 3 (AES-256-GCM with a key
derived per file and nonce half), made by `make-golden build aes256gcm` when
cipher 3 came; GoldenAesDerivedTest. golden-slots.tar.gz is the tree again
in sessions with version 3 key files (key slots), made by `make-golden build
xchacha20poly1305 slots` when key slots came: several passwords, recovery
keys, labels, a removed slot; GoldenSlotsTest also opens each session with
every secret its manifest lists and checks the slots `keys` shows.
"""
import hashlib
import json
import os
import subprocess
import unittest

import sfs

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")


class GoldenV1Test(unittest.TestCase):
    FIXTURE = "golden-v1"
    KEY_FILE = (112, 1)  # bytes, version
    CIPHER = None  # version 2 key files: the content cipher at byte 40

    def setUp(self):
        sfs.need_binaries()
        with open(os.path.join(FIXTURES, self.FIXTURE + ".json")) as f:
            self.manifest = json.load(f)
        self.e = sfs.Env(make_store=False)
        self.addCleanup(self.e.cleanup)
        subprocess.run(["tar", "-xzf", os.path.join(FIXTURES, self.FIXTURE + ".tar.gz"),
                        "--numeric-owner", "-C", self.e.tmp], check=True)
        self.store = self.e.store
        self.m = self.e.mount(opts="xattr")

    def where(self, sid):
        return os.path.join(self.m.mnt, self.manifest["sessions"][sid]["where"], sid)

    def check_session(self, sid):
        want = self.manifest["sessions"][sid]
        if "tree" in want:
            tree, links = sfs.describe_tree(self.where(sid))
            self.assertEqual(sorted(tree), sorted(want["tree"]), "%s: the names" % sid)
            for rel in sorted(want["tree"]):
                self.assertEqual(tree[rel], want["tree"][rel], "%s: %s" % (sid, rel))
            self.assertEqual(links, want["hard_links"], "%s: hard links" % sid)
        for rel, sha in want.get("files", {}).items():
            self.assertEqual(hashlib.sha256(sfs.read_file(os.path.join(self.where(sid), rel)))
                             .hexdigest(), sha, "%s: %s" % (sid, rel))

    def test_reads_identically(self):
        self.assertEqual(self.manifest["format_version"], 1)
        listed = {s["id"]: s for s in self.e.list(self.m)}
        self.assertEqual(sorted(listed), sorted(self.manifest["sessions"]))
        for sid, s in self.manifest["sessions"].items():
            self.assertEqual(listed[sid]["where"], s["where"])
            self.assertTrue(listed[sid]["locked"])
        sid = sorted(self.manifest["sessions"])[0]
        r = self.e.ctl("unlock", self.where(sid), password="not the password")
        self.assertNotEqual(r.rc, 0)
        self.assertIn("wrong password", r.err)
        for sid, s in self.manifest["sessions"].items():
            r = self.e.ctl("unlock", self.where(sid), password=s["password"])
            self.assertEqual(r.rc, 0, r)
            self.check_session(sid)
        log = self.m.read_log() if self.m.foreground else ""
        self.assertNotIn("corrupt", log)

    def test_fixture_covers_every_kind(self):
        """The store holds every structure of format 1: file headers of each
        kind (0 blocks, 1 log, 2 sparse), directory headers, short-form
        symlinks, sidecars of long names, xattr blobs."""
        seen = set()
        for root, dnames, fnames in os.walk(self.store):
            for n in fnames + dnames:
                p = os.path.join(root, n)
                if os.path.islink(p):
                    seen.add("symlink")
                elif n.endswith(".n"):
                    seen.add("sidecar")
                elif os.path.basename(root) == ".sfsx":
                    seen.add("xattr blob")
                elif os.path.isfile(p):
                    with open(p, "rb") as f:
                        h = f.read(8)
                    if h[:4] in (b"SFSF", b"SFSD") and h[4:6] == b"\x01\x00":
                        seen.add("%s kind %d" % (h[:4].decode(), h[6] | h[7] << 8))
        self.assertLessEqual({"SFSF kind 0", "SFSF kind 1", "SFSF kind 2", "SFSD kind 0",
                              "symlink", "sidecar", "xattr blob"}, seen)
        for sid, s in self.manifest["sessions"].items():
            with open(os.path.join(self.store, s["where"], sid, "key"), "rb") as f:
                kf = f.read()
            self.assertEqual((len(kf), kf[4]), tuple(s.get("key_file", self.KEY_FILE)), sid)
            if self.CIPHER:
                self.assertEqual(kf[40:44], bytes([self.CIPHER, 0, 0, 0]), sid)

    def test_writable_then_reads_again(self):
        sid = next(s for s, v in self.manifest["sessions"].items() if "tree" in v
                   and v["where"] == "sessions")
        pw = self.manifest["sessions"][sid]["password"]
        r = self.e.ctl("unlock", self.where(sid), password=pw)
        self.assertEqual(r.rc, 0, r)
        d = self.where(sid)
        with open(os.path.join(d, "events.jsonl"), "ab") as f:
            f.write(b'{"type":"note","text":"written by a later build"}\n')
        sfs.write_file(os.path.join(d, "new-file"), b"new\n")
        os.unlink(os.path.join(d, "new-file"))
        self.e.assert_umount(self.m)
        self.m = self.e.mount(opts="xattr")
        r = self.e.ctl("unlock", self.where(sid), password=pw)
        self.assertEqual(r.rc, 0, r)
        d = self.where(sid)
        lines = sfs.read_file(os.path.join(d, "events.jsonl")).splitlines()
        self.assertEqual(json.loads(lines[-1])["text"], "written by a later build")
        want = self.manifest["sessions"][sid]["tree"]
        tree, _ = sfs.describe_tree(d)
        # everything but the log, metadata.json (updated) and the root stays as recorded
        for rel in want:
            if rel not in ("events.jsonl", "metadata.json"):
                self.assertEqual(tree[rel], want[rel], rel)
        self.assertEqual(len(lines), 121)

    def test_metadata_still_valid(self):
        """Every session's metadata.json, as the older build wrote it, passes
        this build's rules: written back as it is, and with its status changed."""
        for sid, s in sorted(self.manifest["sessions"].items()):
            r = self.e.ctl("unlock", self.where(sid), password=s["password"])
            self.assertEqual(r.rc, 0, r)
            md = os.path.join(self.where(sid), "metadata.json")
            old = sfs.read_file(md)
            with open(md, "wb") as f:
                f.write(old)
            self.assertEqual(sfs.read_file(md), old, sid)
            doc = json.loads(old)
            r = sfs.run(["sh", "-c", 'cd "$1" && jq \'.status="paused"\' metadata.json > t && '
                         'mv t metadata.json', "sh", self.where(sid)])
            self.assertEqual(r.rc, 0, "%s: %r" % (sid, r))
            got = json.loads(sfs.read_file(md))  # "updated" may follow the mv's t
            self.assertEqual({k: v for k, v in got.items() if k != "updated"},
                             {k: v for k, v in doc.items() if k != "updated"} | {"status": "paused"},
                             sid)


def _aes_here():
    with open("/proc/cpuinfo") as f:
        flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    return "aes" in flags and "pclmulqdq" in flags


@unittest.skipUnless(_aes_here(), "no AES-NI/PCLMUL: libsodium cannot run AES-256-GCM here")
class GoldenAesTest(GoldenV1Test):
    FIXTURE = "golden-aes"
    KEY_FILE = (116, 2)
    CIPHER = 2  # legacy: one key per file


@unittest.skipUnless(_aes_here(), "no AES-NI/PCLMUL: libsodium cannot run AES-256-GCM here")
class GoldenAesDerivedTest(GoldenV1Test):
    FIXTURE = "golden-aes-derived"
    KEY_FILE = (116, 2)
    CIPHER = 3  # a key per file and nonce half


class GoldenSlotsTest(GoldenV1Test):
    FIXTURE = "golden-slots"
    KEY_FILE = None  # per session in the manifest: version 3, 16 + 224 bytes a slot

    def test_every_secret_and_slot(self):
        for sid, s in sorted(self.manifest["sessions"].items()):
            d = self.where(sid)
            r = self.e.ctl("keys", "--json", d)
            self.assertEqual(r.rc, 0, r)
            k = json.loads(r.out)
            self.assertEqual(k["format"], 3, sid)
            self.assertEqual(k["cipher"], "xchacha20poly1305", sid)
            # locked: labels sealed
            self.assertEqual([[x["index"], x["kind"], None] for x in k["slots"]],
                             [[x[0], x[1], None] for x in s["slots"]], sid)
            self.assertTrue(all(x.get("label_sealed") for x in k["slots"]), sid)
            for secret in s["secrets"]:
                r = self.e.ctl("unlock", d, password=secret)
                self.assertEqual(r.rc, 0, (sid, r))
                self.check_session(sid)
                self.e.lock(self.m, sid)
            r = self.e.ctl("unlock", d, password=s["secrets"][0] + "x")
            self.assertEqual(r.rc, 3, r)
            self.e.unlock(self.m, sid, password=s["secrets"][-1])
            k = json.loads(self.e.ctl("keys", "--json", d).out)
            self.assertEqual([[x["index"], x["kind"], x["label"]] for x in k["slots"]],
                             s["slots"], sid)


if __name__ == "__main__":
    sfs.main()
