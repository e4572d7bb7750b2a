/* pack.c: the object database's housekeeping (gitrepo.h, "packing"). libgit2 writes each
 * object as a loose file and has no gc: 5,000 cards left 29,000 loose objects, 615 MB where
 * their pack took 3 MB. gitrepo_pack writes loose objects (and, to consolidate, older packs'
 * objects) into one new pack, then removes only what the new pack's own index holds.
 *
 * Why it is safe beside other processes (workers, serve, a person's git) using the repository:
 * - nothing is removed before the new pack and its index are durable (gr_sync);
 * - a loose file or an older pack goes only once the new pack's index (read on its own, not
 *   the odb, which still finds the loose copy) holds each of its objects; a crash in between
 *   leaves copies, never a missing object;
 * - a reader whose pack list predates the new pack misses the object and looks again:
 *   libgit2 1.5's git_odb_read/exists/read_header refresh the backends on GIT_ENOTFOUND
 *   (odb.c), the pack backend's refresh lists objects/pack again (odb_pack.c), and a pack
 *   deleted under a reader that had not opened it yet is "not found" (pack.c,
 *   git_pack_entry_find) so the next pack is tried; one it had open it keeps reading;
 * - a writer adding a loose object meanwhile: it was not listed, so it is never removed;
 * - directories objects/?? are never removed: a writer may have just made one;
 * - two packers at once: each removes only packs it listed before writing its own, and
 *   never the pack it wrote (the same objects in the same order give the same name), so
 *   neither removes the other's new pack. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The most packs one consolidation lists (more are left for the next) */
#define GR_PACKS_MAX 4096

/* 1 when s is n lower-case hex digits (git's names of objects and packs) */
static int gr_hexname(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return s[n] == '\0';
}

/* objects/ of the repository's common gitdir (a card's worktree shares it) */
static int gr_objects_dir(const gitrepo *r, char *buf, size_t cap, gr_err *e) {
  if ((size_t)snprintf(buf, cap, "%sobjects", r->git.repository_commondir(r->repo)) >= cap)
    return gr_fail(e, "EINVAL", "the repository's path is too long");
  return 0;
}

/* The loose objects of one fan-out directory dir (objects/XX): counted into *n, and their
 * ids appended to ids (when not NULL) while fewer than max. Missing: none. */
typedef struct gr_ids {
  git_oid *v;
  size_t n, cap, max;
} gr_ids;

static int gr_ids_add(gr_ids *ids, const git_oid *id) {
  if (ids->n >= ids->max) return 1; /* full: the rest waits for the next pass */
  if (ids->n == ids->cap) {
    size_t cap = ids->cap ? ids->cap * 2 : 1024;
    git_oid *v = realloc(ids->v, cap * sizeof *v);
    if (v == NULL) return -1;
    ids->v = v;
    ids->cap = cap;
  }
  ids->v[ids->n++] = *id;
  return 0;
}

static int gr_loose_dir(const gitapi *g, const char *objects, unsigned fan, size_t *n, gr_ids *ids, gr_err *e) {
  char dir[PATH_MAX], hex[GR_OID_HEX + 1];
  if ((size_t)snprintf(dir, sizeof dir, "%s/%02x", objects, fan) >= sizeof dir)
    return gr_fail(e, "EINVAL", "the repository's path is too long");
  DIR *d = opendir(dir);
  if (d == NULL) {
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    return gr_fail(e, "EIO", "cannot list %s: %s", dir, strerror(errno));
  }
  struct dirent *de;
  int rc = 0;
  while (rc == 0 && (de = readdir(d)) != NULL) {
    /* 38 hex digits: an object; anything else (libgit2's or git's temporary files) is not */
    if (!gr_hexname(de->d_name, GR_OID_HEX - 2)) continue;
    (*n)++;
    if (ids == NULL) continue;
    git_oid id;
    snprintf(hex, sizeof hex, "%02x", fan);
    memcpy(hex + 2, de->d_name, GR_OID_HEX - 2 + 1); /* 38 digits and the NUL, as checked */
    if (g->oid_fromstr(&id, hex) < 0) continue;
    int added = gr_ids_add(ids, &id);
    if (added < 0) rc = gr_fail(e, "ENOMEM", "out of memory listing %s", dir);
    if (added > 0) break;
  }
  closedir(d);
  return rc;
}

