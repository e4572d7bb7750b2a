/* workspace.c: the confined filesystem (see workspace.h). Directories are resolved to a
 * descriptor beneath the root by the kernel (openat2) or by a no-follow walk that compares
 * mount ids; the final component is then handled relative to that descriptor with O_NOFOLLOW /
 * AT_SYMLINK_NOFOLLOW and a mount check, so no path string is ever resolved twice and nothing
 * mounted inside the root is reached. Uses Linux syscalls (statx, openat2, /proc) only. */
#define _GNU_SOURCE
#include "workspace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

static int ws_fail(ws_err *e, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(e->msg, sizeof e->msg, "workspace: ");
  vsnprintf(e->msg + n, sizeof e->msg - (size_t)n, fmt, ap);
  va_end(ap);
  e->code = code;
  return -1;
}

/* errno of a failed call on `what` (a normalized path) -> the contract's error. */
static int ws_errno(ws_err *e, int err, const char *op, const char *what) {
  switch (err) {
  case ENOENT: return ws_fail(e, "ENOENT", "%s: no such file or directory: %s", op, what);
  case ENOTDIR: return ws_fail(e, "ENOTDIR", "%s: not a directory: %s", op, what);
  case EISDIR: return ws_fail(e, "EISDIR", "%s: is a directory: %s", op, what);
  case EEXIST: return ws_fail(e, "EEXIST", "%s: already exists: %s", op, what);
  case ENOTEMPTY: return ws_fail(e, "ENOTEMPTY", "%s: directory not empty: %s", op, what);
  case ELOOP: return ws_fail(e, "EPERM", "%s: path goes through a symlink: %s", op, what);
  case EXDEV: return ws_fail(e, "EPERM", "%s: path crosses a mount point: %s", op, what);
  /* unlink and rename say EBUSY for a mount point: the same refusal as EXDEV */
  case EBUSY: return ws_fail(e, "EPERM", "%s: is a mount point or in use by the system: %s", op, what);
  case EAGAIN: /* openat2 asks for a retry when a rename raced it: refuse rather than spin */
    return ws_fail(e, "EAGAIN", "%s: the directory changed during the lookup: %s", op, what);
  case EACCES:
  case EPERM: return ws_fail(e, "EACCES", "%s: permission denied: %s", op, what);
  case ENOSPC: return ws_fail(e, "ENOSPC", "%s: no space left on device: %s", op, what);
#ifdef EDQUOT
  /* a spent quota is a full disk to the caller, as the git layer says it (gr_fail) */
  case EDQUOT: return ws_fail(e, "ENOSPC", "%s: disk quota exceeded: %s", op, what);
#endif
  /* past the process's file-size limit (SIGXFSZ is caught: main.c): a full disk to the
   * caller too, the run stopped and resumable once the limit is raised */
  case EFBIG:
    return ws_fail(e, "ENOSPC", "%s: file too large for the process's file-size limit (ulimit -f, systemd "
                   "LimitFSIZE=): %s", op, what);
  case ENAMETOOLONG: return ws_fail(e, "EINVAL", "%s: name too long: %s", op, what);
  /* the host's, not the file's: named by their own codes so a tool's answer and the run's stop
   * (engine/gitwork.lua host_fault) say the same cause (they read EIO before) */
  case EMFILE: return ws_fail(e, "EMFILE", "%s: %s: %s", op, strerror(err), what);
  case ENFILE: return ws_fail(e, "ENFILE", "%s: %s: %s", op, strerror(err), what);
  case EROFS: return ws_fail(e, "EROFS", "%s: %s: %s", op, strerror(err), what);
  default: return ws_fail(e, "EIO", "%s: %s: %s", op, strerror(err), what);
  }
}

/* ---- lexical checks --------------------------------------------------------------------- */

/* Up to WS_SHOWN_MAX bytes of path into buf (4 * WS_SHOWN_MAX + 4 bytes), a NUL shown as \0
 * and other control bytes as \xHH (a message may reach a terminal or a log line whole), cut
 * at the start of a character with "..." when longer: a refused path shown whatever it
 * holds, and not 4 KB of it. */
#define WS_SHOWN_MAX 64
static const char *ws_shown_as(const char *path, size_t len, char *buf, int ascii) {
  size_t cut = len > WS_SHOWN_MAX ? WS_SHOWN_MAX : len, o = 0;
  while (cut < len && cut > 0 && ((unsigned char)path[cut] & 0xC0) == 0x80) cut--;
  for (size_t i = 0; i < cut; i++) {
    unsigned char c = (unsigned char)path[i];
    if (c == 0) buf[o++] = '\\', buf[o++] = '0';
    else if (c < 0x20 || c == 0x7f || (ascii && c >= 0x80)) o += (size_t)snprintf(buf + o, 5, "\\x%02x", c);
    else buf[o++] = (char)c;
  }
  if (cut < len) memcpy(buf + o, "...", 3), o += 3;
  buf[o] = '\0';
  return buf;
}

static const char *ws_shown(const char *path, size_t len, char *buf) { return ws_shown_as(path, len, buf, 0); }

/* The lexical checks, with the operation (op, or NULL for the gate, which names the tool and
 * argument itself) ahead of the reason, as in every other workspace message. */
static int ws_normalize_op(const char *op, const char *path, size_t len, char *out, size_t outlen, ws_err *e) {
  const char *sep = op ? ": " : "";
  char shown[4 * WS_SHOWN_MAX + 4];
  if (op == NULL) op = "";
  if (len == 0) return ws_fail(e, "EINVAL", "%s%sempty path", op, sep);
  if (memchr(path, '\0', len) != NULL)
    return ws_fail(e, "EINVAL", "%s%spath contains a NUL byte: %s", op, sep, ws_shown(path, len, shown));
  if (len >= WS_PATH_MAX || len >= outlen)
    return ws_fail(e, "EINVAL", "%s%spath longer than %d bytes (%zu given): %s", op, sep, WS_PATH_MAX - 1, len,
                   ws_shown(path, len, shown));
  if (path[0] == '/')
    return ws_fail(e, "EPERM", "%s%spath escapes root: %.*s (absolute paths are not allowed; use a path relative "
                   "to the workspace)", op, sep, (int)len, path);
  size_t o = 0, i = 0;
  while (i < len) {
    size_t j = i;
    while (j < len && path[j] != '/') j++;
    size_t clen = j - i;
    if (clen == 0 || (clen == 1 && path[i] == '.')) {
      /* empty or "." component: nothing to add */
    } else if (clen == 2 && path[i] == '.' && path[i + 1] == '.') {
      return ws_fail(e, "EPERM", "%s%spath escapes root: %.*s ('..' is not allowed; name the path from the workspace "
                     "root)", op, sep, (int)len, path);
    } else if (clen > WS_NAME_MAX) {
      return ws_fail(e, "EINVAL", "%s%spath component longer than %d bytes in %.*s", op, sep, WS_NAME_MAX, (int)len,
                     path);
    } else {
      if (o > 0) out[o++] = '/';
      memcpy(out + o, path + i, clen);
      o += clen;
    }
    i = j + 1;
  }
  if (o == 0) out[o++] = '.';
  out[o] = '\0';
  return 0;
}

int ws_path_normalize(const char *path, size_t len, char *out, size_t outlen, ws_err *e) {
  return ws_normalize_op(NULL, path, len, out, outlen, e);
}

static int ws_first_is(const char *norm, const char *name) {
  size_t n = strlen(name);
  return strncmp(norm, name, n) == 0 && (norm[n] == '\0' || norm[n] == '/');
}

/* 1 when some component of norm is ".git" in any case: the repository's directory, a linked
 * worktree's .git file, or a nested repository that would turn a directory into something
 * git does not track (git itself refuses such paths in any case). */
static int ws_has_dotgit(const char *norm) {
  for (const char *c = norm; c; c = strchr(c, '/')) {
    if (*c == '/') c++;
    if (strncasecmp(c, ".git", 4) == 0 && (c[4] == '\0' || c[4] == '/')) return 1;
  }
  return 0;
}

