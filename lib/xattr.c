/*
 * xattr.c - extended attributes stored as one sealed blob per node; see
 * xattr.h and doc/format.md ("Extended attributes"). Must not know FUSE,
 * sessions, namespaces or JSON.
 */
#include "xattr.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char magic_xattr[4] = {'S', 'F', 'S', 'X'};

#define ENTRY_HDR 5 /* u8 name length | u32 value length */
#define COUNT_BYTES 4

/* One entry of a packed plaintext. */
struct entry {
	const unsigned char *name;
	size_t nlen;
	const unsigned char *value;
	size_t vlen;
	size_t size; /* bytes of the whole entry */
};

/* The entry at @pos of a plaintext already checked by check_plain() or built here. */
static void entry_at(const unsigned char *plain, size_t pos, struct entry *e)
{
	e->nlen = plain[pos];
	e->vlen = sfs_get_le32(plain + pos + 1);
	e->name = plain + pos + ENTRY_HDR;
	e->value = e->name + e->nlen;
	e->size = ENTRY_HDR + e->nlen + e->vlen;
}

/* Position of @name in @x, or -ENODATA; @e receives the entry. */
static ssize_t find(const struct sfs_xattrs *x, const char *name, size_t nlen, struct entry *e)
{
	size_t pos = COUNT_BYTES;

	for (uint32_t i = 0; i < x->count; i++) {
		entry_at(x->plain, pos, e);
		if (e->nlen == nlen && memcmp(e->name, name, nlen) == 0)
			return (ssize_t)pos;
		pos += e->size;
	}
	return -ENODATA;
}

void sfs_xattrs_free(struct sfs_xattrs *x)
{
	if (x->plain) {
		sodium_memzero(x->plain, x->len);
		free(x->plain);
	}
	memset(x, 0, sizeof(*x));
}

int sfs_xattr_get(const struct sfs_xattrs *x, const char *name, const unsigned char **value,
		  size_t *len)
{
	struct entry e;

	if (find(x, name, strlen(name), &e) < 0)
		return -ENODATA;
	*value = e.value;
	*len = e.vlen;
	return 0;
}

/* Bytes listxattr needs for @x with @prefix_len bytes of prefix per name. */
static size_t list_len(const struct sfs_xattrs *x, size_t prefix_len)
{
	size_t pos = COUNT_BYTES, n = 0;
	struct entry e;

	for (uint32_t i = 0; i < x->count; i++) {
		entry_at(x->plain, pos, &e);
		n += prefix_len + e.nlen + 1;
		pos += e.size;
	}
	return n;
}

int sfs_xattr_set(struct sfs_xattrs *x, const char *name, const void *value, size_t len, int flags,
		  size_t prefix_len)
{
	size_t nlen = strlen(name), oldlen = x->plain ? x->len : COUNT_BYTES, newlen, at, rest;
	uint32_t count = x->count;
	unsigned char *p;
	struct entry e;
	ssize_t pos;

	if (nlen == 0)
		return -EINVAL;
	if (nlen > SFS_XATTR_NAME_MAX)
		return -ERANGE;
	if (len > SFS_XATTR_VALUE_MAX)
		return -E2BIG;
	pos = find(x, name, nlen, &e);
	if (pos < 0)
		memset(&e, 0, sizeof(e));
	if (pos >= 0 && (flags & SFS_XATTR_CREATE))
		return -EEXIST;
	if (pos < 0 && (flags & SFS_XATTR_REPLACE))
		return -ENODATA;
	newlen = oldlen - e.size + ENTRY_HDR + nlen + len; /* e.size is 0 if absent */
	if (newlen > SFS_XATTR_PLAIN_MAX ||
	    (pos < 0 && list_len(x, prefix_len) + prefix_len + nlen + 1 > SFS_XATTR_LIST_MAX))
		return -ENOSPC;
	p = malloc(newlen);
	if (!p)
		return -ENOMEM;
	/* Entries before, the new one (where the old one was, or last), entries after. */
	at = pos >= 0 ? (size_t)pos : oldlen;
	rest = oldlen - at - e.size;
	if (x->plain)
		memcpy(p, x->plain, at);
	if (pos < 0)
		count++;
	sfs_put_le32(p, count);
	p[at] = (unsigned char)nlen;
	sfs_put_le32(p + at + 1, (uint32_t)len);
	memcpy(p + at + ENTRY_HDR, name, nlen);
	if (len)
		memcpy(p + at + ENTRY_HDR + nlen, value, len);
	if (rest)
		memcpy(p + at + ENTRY_HDR + nlen + len, x->plain + at + e.size, rest);
	sfs_xattrs_free(x);
	x->plain = p;
	x->len = newlen;
	x->count = count;
	return 0;
}