/* The packs of objects/pack that may be rewritten: pack-<40 hex>.idx whose .pack is there,
 * without a .keep (git's mark of a pack to leave) or a .promisor (a partial clone's). names
 * gets each one's 40 hex digits (GR_OID_HEX + 1 each), sizes its .pack's size; at most max. */
typedef struct gr_packlist {
  char (*name)[GR_OID_HEX + 1];
  off_t *size;
  size_t n;
} gr_packlist;

static void gr_packlist_free(gr_packlist *l) {
  free(l->name);
  free(l->size);
  memset(l, 0, sizeof *l);
}

static int gr_pack_file(const char *objects, const char *name, const char *ext, char *buf, size_t cap) {
  return (size_t)snprintf(buf, cap, "%s/pack/pack-%s%s", objects, name, ext) < cap ? 0 : -1;
}

static int gr_packs_list(const char *objects, gr_packlist *l, size_t max, gr_err *e) {
  char dir[PATH_MAX], p[PATH_MAX];
  memset(l, 0, sizeof *l);
  if ((size_t)snprintf(dir, sizeof dir, "%s/pack", objects) >= sizeof dir)
    return gr_fail(e, "EINVAL", "the repository's path is too long");
  DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : gr_fail(e, "EIO", "cannot list %s: %s", dir, strerror(errno));
  size_t cap = 0;
  struct dirent *de;
  int rc = 0;
  while (rc == 0 && l->n < max && (de = readdir(d)) != NULL) {
    const char *s = de->d_name;
    if (strncmp(s, "pack-", 5) != 0 || strlen(s) != 5 + GR_OID_HEX + 4 || strcmp(s + 5 + GR_OID_HEX, ".idx") != 0)
      continue;
    char name[GR_OID_HEX + 1];
    memcpy(name, s + 5, GR_OID_HEX);
    name[GR_OID_HEX] = '\0';
    if (!gr_hexname(name, GR_OID_HEX)) continue;
    struct stat st, other;
    if (gr_pack_file(objects, name, ".pack", p, sizeof p) != 0 || stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (gr_pack_file(objects, name, ".keep", p, sizeof p) != 0 || stat(p, &other) == 0) continue;
    if (gr_pack_file(objects, name, ".promisor", p, sizeof p) != 0 || stat(p, &other) == 0) continue;
    if (l->n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      void *nn = realloc(l->name, ncap * sizeof *l->name);
      if (nn) l->name = nn;
      void *ns = nn ? realloc(l->size, ncap * sizeof *l->size) : NULL;
      if (ns) l->size = ns;
      if (nn == NULL || ns == NULL) {
        rc = gr_fail(e, "ENOMEM", "out of memory listing %s", dir);
        break;
      }
      cap = ncap;
    }
    memcpy(l->name[l->n], name, sizeof name);
    l->size[l->n++] = st.st_size;
  }
  closedir(d);
  if (rc != 0) gr_packlist_free(l);
  return rc;
}

int gitrepo_pack_count(gitrepo *r, gr_pack_count *c, gr_err *e) {
  char objects[PATH_MAX];
  size_t n = 0;
  gr_packlist l;
  memset(c, 0, sizeof *c);
  if (gr_objects_dir(r, objects, sizeof objects, e) != 0 || gr_loose_dir(&r->git, objects, 0x17, &n, NULL, e) != 0 ||
      gr_packs_list(objects, &l, GR_PACKS_MAX, e) != 0)
    return -1;
  c->loose = n * 256;
  c->packs = l.n;
  gr_packlist_free(&l);
  return 0;
}

/* The deadline of one pack's writing (the indexer's progress, which may stop it) */
typedef struct gr_deadline {
  struct timespec end;
  int set;
  atomic_int passed;
} gr_deadline;

static int gr_deadline_passed(gr_deadline *d) {
  if (!d->set) return 0;
  if (atomic_load(&d->passed)) return 1;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (now.tv_sec > d->end.tv_sec || (now.tv_sec == d->end.tv_sec && now.tv_nsec >= d->end.tv_nsec)) {
    atomic_store(&d->passed, 1);
    return 1;
  }
  return 0;
}

static int gr_write_progress(const git_indexer_progress *stats, void *payload) {
  (void)stats;
  return gr_deadline_passed(payload) ? -1 : 0;
}

/* An older pack's objects, inserted into the packbuilder (foreach of its own backend) */
typedef struct gr_insert_ctx {
  const gitapi *g;
  git_packbuilder *pb;
  git_odb_backend *in; /* the new pack (the check before a removal), else NULL */
  size_t missing;      /* objects of the older pack the new one lacks */
  size_t unread;
} gr_insert_ctx;

static int gr_insert_cb(const git_oid *id, void *payload) {
  gr_insert_ctx *c = payload;
  if (c->in) {
    if (!c->in->exists(c->in, id)) c->missing++;
    return 0;
  }
  if (c->g->packbuilder_insert(c->pb, id, NULL) < 0) c->unread++;
  return 0;
}

/* Opens the pack objects/pack/pack-<name>.idx on its own (not through the odb) */
static int gr_one_pack(const gitapi *g, const char *objects, const char *name,
                       git_odb_backend **out, gr_err *e) {
  char idx[PATH_MAX];
  *out = NULL;
  if (gr_pack_file(objects, name, ".idx", idx, sizeof idx) != 0)
    return gr_fail(e, "EINVAL", "the repository's path is too long");
  int rc = g->odb_backend_one_pack(out, idx);
  if (rc < 0) return gr_git(g, e, rc, idx);
  return 0;
}

/* Removes an older pack: the .pack first, so a crash leaves at most an index without its
 * pack, which git and libgit2 pass over; then the index and what git may keep beside it */
static void gr_pack_remove(const char *objects, const char *name) {
  static const char *const exts[] = {".pack", ".idx", ".rev", ".bitmap"};
  char p[PATH_MAX];
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
    if (gr_pack_file(objects, name, exts[i], p, sizeof p) == 0) unlink(p);
}

/* an older pack by its size, for the smallest first */
typedef struct gr_by_size {
  off_t size;
  size_t i;
} gr_by_size;

static int gr_cmp_size(const void *a, const void *b) {
  off_t x = ((const gr_by_size *)a)->size, y = ((const gr_by_size *)b)->size;
  return (x > y) - (x < y);
}

int gitrepo_pack(gitrepo *r, int all, size_t max_objects, unsigned deadline_ms, gr_pack_result *out, gr_err *e) {
  const gitapi *g = &r->git;
  char objects[PATH_MAX], hex[GR_OID_HEX + 1], path[PATH_MAX];
  gr_ids loose = {.max = max_objects};
  gr_packlist old = {0};
  gr_by_size *order = NULL;
  size_t nold = 0;
  git_packbuilder *pb = NULL;
  git_odb_backend *in = NULL;
  gr_deadline dl = {.set = deadline_ms > 0};
  int rc = -1;
  memset(out, 0, sizeof *out);
  if (deadline_ms > 0) {
    clock_gettime(CLOCK_MONOTONIC, &dl.end);
    dl.end.tv_sec += deadline_ms / 1000;
    dl.end.tv_nsec += (long)(deadline_ms % 1000) * 1000000L;
    if (dl.end.tv_nsec >= 1000000000L) {
      dl.end.tv_sec++;
      dl.end.tv_nsec -= 1000000000L;
    }
  }
  if (max_objects == 0) return gr_fail(e, "EINVAL", "pack: max_objects must be at least 1");
  if (gr_objects_dir(r, objects, sizeof objects, e) != 0) return -1;

  /* what the pack will hold: listed before it is written (a pack is only ever removed when
   * listed here, so never one another packer wrote meanwhile) */
  for (unsigned fan = 0; fan < 256 && loose.n < loose.max; fan++) {
    size_t n = 0;
    if (gr_loose_dir(g, objects, fan, &n, &loose, e) != 0) goto out;
  }
  out->loose = loose.n;
  if (all) {
    if (gr_packs_list(objects, &old, GR_PACKS_MAX, e) != 0) goto out;
    if (old.n > 0 && (order = malloc(old.n * sizeof *order)) == NULL) {
      gr_fail(e, "ENOMEM", "out of memory");
      goto out;
    }
    for (size_t i = 0; i < old.n; i++) order[i] = (gr_by_size){old.size[i], i};
    qsort(order, old.n, sizeof *order, gr_cmp_size); /* the smallest packs first */
  }
  if (loose.n == 0 && old.n < 2) {
    rc = 0; /* nothing to gain */
    goto out;
  }

  int grc = g->packbuilder_new(&pb, r->repo);
  if (grc < 0) {
    gr_git(g, e, grc, "pack: new packbuilder");
    goto out;
  }
  g->packbuilder_set_threads(pb, 0); /* as many as the machine has cores */
  for (size_t i = 0; i < loose.n; i++) {
    /* one libgit2 cannot read (a damaged file) stays loose, as it was */
    if (g->packbuilder_insert(pb, &loose.v[i], NULL) < 0) out->unread++;
  }
  /* older packs, the smallest first, while the total stays within max_objects: each whole
   * (only a pack whose every object is in the new one is removed) */
  for (size_t k = 0; k < old.n; k++) {
    if (k > 0 && g->packbuilder_object_count(pb) >= max_objects) break; /* the rest wait for the next pass */
    git_odb_backend *b = NULL;
    if (gr_one_pack(g, objects, old.name[order[k].i], &b, e) != 0) goto out;
    gr_insert_ctx c = {.g = g, .pb = pb};
    grc = b->foreach(b, gr_insert_cb, &c);
    b->free(b);
    if (grc < 0) {
      gr_git(g, e, grc, "pack: reading an older pack");
      goto out;
    }
    out->unread += c.unread;
    nold = k + 1;
  }
  if (g->packbuilder_object_count(pb) == 0) {
    rc = 0;
    goto out;
  }

  /* the pack and its index written, then made durable before anything is removed */
  grc = g->packbuilder_write(pb, NULL, 0, gr_write_progress, &dl);
  if (grc < 0) {
    if (atomic_load(&dl.passed))
      gr_fail(e, "ETIMEDOUT", "pack: stopped at its time limit (%u ms) while writing %zu objects; nothing was removed",
              deadline_ms, g->packbuilder_object_count(pb));
    else
      gr_git(g, e, grc, "pack: writing the pack");
    goto out;
  }
  const char *name = g->packbuilder_name(pb);
  if (name == NULL || !gr_hexname(name, GR_OID_HEX)) {
    gr_fail(e, "EGIT", "pack: libgit2 named no pack");
    goto out;
  }
  snprintf(out->name, sizeof out->name, "%s", name);
  out->packed = g->packbuilder_object_count(pb);
  if (gr_sync(g, r->repo, e) != 0) goto out;

  /* the new pack's own index says what it holds */
  if (gr_one_pack(g, objects, out->name, &in, e) != 0) goto out;
  for (size_t i = 0; i < loose.n; i++) {
    if (!in->exists(in, &loose.v[i])) continue;
    g->oid_tostr(hex, sizeof hex, &loose.v[i]);
    if ((size_t)snprintf(path, sizeof path, "%s/%.2s/%s", objects, hex, hex + 2) >= sizeof path) continue;
    if (unlink(path) == 0) out->removed++;
  }
  for (size_t k = 0; k < nold; k++) {
    size_t i = order[k].i;
    if (strcmp(old.name[i], out->name) == 0) continue; /* the very pack just written */
    git_odb_backend *b = NULL;
    if (gr_one_pack(g, objects, old.name[i], &b, e) != 0) goto out;
    gr_insert_ctx c = {.g = g, .in = in};
    grc = b->foreach(b, gr_insert_cb, &c);
    b->free(b);
    if (grc < 0 || c.missing > 0) continue; /* kept: not every object of it is in the new pack */
    gr_pack_remove(objects, old.name[i]);
    out->packs_gone++;
  }
  rc = 0;
out:
  if (in) in->free(in);
  if (pb) g->packbuilder_free(pb);
  free(loose.v);
  free(order);
  gr_packlist_free(&old);
  return rc;
}