/* Only what is git's or Orket's inside a workspace. A workspace is the team's repository (or a
 * card's worktree of it); the project's own orket.lua, roles/, tools/ and policies/ lie in the
 * project folder above it, which no workspace reaches, so those names in a workspace are the
 * team's files (a build script's tools/, Ansible's roles/, OPA's policies/) and agents may write
 * them. .orket/ at the root stays Orket's name: with it a workspace could pass for a project. */
int ws_path_protected(const char *norm) {
  return ws_has_dotgit(norm) || ws_first_is(norm, ".orket");
}

/* ---- what git refuses -------------------------------------------------------------------
 * A name the card's commit would refuse (libgit2's rules, which core/gitrepo applies to the
 * whole tree): written, it failed every commit of the card, its work never reached main, and
 * the card ended blocked on a budget. Refused at the write instead, naming the rule. */

/* ".git" or its short name "git~1", in any case, then ':' or '\\' (a stream of it, a folder in
 * it) or nothing but spaces and dots, which Windows drops: core.protectNTFS, which libgit2 and
 * git apply on every system by default. */
static int ws_ntfs_dotgit(const char *c, size_t n) {
  static const char *const names[] = {".git", "git~1"};
  for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
    size_t len = strlen(names[k]);
    if (n < len || strncasecmp(c, names[k], len) != 0) continue;
    if (n > len && (c[len] == ':' || c[len] == '\\')) return 1;
    while (len < n && (c[len] == ' ' || c[len] == '.')) len++;
    return len == n;
  }
  return 0;
}

/* ".git" in any case with code points HFS+ ignores (zero-width joiners, direction marks, a
 * byte-order mark) anywhere in it: core.protectHFS, git's default on macOS, and git's fsck
 * (which a forge may run on a push) refuses such a tree on any system. */
static int ws_hfs_dotgit(const char *c, size_t n) {
  char folded[4];
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    const unsigned char *b = (const unsigned char *)c + i;
    if (i + 3 <= n && ((b[0] == 0xE2 && b[1] == 0x80 && ((b[2] >= 0x8C && b[2] <= 0x8F) || (b[2] >= 0xAA && b[2] <= 0xAE))) ||
                       (b[0] == 0xE2 && b[1] == 0x81 && b[2] >= 0xAA && b[2] <= 0xAF) ||
                       (b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF))) {
      i += 3; /* U+200C-200F, U+202A-202E, U+206A-206F, U+FEFF */
      continue;
    }
    if (k == 4 || b[0] >= 0x80) return 0;
    folded[k++] = (char)(b[0] >= 'A' && b[0] <= 'Z' ? b[0] + 32 : b[0]);
    i++;
  }
  return k == 4 && memcmp(folded, ".git", 4) == 0;
}

const char *ws_git_name_refused(const char *c, size_t n) {
  if (ws_ntfs_dotgit(c, n))
    return "Windows reads it as .git (the repository's own folder), so git refuses it (core.protectNTFS)";
  if (ws_hfs_dotgit(c, n))
    return "macOS reads it as .git (the repository's own folder), so git refuses it (core.protectHFS, fsck)";
  return NULL;
}

/* ---- what a Windows or macOS clone cannot check out -------------------------------------
 * Names libgit2 commits on Linux but a clone elsewhere cannot have: git on Windows refuses
 * to check them out ("invalid path"), and macOS and Windows keep one file for twins by case
 * or composition, so one silently overwrites the other. Main is shared by the whole team,
 * so these are refused at the write too (unless the project turns it off: ws.portable_names). */

size_t ws_device_name(const char *c, size_t n) {
  static const char *const names[] = {"con", "prn", "aux", "nul", "conin$", "conout$"};
  size_t base = 0;
  while (base < n && c[base] != '.') base++;
  while (base > 0 && c[base - 1] == ' ') base--;
  for (size_t k = 0; k < sizeof names / sizeof *names; k++)
    if (base == strlen(names[k]) && strncasecmp(c, names[k], base) == 0) return base;
  if (base < 4 || (strncasecmp(c, "com", 3) != 0 && strncasecmp(c, "lpt", 3) != 0)) return 0;
  if (base == 4) return c[3] >= '1' && c[3] <= '9' ? base : 0;
  /* U+00B9, U+00B2, U+00B3 */
  return base == 5 && (unsigned char)c[3] == 0xC2 &&
                 ((unsigned char)c[4] == 0xB9 || (unsigned char)c[4] == 0xB2 || (unsigned char)c[4] == 0xB3)
             ? base
             : 0;
}

const char *ws_portable_name_refused(const char *c, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char b = (unsigned char)c[i];
    if (b < 0x20) return "it holds a control character, which Windows does not allow in a name";
    if (strchr("<>:\"|?*\\", b) != NULL)
      return "it holds one of < > : \" | ? * \\, which Windows does not allow in a name";
  }
  if (n > 0 && (c[n - 1] == '.' || c[n - 1] == ' '))
    return "it ends in a dot or a space, which Windows drops (it would be another name there)";
  if (ws_device_name(c, n) > 0)
    return "Windows reads it as a device (CON, PRN, AUX, NUL, COM1-9, LPT1-9), with an extension or without";
  return NULL;
}

/* U+00C0-U+017F decomposed: {the first code point, the combining mark or 0}. A letter with a
 * mark decomposes (NFD) into an ASCII letter of its case and the mark; a letter without one is
 * given lower-cased (\u00c6 as \u00e6), as the fold wants it (made from Unicode's data). */