int sfs_xattr_del(struct sfs_xattrs *x, const char *name)
{
	struct entry e;
	ssize_t pos = find(x, name, strlen(name), &e);
	size_t at;

	if (pos < 0)
		return -ENODATA;
	if (x->count == 1) {
		sfs_xattrs_free(x);
		return 0;
	}
	at = (size_t)pos;
	memmove(x->plain + at, x->plain + at + e.size, x->len - at - e.size);
	x->len -= e.size;
	sodium_memzero(x->plain + x->len, e.size);
	x->count--;
	sfs_put_le32(x->plain, x->count);
	return 0;
}

ssize_t sfs_xattr_list(const struct sfs_xattrs *x, const char *prefix, char *out, size_t size)
{
	size_t plen = strlen(prefix), need = list_len(x, plen), pos = COUNT_BYTES, o = 0;
	struct entry e;

	if (size == 0)
		return (ssize_t)need;
	if (size < need)
		return -ERANGE;
	for (uint32_t i = 0; i < x->count; i++) {
		entry_at(x->plain, pos, &e);
		memcpy(out + o, prefix, plen);
		memcpy(out + o + plen, e.name, e.nlen);
		out[o + plen + e.nlen] = '\0';
		o += plen + e.nlen + 1;
		pos += e.size;
	}
	return (ssize_t)need;
}

size_t sfs_xattr_blob_len(const struct sfs_xattrs *x)
{
	return SFS_XATTR_OVERHEAD + x->len;
}

/* Associated data: "SFSX" | u16 version | node id. */
static void blob_ad(unsigned char ad[SFS_XATTR_AD_BYTES], const unsigned char *hdr,
		    const unsigned char id[SFS_ID_BYTES])
{
	memcpy(ad, hdr, SFS_XATTR_HDR_BYTES);
	memcpy(ad + SFS_XATTR_HDR_BYTES, id, SFS_ID_BYTES);
}

/* Blob: "SFSX" | u16 version | nonce 24 | sealed plaintext | tag 16 */
void sfs_xattr_seal(unsigned char *out, const struct sfs_xattrs *x,
		    const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys)
{
	unsigned char ad[SFS_XATTR_AD_BYTES];

	memcpy(out, magic_xattr, 4);
	sfs_put_le16(out + 4, SFS_XATTR_VERSION);
	blob_ad(ad, out, id);
	sfs_crypto_seal(out + SFS_XATTR_HDR_BYTES, x->plain, x->len, ad, sizeof(ad), keys->meta);
}

/* A name of a plaintext, for the check that none appears twice. */
struct name_ref {
	const unsigned char *name;
	size_t nlen;
};

static int name_cmp(const void *a, const void *b)
{
	const struct name_ref *x = a, *y = b;

	if (x->nlen != y->nlen)
		return x->nlen < y->nlen ? -1 : 1;
	return memcmp(x->name, y->name, x->nlen);
}

/*
 * A plaintext as the writer makes it: at least one entry, names of 1..255
 * bytes without NUL and none twice (get, set and del act on the first of
 * a name, so a second would outlive its removal), values within the
 * limit, nothing left over. 0, -EUCLEAN, or -ENOMEM.
 */
