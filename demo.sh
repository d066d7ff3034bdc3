#!/usr/bin/env bash
# demo.sh - sessionfs in two minutes, on a fresh Debian 12 machine, as root:
#
#   ./demo.sh
#
# Installs the packages that are missing (.ci/deps), builds into build/, makes a
# store in a temporary directory, mounts it, creates a session, writes a note
# and an event, reads them back, shows that the store holds only ciphertext,
# locks, unmounts and cleans up. Needs no terminal: the password comes from a
# file (never from the command line). Exits non-zero if any step fails.
set -euo pipefail

cd "$(dirname "$0")"
root=$PWD
build=$root/build

step() { printf '\n==> %s\n' "$*"; }
show() {
	printf '$ %s\n' "$*"
	"$@"
}
die() {
	echo "demo.sh: $*" >&2
	exit 1
}

step "Installing missing packages"
.ci/deps

step "Building into build/"
if [[ ! -f $build/build.ninja ]]; then
	meson setup "$build" >/dev/null
fi
ninja -C "$build" >/dev/null
SESSIONFS=$build/fs/sessionfs
SESSIONCTL=$build/cli/sessionctl
MKFS=$build/cli/mkfs.sessionfs
for b in "$SESSIONFS" "$SESSIONCTL" "$MKFS"; do
	[[ -x $b ]] || die "$b was not built"
done

if [[ ! -e /dev/fuse ]]; then
	modprobe fuse 2>/dev/null || true
	[[ -e /dev/fuse ]] || die "/dev/fuse is missing: FUSE is not available here (in a container, run it with --device /dev/fuse --cap-add SYS_ADMIN)"
fi

tmp=$(mktemp -d /tmp/sessionfs-demo.XXXXXX)
store=$tmp/store
mnt=$tmp/mnt
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# The password lives in a file only its owner can read; it never appears in
# argv or the environment of any process.
(
	umask 077
	printf 'demo-%s\n' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" >"$tmp/password"
)

step "Making a store (Argon2id cost 'interactive', so unlocking is quick)"
show "$MKFS" --kdf=interactive "$store"

step "Mounting it"
mkdir "$mnt"
show "$SESSIONFS" "$store" "$mnt"
mountpoint -q "$mnt" || die "sessionfs returned but $mnt is not mounted"
show ls -la "$mnt" "$mnt/sessions"

step "Creating a session (password from a file)"
printf '$ %s\n' "sessionctl new --name 'demo: db outage' --password-file $tmp/password $mnt"
id=$("$SESSIONCTL" new --name 'demo: db outage' --password-file "$tmp/password" "$mnt" </dev/null)
echo "$id"
s=$mnt/sessions/$id
show "$SESSIONCTL" list "$mnt"

step "Writing a note and appending an event"
marker="the-db-password-is-hunter2"
printf '$ %s\n' "echo 'Root cause: ... $marker' > $s/notes.md"
echo "Root cause: a full disk on db-1; temporary credential $marker" >"$s/notes.md"
event='{"type":"note","text":"db restarted","secret":"'$marker'"}'
printf "\$ echo '%s' >> %s\n" "$event" "$s/events.jsonl"
echo "$event" >>"$s/events.jsonl"

step "Reading them back"
show ls -la "$s"
show cat "$s/notes.md"
show jq -c . "$s/events.jsonl"
show jq . "$s/metadata.json"

step "The store on disk: only ciphertext"
printf '$ %s\n' "ls -laR $store/sessions/$id"
ls -laR "$store/sessions/$id"
printf '\n$ %s\n' "grep -r -c $marker $store"
if grep -r -q -- "$marker" "$store"; then
	die "the plaintext was found in the store"
fi
if grep -r -q -- "db restarted" "$store"; then
	die "the plaintext was found in the store"
fi
echo "(no match: the secret is nowhere in the store)"
# notes.md is the backing file of size 80 (header) + its length + 40 (one block).
size=$(($(stat -c %s "$s/notes.md") + 120))
enc=$(find "$store/sessions/$id/root" -maxdepth 1 -type f -size "${size}c" ! -name .sfsdir | head -n 1)
if [[ -n $enc ]]; then
	printf '\n$ %s\n' "od -A d -t x1z $enc | head -n 8     # notes.md, encrypted"
	od -A d -t x1z "$enc" | head -n 8
fi

step "Locking the session: its files are unreachable"
show "$SESSIONCTL" lock "$s"
printf '$ %s\n' "cat $s/notes.md"
if cat "$s/notes.md" 2>&1; then
	die "a locked session was readable"
fi
show "$SESSIONCTL" list "$mnt"

step "Unmounting, mounting again and unlocking: the data is still there"
show fusermount3 -u "$mnt"
show "$SESSIONFS" "$store" "$mnt"
printf '$ %s\n' "sessionctl unlock --password-file - $s < $tmp/password"
"$SESSIONCTL" unlock --password-file - "$s" <"$tmp/password"
show jq -r .text "$s/events.jsonl"
show "$SESSIONCTL" lock --all "$mnt"
show fusermount3 -u "$mnt"

step "Done: cleaning up $tmp"