static const uint16_t ws_latin_fold[192][2] = {
  {0x041, 0x300}, {0x041, 0x301}, {0x041, 0x302}, {0x041, 0x303}, {0x041, 0x308}, {0x041, 0x30A}, {0x0E6, 0},
  {0x043, 0x327}, {0x045, 0x300}, {0x045, 0x301}, {0x045, 0x302}, {0x045, 0x308}, {0x049, 0x300}, {0x049, 0x301},
  {0x049, 0x302}, {0x049, 0x308}, {0x0F0, 0}, {0x04E, 0x303}, {0x04F, 0x300}, {0x04F, 0x301}, {0x04F, 0x302},
  {0x04F, 0x303}, {0x04F, 0x308}, {0x0D7, 0}, {0x0F8, 0}, {0x055, 0x300}, {0x055, 0x301}, {0x055, 0x302},
  {0x055, 0x308}, {0x059, 0x301}, {0x0FE, 0}, {0x0DF, 0}, {0x061, 0x300}, {0x061, 0x301}, {0x061, 0x302},
  {0x061, 0x303}, {0x061, 0x308}, {0x061, 0x30A}, {0x0E6, 0}, {0x063, 0x327}, {0x065, 0x300}, {0x065, 0x301},
  {0x065, 0x302}, {0x065, 0x308}, {0x069, 0x300}, {0x069, 0x301}, {0x069, 0x302}, {0x069, 0x308}, {0x0F0, 0},
  {0x06E, 0x303}, {0x06F, 0x300}, {0x06F, 0x301}, {0x06F, 0x302}, {0x06F, 0x303}, {0x06F, 0x308}, {0x0F7, 0},
  {0x0F8, 0}, {0x075, 0x300}, {0x075, 0x301}, {0x075, 0x302}, {0x075, 0x308}, {0x079, 0x301}, {0x0FE, 0},
  {0x079, 0x308}, {0x041, 0x304}, {0x061, 0x304}, {0x041, 0x306}, {0x061, 0x306}, {0x041, 0x328}, {0x061, 0x328},
  {0x043, 0x301}, {0x063, 0x301}, {0x043, 0x302}, {0x063, 0x302}, {0x043, 0x307}, {0x063, 0x307}, {0x043, 0x30C},
  {0x063, 0x30C}, {0x044, 0x30C}, {0x064, 0x30C}, {0x111, 0}, {0x111, 0}, {0x045, 0x304}, {0x065, 0x304},
  {0x045, 0x306}, {0x065, 0x306}, {0x045, 0x307}, {0x065, 0x307}, {0x045, 0x328}, {0x065, 0x328}, {0x045, 0x30C},
  {0x065, 0x30C}, {0x047, 0x302}, {0x067, 0x302}, {0x047, 0x306}, {0x067, 0x306}, {0x047, 0x307}, {0x067, 0x307},
  {0x047, 0x327}, {0x067, 0x327}, {0x048, 0x302}, {0x068, 0x302}, {0x127, 0}, {0x127, 0}, {0x049, 0x303},
  {0x069, 0x303}, {0x049, 0x304}, {0x069, 0x304}, {0x049, 0x306}, {0x069, 0x306}, {0x049, 0x328}, {0x069, 0x328},
  {0x049, 0x307}, {0x131, 0}, {0x133, 0}, {0x133, 0}, {0x04A, 0x302}, {0x06A, 0x302}, {0x04B, 0x327}, {0x06B, 0x327},
  {0x138, 0}, {0x04C, 0x301}, {0x06C, 0x301}, {0x04C, 0x327}, {0x06C, 0x327}, {0x04C, 0x30C}, {0x06C, 0x30C},
  {0x140, 0}, {0x140, 0}, {0x142, 0}, {0x142, 0}, {0x04E, 0x301}, {0x06E, 0x301}, {0x04E, 0x327}, {0x06E, 0x327},
  {0x04E, 0x30C}, {0x06E, 0x30C}, {0x149, 0}, {0x14B, 0}, {0x14B, 0}, {0x04F, 0x304}, {0x06F, 0x304}, {0x04F, 0x306},
  {0x06F, 0x306}, {0x04F, 0x30B}, {0x06F, 0x30B}, {0x153, 0}, {0x153, 0}, {0x052, 0x301}, {0x072, 0x301},
  {0x052, 0x327}, {0x072, 0x327}, {0x052, 0x30C}, {0x072, 0x30C}, {0x053, 0x301}, {0x073, 0x301}, {0x053, 0x302},
  {0x073, 0x302}, {0x053, 0x327}, {0x073, 0x327}, {0x053, 0x30C}, {0x073, 0x30C}, {0x054, 0x327}, {0x074, 0x327},
  {0x054, 0x30C}, {0x074, 0x30C}, {0x167, 0}, {0x167, 0}, {0x055, 0x303}, {0x075, 0x303}, {0x055, 0x304},
  {0x075, 0x304}, {0x055, 0x306}, {0x075, 0x306}, {0x055, 0x30A}, {0x075, 0x30A}, {0x055, 0x30B}, {0x075, 0x30B},
  {0x055, 0x328}, {0x075, 0x328}, {0x057, 0x302}, {0x077, 0x302}, {0x059, 0x302}, {0x079, 0x302}, {0x059, 0x308},
  {0x05A, 0x301}, {0x07A, 0x301}, {0x05A, 0x307}, {0x07A, 0x307}, {0x05A, 0x30C}, {0x07A, 0x30C}, {0x17F, 0}};

/* cp (below U+0800) as UTF-8 at out; its length */
static size_t ws_put_cp(unsigned cp, char *out) {
  if (cp < 0x80) return out[0] = (char)cp, 1;
  out[0] = (char)(0xC0 | (cp >> 6));
  out[1] = (char)(0x80 | (cp & 0x3F));
  return 2;
}

/* One unit of c (n bytes) at *i, a Latin letter of U+00C0-U+017F (two bytes) or one byte,
 * folded (ws_name_fold's) into u (at most 3 bytes); *i moves past it. Returns u's length. */
static size_t ws_fold_unit(const char *c, size_t n, size_t *i, char *u, int keep_case) {
  unsigned char b = (unsigned char)c[*i];
  unsigned next = *i + 1 < n ? (unsigned char)c[*i + 1] : 0;
  if (b >= 0xC3 && b <= 0xC5 && (next & 0xC0) == 0x80) {
    const uint16_t *f = ws_latin_fold[((b & 0x1Fu) << 6 | (next & 0x3Fu)) - 0xC0];
    *i += 2;
    if (f[1] == 0 && keep_case) return u[0] = (char)b, u[1] = (char)next, 2;
    if (f[1] == 0) return ws_put_cp(f[0], u);
    u[0] = (char)(!keep_case && f[0] >= 'A' && f[0] <= 'Z' ? f[0] + 32 : f[0]);
    return 1 + ws_put_cp(f[1], u + 1);
  }
  *i += 1;
  u[0] = (char)(!keep_case && b >= 'A' && b <= 'Z' ? b + 32 : b);
  return 1;
}

size_t ws_name_fold(const char *c, size_t n, char *out, int keep_case) {
  size_t o = 0;
  for (size_t i = 0; i < n;) o += ws_fold_unit(c, n, &i, out + o, keep_case);
  out[o] = '\0';
  return o;
}

/* A name's fold read a byte at a time, so two folds compare without a buffer of any size. */
typedef struct {
  const char *c;
  size_t n, i, ul, up;
  char u[4];
  int keep_case;
} ws_fold_iter;

static int ws_fold_byte(ws_fold_iter *it) {
  if (it->up == it->ul) {
    if (it->i >= it->n) return -1;
    it->ul = ws_fold_unit(it->c, it->n, &it->i, it->u, it->keep_case);
    it->up = 0;
  }
  return (unsigned char)it->u[it->up++];
}

static int ws_folds_equal(const char *a, size_t an, const char *b, size_t bn, int keep_case) {
  ws_fold_iter x = {a, an, 0, 0, 0, {0}, keep_case}, y = {b, bn, 0, 0, 0, {0}, keep_case};
  for (;;) {
    int p = ws_fold_byte(&x), q = ws_fold_byte(&y);
    if (p != q) return 0;
    if (p < 0) return 1;
  }
}

int ws_name_twin(const char *a, size_t an, const char *b, size_t bn) {
  if ((an == bn && memcmp(a, b, an) == 0) || !ws_folds_equal(a, an, b, bn, 0)) return 0;
  if (ws_folds_equal(a, an, b, bn, 1)) return WS_TWIN_COMPOSED;
  /* case alone: letter for letter, each folds alike (an NFC letter against an NFD pair does
   * not: that is composition too) */
  size_t i = 0, j = 0;
  while (i < an && j < bn) {
    char u[4], v[4];
    size_t ul = ws_fold_unit(a, an, &i, u, 0), vl = ws_fold_unit(b, bn, &j, v, 0);
    if (ul != vl || memcmp(u, v, ul) != 0) return WS_TWIN_CASE | WS_TWIN_COMPOSED;
  }
  return i == an && j == bn ? WS_TWIN_CASE : WS_TWIN_CASE | WS_TWIN_COMPOSED;
}

#define WS_PORTABLE_OFF "a team on Linux only may set workspace = { portable_names = false } in orket.lua"

/* Refuses a path to create (a file, or a folder when dir) that git cannot commit: a name of
 * ws_git_name_refused, or more than WS_GIT_DIRS_MAX levels of folders; and, when portable,
 * a name of ws_portable_name_refused. 0, or -1 with e filled. */
static int ws_git_refuses(const char *op, const char *norm, int dir, int portable, ws_err *e) {
  char name[4 * WS_SHOWN_MAX + 4], path[4 * WS_SHOWN_MAX + 4];
  size_t dirs = dir ? 1 : 0;
  for (const char *c = norm;; dirs++) {
    const char *end = strchr(c, '/');
    size_t n = end ? (size_t)(end - c) : strlen(c);
    const char *why = ws_git_name_refused(c, n);
    if (why)
      return ws_fail(e, "EINVAL", "%s: the name '%s' in %s cannot be committed: %s; choose another name", op,
                     ws_shown(c, n, name), ws_shown(norm, strlen(norm), path), why);
    why = portable ? ws_portable_name_refused(c, n) : NULL;
    if (why)
      return ws_fail(e, "EINVAL", "%s: the name '%s' in %s cannot be checked out on Windows: %s; choose another "
                     "name (%s)", op, ws_shown(c, n, name), ws_shown(norm, strlen(norm), path), why, WS_PORTABLE_OFF);
    if (end == NULL) break;
    c = end + 1;
  }
  if (dirs > WS_GIT_DIRS_MAX)
    return ws_fail(e, "EINVAL", "%s: %zu levels of folders, and git commits at most %d (deeper, no commit of the "
                   "card succeeds); use a shallower path: %s", op, dirs, WS_GIT_DIRS_MAX,
                   ws_shown(norm, strlen(norm), path));
  return 0;
}