static int check_plain(const unsigned char *p, size_t len, uint32_t *count)
{
	size_t pos = COUNT_BYTES;
	struct name_ref *names;
	struct entry e;
	int rc = 0;

	if (len < COUNT_BYTES)
		return -EUCLEAN;
	*count = sfs_get_le32(p);
	/* each entry takes ENTRY_HDR + 1 bytes at least */
	if (*count == 0 || *count > (len - COUNT_BYTES) / (ENTRY_HDR + 1))
		return -EUCLEAN;
	names = malloc(*count * sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (uint32_t i = 0; i < *count; i++) {
		if (len - pos < ENTRY_HDR) {
			rc = -EUCLEAN;
			break;
		}
		entry_at(p, pos, &e);
		if (e.nlen == 0 || e.vlen > SFS_XATTR_VALUE_MAX ||
		    len - pos - ENTRY_HDR < e.nlen + e.vlen || memchr(e.name, '\0', e.nlen)) {
			rc = -EUCLEAN;
			break;
		}
		names[i] = (struct name_ref){e.name, e.nlen};
		pos += e.size;
	}
	if (rc == 0 && pos != len)
		rc = -EUCLEAN;
	if (rc == 0) {
		qsort(names, *count, sizeof(*names), name_cmp);
		for (uint32_t i = 1; rc == 0 && i < *count; i++)
			if (name_cmp(&names[i - 1], &names[i]) == 0)
				rc = -EUCLEAN;
	}
	free(names);
	return rc;
}

int sfs_xattr_open(struct sfs_xattrs *x, const unsigned char *in, size_t inlen,
		   const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys)
{
	unsigned char ad[SFS_XATTR_AD_BYTES];
	size_t len;
	int rc;

	sfs_xattrs_free(x);
	if (inlen < SFS_XATTR_HDR_BYTES || memcmp(in, magic_xattr, 4) != 0)
		return -EUCLEAN;
	if (sfs_get_le16(in + 4) != SFS_XATTR_VERSION)
		return -EPROTONOSUPPORT;
	if (inlen < SFS_XATTR_OVERHEAD + COUNT_BYTES ||
	    inlen > SFS_XATTR_OVERHEAD + SFS_XATTR_PLAIN_MAX)
		return -EUCLEAN;
	len = inlen - SFS_XATTR_OVERHEAD;
	x->plain = malloc(len);
	if (!x->plain)
		return -ENOMEM;
	x->len = len;
	blob_ad(ad, in, id);
	if (sfs_crypto_open(x->plain, in + SFS_XATTR_HDR_BYTES, inlen - SFS_XATTR_HDR_BYTES, ad,
			    sizeof(ad), keys->meta) != 0) {
		sfs_xattrs_free(x);
		return -EBADMSG;
	}
	rc = check_plain(x->plain, len, &x->count);
	if (rc < 0)
		sfs_xattrs_free(x);
	return rc;
}

void sfs_xattr_blob_name(char out[2 * SFS_ID_BYTES + 1], const unsigned char id[SFS_ID_BYTES])
{
	sodium_bin2hex(out, 2 * SFS_ID_BYTES + 1, id, SFS_ID_BYTES);
}

/* ".sfsx/<32 hex>" */
static void blob_path(char out[sizeof(SFS_XATTR_DIR) + 2 * SFS_ID_BYTES + 1],
		      const unsigned char id[SFS_ID_BYTES])
{
	char hex[2 * SFS_ID_BYTES + 1];

	sfs_xattr_blob_name(hex, id);
	snprintf(out, sizeof(SFS_XATTR_DIR) + 2 * SFS_ID_BYTES + 1, "%s/%s", SFS_XATTR_DIR, hex);
}

int sfs_xattr_load(int rootfd, const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys,
		   struct sfs_xattrs *x)
{
	char path[sizeof(SFS_XATTR_DIR) + 2 * SFS_ID_BYTES + 1];
	unsigned char *buf;
	struct stat st;
	size_t cap;
	ssize_t n;
	int fd, rc;

	sfs_xattrs_free(x);
	blob_path(path, id);
	fd = openat(rootfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : sfs_neg_errno();
	if (fstat(fd, &st) < 0) {
		rc = sfs_neg_errno();
		close(fd);
		return rc;
	}
	/* No more than one byte past the largest blob: enough to refuse it. */
	cap = SFS_XATTR_OVERHEAD + SFS_XATTR_PLAIN_MAX + 1;
	if ((uint64_t)st.st_size < cap)
		cap = (size_t)st.st_size;
	buf = malloc(cap ? cap : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = sfs_pread_all(fd, buf, cap, 0);
	close(fd);
	rc = n < 0 ? (int)n : sfs_xattr_open(x, buf, (size_t)n, id, keys);
	free(buf);
	return rc;
}

/* Make .sfsx in @rootfd if it is missing; an O_PATH descriptor of it or -errno. */
static int open_dir(int rootfd)
{
	int fd;

	if (mkdirat(rootfd, SFS_XATTR_DIR, 0700) == 0)
		sfs_fsync_dirfd(rootfd);
	else if (errno != EEXIST)
		return sfs_neg_errno();
	fd = openat(rootfd, SFS_XATTR_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? sfs_neg_errno() : fd;
}

int sfs_xattr_store(int rootfd, const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys,
		    const struct sfs_xattrs *x)
{
	char hex[2 * SFS_ID_BYTES + 1];
	size_t len = sfs_xattr_blob_len(x);
	unsigned char *blob;
	int dfd, rc;

	if (x->count == 0) {
		/* The last one removed: so is the blob, for good. */
		rc = sfs_xattr_remove(rootfd, id);
		dfd = openat(rootfd, SFS_XATTR_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (rc == 0 && dfd >= 0)
			rc = sfs_fsync_dirfd(dfd);
		if (dfd >= 0)
			close(dfd);
		return rc;
	}
	blob = malloc(len);
	if (!blob)
		return -ENOMEM;
	sfs_xattr_seal(blob, x, id, keys);
	dfd = open_dir(rootfd);
	if (dfd < 0) {
		free(blob);
		return dfd;
	}
	sfs_xattr_blob_name(hex, id);
	rc = sfs_write_atomic(dfd, hex, blob, len);
	close(dfd);
	free(blob);
	return rc;
}

int sfs_xattr_remove(int rootfd, const unsigned char id[SFS_ID_BYTES])
{
	char path[sizeof(SFS_XATTR_DIR) + 2 * SFS_ID_BYTES + 1];

	blob_path(path, id);
	if (unlinkat(rootfd, path, 0) < 0 && errno != ENOENT)
		return sfs_neg_errno();
	return 0;
}

bool sfs_xattr_present(int rootfd)
{
	return faccessat(rootfd, SFS_XATTR_DIR, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int sfs_xattr_sweep(int rootfd)
{
	int fd = openat(rootfd, SFS_XATTR_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int n = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	/* sfs_write_atomic's temporaries: ".tmp.<name>.<pid>.<seq>" */
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, ".tmp.", 5) == 0 && unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	closedir(d);
	return n;
}