/* ---- resolution ------------------------------------------------------------------------- */

static long ws_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = flags;
  how.resolve = resolve;
  return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

#define WS_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS)

/* ---- mount ids ---------------------------------------------------------------------------
 * st_dev does not change across a bind mount of the same filesystem, so the walk compares
 * mount ids: statx(STATX_MNT_ID) (Linux >= 5.8), else /proc/self/fdinfo/<fd> (Linux >= 3.15),
 * else st_dev (documented as weaker). ws_open picks the source once. */

#ifdef STATX_MNT_ID
#define WS_HAVE_STATX_MNT_ID 1
#define WS_STATX_MASK (STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_INO | STATX_SIZE | STATX_MTIME | STATX_MNT_ID)
#else
#define WS_HAVE_STATX_MNT_ID 0
#endif

static int ws_fdinfo_mnt_id(int fd, uint64_t *id) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  int pfd = open(path, O_RDONLY | O_CLOEXEC);
  if (pfd < 0) {
    /* no /proc: the source is unavailable; out of descriptors or memory is an error */
    if (errno != EMFILE && errno != ENFILE && errno != ENOMEM) errno = ENOSYS;
    return -1;
  }
  ssize_t n;
  do n = read(pfd, buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  close(pfd);
  if (n <= 0) {
    errno = ENOSYS;
    return -1;
  }
  buf[n] = '\0';
  /* "pos:\t0\nflags:\t...\nmnt_id:\t29\n...": the line is early, well inside 1 KiB */
  const char *p = strncmp(buf, "mnt_id:", 7) == 0 ? buf : strstr(buf, "\nmnt_id:");
  if (p == NULL) {
    errno = ENOSYS; /* a kernel before 3.15 */
    return -1;
  }
  p += (*p == '\n') + 7;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(p, &end, 10);
  if (end == p || errno != 0) {
    errno = ENOSYS;
    return -1;
  }
  *id = (uint64_t)v;
  return 0;
}

int ws_mount_id(int fd, ws_mnt_source src, uint64_t *id) {
  switch (src) {
  case WS_MNT_STATX: {
#if WS_HAVE_STATX_MNT_ID
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) != 0) {
      if (errno == ENOSYS || errno == EINVAL) errno = ENOSYS;
      return -1;
    }
    if ((sx.stx_mask & STATX_MNT_ID) == 0) { /* a kernel before 5.8 ignores the request */
      errno = ENOSYS;
      return -1;
    }
    *id = sx.stx_mnt_id;
    return 0;
#else
    errno = ENOSYS;
    return -1;
#endif
  }
  case WS_MNT_FDINFO: return ws_fdinfo_mnt_id(fd, id);
  case WS_MNT_DEV: {
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    *id = (uint64_t)st.st_dev;
    return 0;
  }
  }
  errno = EINVAL;
  return -1;
}

int ws_mount_best(int fd, ws_mnt_source *src, uint64_t *id) {
  static const ws_mnt_source sources[] = {WS_MNT_STATX, WS_MNT_FDINFO, WS_MNT_DEV};
  for (size_t i = 0; i < sizeof sources / sizeof *sources; i++) {
    if (ws_mount_id(fd, sources[i], id) == 0) {
      *src = sources[i];
      return 0;
    }
    if (errno != ENOSYS) return -1; /* the source exists but failed: never settle for a weaker one */
  }
  return -1;
}

#if WS_HAVE_STATX_MNT_ID
/* The fields of a statx the workspace reads, as the struct stat the rest of it uses. */
static void ws_from_statx(const struct statx *sx, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_dev = makedev(sx->stx_dev_major, sx->stx_dev_minor);
  st->st_ino = (ino_t)sx->stx_ino;
  st->st_mode = sx->stx_mode;
  st->st_nlink = sx->stx_nlink;
  st->st_size = (off_t)sx->stx_size;
  st->st_mtim.tv_sec = sx->stx_mtime.tv_sec;
  st->st_mtim.tv_nsec = sx->stx_mtime.tv_nsec;
}
#endif

/* fstat of fd, plus: is fd on the root's mount? (1 yes, 0 no, -1 error). With statx this is
 * one system call, the same as the fstat it replaces. */
static int ws_stat_same_mount(const ws *w, int fd, struct stat *st) {
#if WS_HAVE_STATX_MNT_ID
  if (w->mnt_src == WS_MNT_STATX) {
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, WS_STATX_MASK, &sx) != 0)
      return -1;
    ws_from_statx(&sx, st);
    return sx.stx_mnt_id == w->mnt_id;
  }
#endif
  if (fstat(fd, st) != 0) return -1;
  if (w->mnt_src == WS_MNT_DEV) return (uint64_t)st->st_dev == w->mnt_id;
  uint64_t id;
  if (st->st_dev != w->dev) return 0; /* cheap and sure: another filesystem */
  if (ws_mount_id(fd, w->mnt_src, &id) != 0) return -1;
  return id == w->mnt_id;
}

/* Opens the final component `leaf` of dfd (a directory on the root's mount) with flags, as
 * openat2's RESOLVE_NO_XDEV would: refuses (EXDEV) when something is mounted on it. In
 * openat2 mode the kernel checks it for free; the walk checks the opened descriptor, so a
 * mount appearing in between cannot slip through. O_NOFOLLOW is always added. */
static int ws_openleaf(const ws *w, int dfd, const char *leaf, int flags, mode_t mode) {
  flags |= O_NOFOLLOW | O_CLOEXEC;
  if (w->mode == WS_RESOLVE_OPENAT2) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags;
    how.mode = (flags & O_CREAT) ? (uint64_t)mode : 0;
    how.resolve = WS_RESOLVE;
    return (int)syscall(SYS_openat2, dfd, leaf, &how, sizeof how);
  }
  int fd = openat(dfd, leaf, flags, mode);
  if (fd < 0) return -1;
  struct stat st;
  int same = ws_stat_same_mount(w, fd, &st);
  if (same != 1) {
    int err = same < 0 ? errno : EXDEV;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

/* lstat of `leaf` in dfd (a directory on the root's mount) that fails with EXDEV when
 * something is mounted on it. With statx mount ids this is one statx, the cost of the
 * fstatat it replaces, in both modes; otherwise the leaf is opened O_PATH and checked. */
static int ws_leaf_stat(const ws *w, int dfd, const char *leaf, struct stat *st) {
#if WS_HAVE_STATX_MNT_ID
  if (w->mnt_src == WS_MNT_STATX) {
    struct statx sx;
    /* the lookup of the last component enters whatever is mounted there, so its mount id
     * is the mounted one's */
    if (statx(dfd, leaf, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, WS_STATX_MASK, &sx) != 0)
      return -1;
    if (sx.stx_mnt_id != w->mnt_id) {
      errno = EXDEV;
      return -1;
    }
    ws_from_statx(&sx, st);
    return 0;
  }
#endif
  int fd = ws_openleaf(w, dfd, leaf, O_PATH, 0);
  if (fd < 0) return -1;
  int r = fstat(fd, st);
  int err = errno;
  close(fd);
  errno = err;
  return r;
}

/* Opens directory `dir` (normalized, relative) beneath the root. Returns an fd or -1 with
 * errno set (ELOOP for a symlink, EXDEV for a mount crossing, ENOTDIR, ENOENT). */
static int ws_opendir(ws *w, const char *dir, int flags) {
  if (w->mode == WS_RESOLVE_OPENAT2)
    return (int)ws_openat2(w->rootfd, dir, (uint64_t)(flags | O_DIRECTORY | O_CLOEXEC), WS_RESOLVE);
  /* The walk: one component at a time, never following a link, staying on the root's
   * mount (by mount id: a bind mount keeps st_dev). */
  int cur = openat(w->rootfd, ".", flags | O_DIRECTORY | O_CLOEXEC);
  if (cur < 0 || strcmp(dir, ".") == 0) return cur;
  const char *p = dir;
  char name[WS_NAME_MAX + 1];
  while (*p) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    memcpy(name, p, n);
    name[n] = '\0';
    p += n + (slash ? 1 : 0);
    /* O_PATH|O_NOFOLLOW opens a symlink itself, so fstat tells us what it is */
    int next = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    close(cur);
    if (next < 0) {
      errno = err;
      return -1;
    }
    struct stat st;
    int same = ws_stat_same_mount(w, next, &st);
    if (same < 0) {
      err = errno;
      close(next);
      errno = err;
      return -1;
    }
    if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode) || !same) {
      close(next);
      errno = S_ISLNK(st.st_mode) ? ELOOP : !S_ISDIR(st.st_mode) ? ENOTDIR : EXDEV;
      return -1;
    }
    if (*p != '\0' || (flags & O_PATH) != 0) {
      cur = next;
      continue;
    }
    cur = openat(next, ".", flags | O_DIRECTORY | O_CLOEXEC); /* the last one, for I/O */
    err = errno;
    close(next);
    if (cur < 0) errno = err;
    return cur;
  }
  return cur;
}

/* Splits a normalized path into its parent directory (into dir) and final name. */
static const char *ws_split(const char *norm, char *dir) {
  const char *slash = strrchr(norm, '/');
  if (slash == NULL) {
    strcpy(dir, ".");
    return norm;
  }
  memcpy(dir, norm, (size_t)(slash - norm));
  dir[slash - norm] = '\0';
  return slash + 1;
}

/* The length of the root's path as the kernel names it (its symlinks resolved), or SIZE_MAX
 * when it cannot be read (no /proc). Asked at a handle's first write, not at its open: a
 * card's directory is opened for each turn, and most turns of a reviewer write nothing. */
static size_t ws_root_len(int rootfd) {
  char proc[64], path[PATH_MAX];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", rootfd);
  ssize_t n = readlink(proc, path, sizeof path);
  return n > 0 && (size_t)n < sizeof path ? (size_t)n : SIZE_MAX;
}

/* What an operation does to a path: reads it, changes or removes what is there, or gives
 * it a file or a folder (a name git must be able to commit: ws_git_refuses). */
enum { WS_READS = 0, WS_CHANGES, WS_CREATES };

/* Normalizes path, optionally refuses protected paths, names git refuses (WS_CREATES) and
 * the root itself, and opens the parent directory. On success *leaf points into norm. */
static int ws_parent(ws *w, const char *op, const char *path, size_t len, int for_write,
                     int allow_root, char *norm, const char **leaf, int dirflags, ws_err *e) {
  if (w->rootfd < 0) return ws_fail(e, "EINVAL", "%s: workspace is closed", op);
  if (ws_normalize_op(op, path, len, norm, WS_PATH_MAX, e) != 0) return -1;
  if (for_write && ws_path_protected(norm))
    return ws_fail(e, "EPERM", "%s: protected path is read-only to agents: %s", op, norm);
  if (for_write == WS_CREATES && strcmp(norm, ".") != 0 && ws_git_refuses(op, norm, 0, w->portable_names, e) != 0)
    return -1;
  /* git opens a file by its whole path (the root's, then this one): longer than the system
   * allows, the write would succeed and the commit leave the file out */
  size_t nlen = strlen(norm);
  if (for_write && w->root_len == 0) w->root_len = ws_root_len(w->rootfd);
  if (for_write && w->root_len != SIZE_MAX && w->root_len + 1 + nlen >= PATH_MAX)
    return ws_fail(e, "EINVAL", "%s: path of %zu bytes is too long to commit here (at most %zu: the workspace's "
                   "own path takes %zu of the %d bytes a whole path may have): %.200s...",
                   op, nlen, (size_t)PATH_MAX - 2 - w->root_len, w->root_len, PATH_MAX - 1, norm);
  if (!allow_root && strcmp(norm, ".") == 0)
    return ws_fail(e, "EPERM", "%s: refusing to act on the workspace root itself", op);
  char dir[WS_PATH_MAX];
  *leaf = ws_split(norm, dir);
  int fd = ws_opendir(w, dir, dirflags);
  if (fd < 0) return ws_errno(e, errno, op, norm);
  return fd;
}

static ws_type ws_type_of(mode_t m) {
  return S_ISREG(m) ? WS_FILE : S_ISDIR(m) ? WS_DIR : S_ISLNK(m) ? WS_SYMLINK : WS_OTHER;
}

static void ws_fill(ws_stat *st, const struct stat *s) {
  st->type = ws_type_of(s->st_mode);
  st->size = (uint64_t)s->st_size;
  st->mtime = (int64_t)s->st_mtime;
  st->mode = (unsigned)(s->st_mode & 07777);
  st->nlink = (uint64_t)s->st_nlink;
}

static int ws_refuse_type(ws_err *e, const char *op, const char *norm, mode_t m) {
  if (S_ISDIR(m)) return ws_fail(e, "EISDIR", "%s: is a directory: %s", op, norm);
  if (S_ISLNK(m)) return ws_fail(e, "EPERM", "%s: path goes through a symlink: %s", op, norm);
  return ws_fail(e, "EPERM", "%s: not a regular file (FIFO, device or socket): %s", op, norm);
}

/* Refuses (-1, e filled) the new name leaf in the folder dfd when a name already there differs
 * from it only in letter case or in NFC/NFD composition (ws_name_twin): macOS and Windows keep
 * one file for both. skip: a name not to compare with (a move's source in the same folder,
 * which a case-only rename leaves no twin of), or NULL. norm: the path, for the message.
 * Bounded: one read of this one folder, asked only for a name that is not there yet (a write
 * to a file that exists, and the folders above, read nothing): it costs what listing the
 * folder the agent writes into costs, once per file or folder a turn makes. */
static int ws_twin_refuses(int dfd, const char *leaf, const char *skip, const char *op, const char *norm, ws_err *e) {
  /* Windows does not normalize, so a twin by composition is one file on macOS only */
  static const char *const how[] = {"", "letter case", "how accented letters are composed (NFC or NFD)",
                                    "letter case and in how accented letters are composed (NFC or NFD)"};
  size_t ln = strlen(leaf);
  int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    int err = errno;
    if (fd >= 0) close(fd);
    return ws_errno(e, err, op, norm);
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    if (skip && strcmp(de->d_name, skip) == 0) continue;
    int kind = ws_name_twin(leaf, ln, de->d_name, n);
    if (kind == 0) continue;
    char a[4 * WS_SHOWN_MAX + 4], b[4 * WS_SHOWN_MAX + 4], in[4 * WS_SHOWN_MAX + 4];
    const char *slash = strrchr(norm, '/');
    ws_fail(e, "EINVAL", "%s: '%s' differs from '%s', already in %s%s, only in %s: a %s clone has one file for "
            "both, and one would overwrite the other; use the name that is there or another (%s)",
            op, ws_shown_as(leaf, ln, a, 1), ws_shown_as(de->d_name, n, b, 1),
            slash ? "the folder " : "the top folder", slash ? ws_shown(norm, (size_t)(slash - norm), in) : "",
            how[kind], kind == WS_TWIN_CASE ? "macOS or Windows" : "macOS", WS_PORTABLE_OFF);
    closedir(d);
    return -1;
  }
  closedir(d);
  return 0;
}

/* ---- operations ------------------------------------------------------------------------- */

void ws_changes_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* Notes norm as changed (before the change is tried: a failed one may have changed it). */
static void ws_note(ws *w, const char *norm) {
  if (w->changed_over) return;
  for (size_t i = 0; i < w->nchanged; i++)
    if (strcmp(w->changed[i], norm) == 0) return;
  char **v = w->nchanged < WS_CHANGES_MAX ? realloc(w->changed, (w->nchanged + 1) * sizeof *v) : NULL;
  char *c = v ? strdup(norm) : NULL;
  if (v) w->changed = v;
  if (c == NULL) { /* too many, or no memory: from now on, anything */
    ws_changes_free(w->changed, w->nchanged);
    w->changed = NULL;
    w->nchanged = 0;
    w->changed_over = 1;
    return;
  }
  w->changed[w->nchanged++] = c;
}

int ws_take_changes(ws *w, char ***out, size_t *n) {
  int over = w->changed_over;
  *out = over ? NULL : w->changed;
  *n = over ? 0 : w->nchanged;
  if (over) ws_changes_free(w->changed, w->nchanged);
  w->changed = NULL;
  w->nchanged = 0;
  w->changed_over = 0;
  return over;
}

int ws_open(ws *w, const char *root, ws_resolve_mode mode, ws_err *e) {
  w->rootfd = -1;
  w->changed = NULL;
  w->nchanged = 0;
  w->changed_over = 0;
  w->root_len = 0;
  w->portable_names = 1;
  int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ws_fail(e, errno == ENOENT ? "ENOENT" : "EINVAL", "cannot open root %s: %s", root, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return ws_fail(e, "EIO", "cannot stat root %s: %s", root, strerror(errno));
  }
  if (mode == WS_RESOLVE_AUTO || mode == WS_RESOLVE_OPENAT2) {
    long probe = ws_openat2(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC, WS_RESOLVE);
    if (probe >= 0) {
      close((int)probe);
      mode = WS_RESOLVE_OPENAT2;
    } else if (mode == WS_RESOLVE_OPENAT2) {
      close(fd);
      return ws_fail(e, "ENOSYS", "openat2 is not available on this kernel: %s", strerror(errno));
    } else {
      mode = WS_RESOLVE_WALK;
    }
  }
  /* The best mount-id source that answers for the root is the one every later check uses. */
  if (ws_mount_best(fd, &w->mnt_src, &w->mnt_id) != 0) {
    int err = errno;
    close(fd);
    return ws_fail(e, "EIO", "cannot read the root's mount id: %s: %s", strerror(err), root);
  }
  w->rootfd = fd;
  w->dev = st.st_dev;
  w->mode = mode;
  return 0;
}

int ws_use_mount_source(ws *w, ws_mnt_source src, ws_err *e) {
  if (w->rootfd < 0) return ws_fail(e, "EINVAL", "workspace is closed");
  uint64_t id;
  if (ws_mount_id(w->rootfd, src, &id) != 0)
    return ws_fail(e, "ENOSYS", "mount ids from %s are not available here: %s",
                   src == WS_MNT_STATX ? "statx" : src == WS_MNT_FDINFO ? "/proc/self/fdinfo" : "st_dev",
                   strerror(errno));
  w->mnt_src = src;
  w->mnt_id = id;
  return 0;
}

void ws_close(ws *w) {
  if (w->rootfd >= 0) close(w->rootfd);
  w->rootfd = -1;
  ws_changes_free(w->changed, w->nchanged);
  w->changed = NULL;
  w->nchanged = 0;
}

int ws_read(ws *w, const char *path, size_t len, uint64_t offset, size_t maxlen, char **out,
            size_t *outlen, uint64_t *size, ws_err *e) {
  char norm[WS_PATH_MAX];
  const char *leaf;
  *out = NULL;
  *outlen = 0;
  int dfd = ws_parent(w, "read", path, len, WS_READS, 0, norm, &leaf, O_PATH, e);
  if (dfd < 0) return -1;
  struct stat st;
  if (ws_leaf_stat(w, dfd, leaf, &st) != 0) {
    close(dfd);
    return ws_errno(e, errno, "read", norm);
  }
  if (!S_ISREG(st.st_mode)) {
    close(dfd);
    return ws_refuse_type(e, "read", norm, st.st_mode);
  }
  /* O_NONBLOCK: should the file have been swapped for a FIFO since the stat, open returns
   * at once instead of waiting for a writer; the fstat below then refuses it. */
  int fd = ws_openleaf(w, dfd, leaf, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
  int err = errno;
  close(dfd);
  if (fd < 0) return ws_errno(e, err, "read", norm);
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ws_refuse_type(e, "read", norm, st.st_mode);
  }
  *size = (uint64_t)st.st_size;
  if (maxlen > WS_READ_HARD_MAX) maxlen = WS_READ_HARD_MAX;
  uint64_t avail = offset < (uint64_t)st.st_size ? (uint64_t)st.st_size - offset : 0;
  size_t want = avail < maxlen ? (size_t)avail : maxlen;
  char *buf = malloc(want + 1);
  if (buf == NULL) {
    close(fd);
    return ws_fail(e, "ENOMEM", "read: out of memory for %zu bytes: %s", want, norm);
  }
  size_t got = 0;
  while (got < want) {
    ssize_t r = pread(fd, buf + got, want - got, (off_t)(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      err = errno;
      free(buf);
      close(fd);
      return ws_errno(e, err, "read", norm);
    }
    if (r == 0) break; /* the file shrank meanwhile */
    got += (size_t)r;
  }
  close(fd);
  buf[got] = '\0';
  *out = buf;
  *outlen = got;
  return 0;
}

static int ws_write_all(int fd, const char *data, size_t n) {
  while (n > 0) {
    ssize_t r = write(fd, data, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    data += r;
    n -= (size_t)r;
  }
  return 0;
}

/* The existing target of a write must be a regular file with one link (a hard link to a
 * file outside would otherwise carry the write out of the workspace). ENOENT is fine. */
static int ws_check_target(const ws *w, int dfd, const char *leaf, const char *op,
                           const char *norm, mode_t *mode, ws_err *e) {
  struct stat st;
  *mode = 0644;
  if (ws_leaf_stat(w, dfd, leaf, &st) != 0) {
    if (errno == ENOENT) return w->portable_names ? ws_twin_refuses(dfd, leaf, NULL, op, norm, e) : 0;
    return ws_errno(e, errno, op, norm);
  }
  if (!S_ISREG(st.st_mode)) return ws_refuse_type(e, op, norm, st.st_mode);
  if (st.st_nlink > 1)
    return ws_fail(e, "EPERM", "%s: file has %lu hard links; refusing to write through a hard link: %s", op, (unsigned long)st.st_nlink, norm);
  *mode = st.st_mode & 0777;
  return 0;
}

/* A path ending in "/" or "/." has a directory's form: normalized to "dir", a write would
 * make a file of what was asked for as a directory. Refused before any lookup, so that the
 * reason is this one whether or not the directory exists; a path the lexical checks refuse
 * gets their reason. */
static int ws_refuse_dir_form(const char *op, const char *path, size_t len, ws_err *e) {
  char norm[WS_PATH_MAX];
  if (ws_normalize_op(op, path, len, norm, sizeof norm, e) != 0) return -1;
  if (len >= 2 && (path[len - 1] == '/' || (path[len - 1] == '.' && path[len - 2] == '/')))
    return ws_fail(e, "EINVAL", "%s: a file's path cannot end in '/' or '/.' (that names a directory): %.*s",
                   op, (int)len, path);
  return 0;
}

int ws_write(ws *w, const char *path, size_t len, const char *data, size_t datalen, ws_err *e) {
  char norm[WS_PATH_MAX];
  const char *leaf;
  if (ws_refuse_dir_form("write", path, len, e) != 0) return -1;
  int dfd = ws_parent(w, "write", path, len, WS_CREATES, 0, norm, &leaf, O_RDONLY, e);
  if (dfd < 0) return -1;
  mode_t mode;
  if (ws_check_target(w, dfd, leaf, "write", norm, &mode, e) != 0) {
    close(dfd);
    return -1;
  }
  ws_note(w, norm);
  char tmp[WS_NAME_MAX + 64];
  int err = 0;
  /* The new content is written to an unnamed file (O_TMPFILE), named only once it is whole
   * and synced, for the instant of the rename: a process killed while it writes leaves
   * nothing behind. (A named temporary file stayed in the workspace after a kill -9, where
   * list_directory showed it to every agent.) Without O_TMPFILE (an old kernel, a file
   * system without it) or /proc to link it by, a named temporary file does the same job. */
  int named = 0; /* tmp names a file that holds the whole content */
  int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
  if (fd >= 0) {
    if (ws_write_all(fd, data, datalen) != 0 || fsync(fd) != 0) err = errno;
    if (err == 0) {
      char proc[64];
      snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
      for (int attempt = 0; attempt < 100 && !named; attempt++) {
        snprintf(tmp, sizeof tmp, ".orket-tmp-%ld-%d-%.32s", (long)getpid(), attempt, leaf);
        if (linkat(AT_FDCWD, proc, dfd, tmp, AT_SYMLINK_FOLLOW) == 0) named = 1;
        else if (errno != EEXIST) break;
      }
    }
    close(fd);
    if (err != 0) {
      close(dfd);
      return ws_errno(e, err, "write", norm);
    }
  }
  if (!named) {
    fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
      snprintf(tmp, sizeof tmp, ".orket-tmp-%ld-%d-%.32s", (long)getpid(), rand() % 1000000, leaf);
      fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
      if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
      err = errno;
      close(dfd);
      return ws_errno(e, err, "write", norm);
    }
    if (ws_write_all(fd, data, datalen) != 0 || fsync(fd) != 0) err = errno;
    if (close(fd) != 0 && err == 0) err = errno;
  }
  if (err == 0 && renameat(dfd, tmp, dfd, leaf) != 0) err = errno;
  if (err != 0) {
    unlinkat(dfd, tmp, 0);
    close(dfd);
    return ws_errno(e, err, "write", norm);
  }
  fsync(dfd); /* the rename itself is durable once the directory is */
  close(dfd);
  return 0;
}

int ws_append(ws *w, const char *path, size_t len, const char *data, size_t datalen, ws_err *e) {
  char norm[WS_PATH_MAX];
  const char *leaf;
  if (ws_refuse_dir_form("append", path, len, e) != 0) return -1;
  int dfd = ws_parent(w, "append", path, len, WS_CREATES, 0, norm, &leaf, O_PATH, e);
  if (dfd < 0) return -1;
  mode_t mode;
  if (ws_check_target(w, dfd, leaf, "append", norm, &mode, e) != 0) {
    close(dfd);
    return -1;
  }
  ws_note(w, norm);
  int fd = ws_openleaf(w, dfd, leaf, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_NOCTTY, 0644);
  int err = errno;
  close(dfd);
  if (fd < 0) return ws_errno(e, err, "append", norm);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink > 1) {
    close(fd);
    return ws_fail(e, "EPERM", "append: target changed to a non-regular or multiply linked file: %s", norm);
  }
  err = ws_write_all(fd, data, datalen) != 0 ? errno : 0;
  close(fd);
  return err ? ws_errno(e, err, "append", norm) : 0;
}

int ws_stat_path(ws *w, const char *path, size_t len, ws_stat *st, ws_err *e) {
  char norm[WS_PATH_MAX];
  const char *leaf;
  int dfd = ws_parent(w, "stat", path, len, WS_READS, 1, norm, &leaf, O_PATH, e);
  if (dfd < 0) return -1;
  struct stat s;
  int r = strcmp(norm, ".") == 0 ? fstat(dfd, &s) : ws_leaf_stat(w, dfd, leaf, &s);
  int err = errno;
  close(dfd);
  if (r != 0) return ws_errno(e, err, "stat", norm);
  ws_fill(st, &s);
  return 0;
}

static int ws_entry_cmp(const void *a, const void *b) {
  return strcmp(((const ws_entry *)a)->name, ((const ws_entry *)b)->name);
}

/* A max-heap of entries by name (ws_list's first names): i's parent is (i - 1) / 2. */
static void ws_entry_swap(ws_entry *v, size_t a, size_t b) {
  ws_entry t = v[a];
  v[a] = v[b];
  v[b] = t;
}

static void ws_heap_up(ws_entry *v, size_t i) {
  while (i > 0 && strcmp(v[(i - 1) / 2].name, v[i].name) < 0) {
    ws_entry_swap(v, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

static void ws_heap_down(ws_entry *v, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, top = i;
    if (l < n && strcmp(v[l].name, v[top].name) > 0) top = l;
    if (r < n && strcmp(v[r].name, v[top].name) > 0) top = r;
    if (top == i) return;
    ws_entry_swap(v, i, top);
    i = top;
  }
}

int ws_list(ws *w, const char *path, size_t len, ws_entry **out, size_t *n, int *truncated,
            ws_err *e) {
  char norm[WS_PATH_MAX];
  *out = NULL;
  *n = 0;
  *truncated = 0;
  if (w->rootfd < 0) return ws_fail(e, "EINVAL", "list: workspace is closed");
  if (ws_normalize_op("list", path, len, norm, sizeof norm, e) != 0) return -1;
  int fd = ws_opendir(w, norm, O_RDONLY);
  if (fd < 0) return ws_errno(e, errno, "list", norm);
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int err = errno;
    close(fd);
    return ws_errno(e, err, "list", norm);
  }
  /* the first WS_LIST_MAX names in order, whatever order readdir gives them in: a max-heap
   * of the smallest seen so far, each later name replacing its top when smaller (a list in
   * readdir's order, cut and then sorted, was a sample with no way to the rest) */
  size_t cap = 64, count = 0;
  ws_entry *v = malloc(cap * sizeof *v);
  struct dirent *de;
  while (v != NULL && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (count == WS_LIST_MAX) {
      *truncated = 1;
      if (strcmp(de->d_name, v[0].name) >= 0) continue;
      snprintf(v[0].name, sizeof v[0].name, "%s", de->d_name);
      ws_heap_down(v, count, 0);
      continue;
    }
    if (count == cap) {
      ws_entry *nv = realloc(v, cap * 2 * sizeof *v);
      if (nv == NULL) {
        free(v);
        v = NULL;
        break;
      }
      v = nv;
      cap *= 2;
    }
    snprintf(v[count].name, sizeof v[count].name, "%s", de->d_name);
    memset(&v[count].st, 0, sizeof v[count].st); /* filled once the names are known */
    ws_heap_up(v, count++);
  }
  if (v == NULL) {
    closedir(d);
    return ws_fail(e, "ENOMEM", "list: out of memory: %s", norm);
  }
  /* then the kept names' stats, those removed meanwhile left out */
  size_t kept = 0;
  for (size_t i = 0; i < count; i++) {
    struct stat s;
    if (ws_leaf_stat(w, dirfd(d), v[i].name, &s) != 0) {
      if (errno != EXDEV) {
        if (errno == ENOENT) continue; /* raced: removed since readdir */
        int err = errno;
        closedir(d);
        free(v);
        return ws_errno(e, err, "list", norm);
      }
      /* a mount point: list the name, but nothing from beyond it (type "other") */
      memset(&s, 0, sizeof s);
    }
    if (kept != i) v[kept] = v[i];
    ws_fill(&v[kept].st, &s);
    kept++;
  }
  closedir(d);
  qsort(v, kept, sizeof *v, ws_entry_cmp);
  *out = v;
  *n = kept;
  return 0;
}

int ws_mkdir(ws *w, const char *path, size_t len, ws_err *e) {
  char norm[WS_PATH_MAX];
  if (w->rootfd < 0) return ws_fail(e, "EINVAL", "mkdir: workspace is closed");
  if (ws_normalize_op("mkdir", path, len, norm, sizeof norm, e) != 0) return -1;
  if (ws_path_protected(norm))
    return ws_fail(e, "EPERM", "mkdir: protected path is read-only to agents: %s", norm);
  if (strcmp(norm, ".") == 0) return 0;
  if (ws_git_refuses("mkdir", norm, 1, w->portable_names, e) != 0) return -1; /* before any folder is made */
  /* Create each missing prefix in turn; each is resolved beneath the root afresh. */
  char prefix[WS_PATH_MAX];
  for (size_t i = 0;; i++) {
    if (norm[i] != '/' && norm[i] != '\0') continue;
    memcpy(prefix, norm, i);
    prefix[i] = '\0';
    char dir[WS_PATH_MAX];
    const char *leaf = ws_split(prefix, dir);
    int dfd = ws_opendir(w, dir, O_PATH);
    if (dfd < 0) return ws_errno(e, errno, "mkdir", norm);
    struct stat st;
    if (w->portable_names && fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT &&
        ws_twin_refuses(dfd, leaf, NULL, "mkdir", norm, e) != 0) {
      close(dfd);
      return -1;
    }
    int r = mkdirat(dfd, leaf, 0755);
    int err = errno;
    if (r != 0 && err == EEXIST) {
      /* fine if it is a real directory; a symlink or file in the way is refused */
      if (ws_leaf_stat(w, dfd, leaf, &st) != 0) {
        err = errno; /* EXDEV: something is mounted there */
      } else if (!S_ISDIR(st.st_mode)) {
        close(dfd);
        return S_ISLNK(st.st_mode) ? ws_errno(e, ELOOP, "mkdir", prefix) : ws_errno(e, ENOTDIR, "mkdir", prefix);
      } else {
        r = 0;
      }
    }
    close(dfd);
    if (r != 0) return ws_errno(e, err, "mkdir", prefix);
    if (norm[i] == '\0') break;
  }
  return 0;
}

int ws_delete(ws *w, const char *path, size_t len, ws_err *e) {
  char norm[WS_PATH_MAX];
  const char *leaf;
  int dfd = ws_parent(w, "delete", path, len, WS_CHANGES, 0, norm, &leaf, O_PATH, e);
  if (dfd < 0) return -1;
  struct stat st;
  int r = ws_leaf_stat(w, dfd, leaf, &st);
  if (r == 0) ws_note(w, norm);
  if (r == 0) r = unlinkat(dfd, leaf, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
  int err = errno;
  close(dfd);
  return r == 0 ? 0 : ws_errno(e, err, "delete", norm);
}

/* How many levels of folders the directory fd holds below it (0: none), counted no further
 * than limit + 1; closes fd. Recursive, a descriptor a level: bounded by limit, at most
 * WS_GIT_DIRS_MAX. Links are not followed; a mount point is not entered. */
static size_t ws_dirs_below(const ws *w, int fd, size_t limit) {
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return 0;
  }
  size_t most = 0;
  struct dirent *de;
  while (most <= limit && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) continue;
    int sub = ws_openleaf(w, dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY, 0);
    if (sub < 0) continue;
    size_t below = 1;
    if (limit > 0) below += ws_dirs_below(w, sub, limit - 1);
    else close(sub);
    if (below > most) most = below;
  }
  closedir(d);
  return most;
}

/* 1 (e filled) when moving the directory nfrom (lfrom in dfd) to nto, deeper, would put a
 * folder in it past WS_GIT_DIRS_MAX levels (ws_git_refuses). */
static int ws_move_too_deep(const ws *w, int dfd, const char *lfrom, const char *nfrom, const char *nto, ws_err *e) {
  size_t from_dirs = 1, to_dirs = 1;
  for (const char *c = nfrom; (c = strchr(c, '/')) != NULL; c++) from_dirs++;
  for (const char *c = nto; (c = strchr(c, '/')) != NULL; c++) to_dirs++;
  if (to_dirs <= from_dirs) return 0; /* no deeper than it is */
  size_t below = 0;
  if (to_dirs <= WS_GIT_DIRS_MAX) {
    int fd = ws_openleaf(w, dfd, lfrom, O_RDONLY | O_DIRECTORY, 0);
    if (fd >= 0) below = ws_dirs_below(w, fd, WS_GIT_DIRS_MAX - to_dirs);
  }
  if (to_dirs + below <= WS_GIT_DIRS_MAX) return 0;
  char a[4 * WS_SHOWN_MAX + 4], b[4 * WS_SHOWN_MAX + 4];
  ws_fail(e, "EINVAL", "move: %s would hold %zu levels of folders at %s, and git commits at most %d (deeper, no "
          "commit of the card succeeds); move it less deep", ws_shown(nfrom, strlen(nfrom), a), to_dirs + below,
          ws_shown(nto, strlen(nto), b), WS_GIT_DIRS_MAX);
  return 1;
}

/* ws_twin_refuses for a move's target lto in tfd (nto) when nothing is there yet: the source
 * (lfrom in ffd) left out when both are in one folder, so a case-only rename is allowed. */
static int ws_move_twin(int ffd, const char *lfrom, int tfd, const char *lto, const char *nto, ws_err *e) {
  struct stat fs, ts;
  if (fstatat(tfd, lto, &ts, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) return 0; /* renameat2 says why */
  int same = fstat(ffd, &fs) == 0 && fstat(tfd, &ts) == 0 && fs.st_dev == ts.st_dev && fs.st_ino == ts.st_ino;
  return ws_twin_refuses(tfd, lto, same ? lfrom : NULL, "move", nto, e);
}

int ws_move(ws *w, const char *from, size_t flen, const char *to, size_t tlen, ws_err *e) {
  char nfrom[WS_PATH_MAX], nto[WS_PATH_MAX];
  const char *lfrom, *lto;
  /* the kernel's EINVAL for this says neither what is wrong nor the target; asked before the
   * destination's folder is looked for, so that a caller that makes the folder only when the
   * move needs it (move_file) makes none for a move that cannot be */
  if (ws_normalize_op("move", from, flen, nfrom, WS_PATH_MAX, e) != 0) return -1;
  if (ws_normalize_op("move", to, tlen, nto, WS_PATH_MAX, e) != 0) return -1;
  size_t fl = strlen(nfrom);
  if (strncmp(nto, nfrom, fl) == 0 && nto[fl] == '/')
    return ws_fail(e, "EINVAL", "move: cannot move a directory into itself: %s -> %s", nfrom, nto);
  int ffd = ws_parent(w, "move", from, flen, WS_CHANGES, 0, nfrom, &lfrom, O_PATH, e);
  if (ffd < 0) return -1;
  int tfd = ws_parent(w, "move", to, tlen, WS_CREATES, 0, nto, &lto, O_PATH, e);
  if (tfd < 0) {
    close(ffd);
    return -1;
  }
  struct stat st;
  int r = ws_leaf_stat(w, ffd, lfrom, &st);
  if (r == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1) {
    close(ffd);
    close(tfd);
    return ws_fail(e, "EPERM", "move: file has %lu hard links: %s", (unsigned long)st.st_nlink, nfrom);
  }
  if ((r == 0 && S_ISDIR(st.st_mode) && ws_move_too_deep(w, ffd, lfrom, nfrom, nto, e)) ||
      (r == 0 && w->portable_names && ws_move_twin(ffd, lfrom, tfd, lto, nto, e) != 0)) {
    close(ffd);
    close(tfd);
    return -1;
  }
  /* a mount point as the target exists, so RENAME_NOREPLACE refuses it (EEXIST) anyway */
  if (r == 0) {
    ws_note(w, nfrom);
    ws_note(w, nto);
    r = (int)syscall(SYS_renameat2, ffd, lfrom, tfd, lto, RENAME_NOREPLACE);
  }
  int err = errno;
  close(ffd);
  close(tfd);
  if (r == 0) return 0;
  if (err == EINVAL) /* another way into itself (a case-insensitive file system): name both */
    return ws_fail(e, "EINVAL", "move: the system refused to move %s to %s (invalid argument)", nfrom, nto);
  return ws_errno(e, err, "move", err == EEXIST ? nto : nfrom);
}
