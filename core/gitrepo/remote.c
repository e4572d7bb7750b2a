/* remote.c: a remote: push, fetch of its main or a branch, a bare repository on disk, ls-remote. See
 * gitrepo.h and docs/git.md. */
#define _GNU_SOURCE /* syncfs */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- push -------------------------------------------------------------------------------- */

/* What the push callbacks share: the credentials (offered once: libgit2 asks again after a
 * refusal, and asking forever would loop) and the remote's refusal of the ref, if any. */
typedef struct gr_push_state {
  const gitapi *g;
  const char *user, *password;
  int asked;
  char rejected[256];
  const char *ref; /* the ref pushed, and the commit it was sent as (pushed: 1) */
  git_oid sent;
  int pushed;
} gr_push_state;

/* What the push sends, as libgit2 read the local ref: the id to report as pushed. */
static int gr_push_negotiated(const git_push_update **updates, size_t len, void *payload) {
  gr_push_state *s = payload;
  for (size_t i = 0; i < len; i++) {
    if (updates[i]->dst_refname && strcmp(updates[i]->dst_refname, s->ref) == 0) {
      s->sent = updates[i]->dst;
      s->pushed = 1;
    }
  }
  return 0;
}

static int gr_push_cred(git_credential **out, const char *url, const char *user_from_url,
                        unsigned int allowed, void *payload) {
  (void)url;
  gr_push_state *s = payload;
  const gitapi *g = s->g;
  if (s->password == NULL || s->asked || !(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
    return GIT_PASSTHROUGH;
  s->asked = 1;
  const char *user = s->user ? s->user : user_from_url ? user_from_url : "orket";
  return g->credential_userpass_plaintext_new(out, user, s->password);
}

static int gr_push_ref(const char *refname, const char *status, void *payload) {
  gr_push_state *s = payload;
  if (status != NULL && s->rejected[0] == '\0')
    snprintf(s->rejected, sizeof s->rejected, "%.120s (%.120s)", refname, status);
  return 0;
}

/* 1 when url names a folder of this machine that is not there: a path, not a URL
 * ("scheme://...") nor git's scp form ("host:path", a ':' before any '/'). libgit2 takes a
 * missing folder for a URL of no protocol it knows, and said only "unsupported URL
 * protocol", naming neither the path nor what is wrong. */
static int gr_local_missing(const char *url) {
  if (strstr(url, "://") != NULL) return 0;
  const char *colon = strchr(url, ':'), *slash = strchr(url, '/');
  if (colon && (!slash || colon < slash)) return 0;
  struct stat st;
  return stat(url, &st) != 0 && errno == ENOENT;
}

/* url as a message may show it: without the user and password a URL may carry
 * (https://user:token@host/...), cut to fit out */
static void gr_url_shown(const char *url, char *out, size_t outlen) {
  const char *scheme = strstr(url, "://");
  const char *host = scheme ? scheme + 3 : url;
  const char *at = NULL;
  for (const char *p = host; scheme && *p && *p != '/' && *p != '?' && *p != '#'; p++)
    if (*p == '@') at = p;
  if (at)
    snprintf(out, outlen, "%.*s%s", (int)(host - url), url, at + 1);
  else
    snprintf(out, outlen, "%s", url);
}

/* An in-memory remote at url for one push or fetch: nothing is written to the repository's
 * config, and no url.*.insteadOf rewriting (the URL is orket.lua's, as given; libgit2 1.5's
 * rewriting also leaks its pattern matches). 0, or -1 with e set. */
static int gr_remote_at(gitrepo *r, const char *url, const char *doing, git_remote **remote, gr_err *e) {
  const gitapi *g = &r->git;
  git_remote_create_options ro;
  g->remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
  ro.repository = r->repo;
  ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
  if (gr_local_missing(url))
    return gr_fail(e, "EREMOTE", "%s: the remote %s is no folder here: a remote given as a path is a repository's "
                   "folder (git.remote), else give its URL", doing, url);
  int rc = g->remote_create_with_opts(remote, url, &ro);
  return rc < 0 ? gr_git(g, e, rc, "remote") : 0;
}

int gitrepo_push(gitrepo *r, const char *url, const char *branch, int force, const char *user,
                 const char *password, char *id_out, gr_err *e) {
  const gitapi *g = &r->git;
  char ref[GR_KEY_MAX + 16], spec[2 * (GR_KEY_MAX + 16) + 2];
  git_oid id;
  if (url == NULL || *url == '\0' || strpbrk(url, "\r\n"))
    return gr_fail(e, "EINVAL", "the remote must be a non-empty URL or path");
  if (gr_branch_ref(g, branch, ref, sizeof ref, e) != 0) return -1;
  if (gr_ref_id(g, r->repo, ref, &id, e) != 0) return -1;
  snprintf(spec, sizeof spec, "%s%s:%s", force ? "+" : "", ref, ref);
  git_remote *remote = NULL;
  int rc;
  char doing[GR_KEY_MAX + 16];
  snprintf(doing, sizeof doing, "pushing %s", branch);
  if (gr_remote_at(r, url, doing, &remote, e) != 0) return -1;
  gr_push_state st = {.g = g, .user = user, .password = password, .ref = ref};
  git_push_options po;
  g->push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
  po.callbacks.credentials = gr_push_cred;
  po.callbacks.push_update_reference = gr_push_ref;
  po.callbacks.push_negotiation = gr_push_negotiated;
  po.callbacks.payload = &st;
  char *specs[] = {spec};
  git_strarray refspecs = {specs, 1};
  rc = g->remote_push(remote, &refspecs, &po);
  g->remote_free(remote);
  if (rc < 0) {
    /* libgit2's message may quote the URL; the credentials are never in it (they are not
     * part of the URL Orket passes) */
    const git_error *le = g->error_last();
    const char *code = rc == GIT_EAUTH ? "EAUTH" : rc == GIT_ENONFASTFORWARD ? "EREJECTED" : "EREMOTE";
    /* libgit2's own words name no remote ("unexpected http status code: 404"): which one is said */
    char shown[512];
    gr_url_shown(url, shown, sizeof shown);
    return gr_fail(e, code, "pushing %s: %s (the remote %s: orket.lua's git.remote)", branch,
                   le && le->message ? le->message : "unknown libgit2 error", shown);
  }
  if (st.rejected[0]) return gr_fail(e, "EREJECTED", "the remote refused %s", st.rejected);
  /* nothing negotiated: the remote's branch already was the local one, read above */
  g->oid_tostr(id_out, GR_OID_HEX + 1, st.pushed ? &st.sent : &id);
  return 0;
}

/* Fetches the remote's src (refs/heads/...) into dst, as gitrepo_fetch_main and
 * gitrepo_fetch_branch say (what: how messages call it). */
static int gr_fetch_ref(gitrepo *r, const char *url, const char *src, const char *dst, const char *what,
                        const char *user, const char *password, char *id, gr_err *e) {
  const gitapi *g = &r->git;
  if (url == NULL || *url == '\0' || strpbrk(url, "\r\n"))
    return gr_fail(e, "EINVAL", "the remote must be a non-empty URL or path");
  git_remote *remote = NULL;
  int rc;
  char doing[GR_KEY_MAX + 16];
  snprintf(doing, sizeof doing, "fetching %s", what);
  if (gr_remote_at(r, url, doing, &remote, e) != 0) return -1;
  gr_push_state st = {.g = g, .user = user, .password = password};
  git_fetch_options fo;
  g->fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
  fo.callbacks.credentials = gr_push_cred;
  fo.callbacks.payload = &st;
  fo.prune = GIT_FETCH_NO_PRUNE;
  fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  fo.update_fetchhead = 0;
  char spec[2 * (GR_CARD_MAX + 128) + 4];
  snprintf(spec, sizeof spec, "+%s:%s", src, dst);
  char *specs[] = {spec};
  git_strarray refspecs = {specs, 1};
  /* the pack first, made durable, then the tracking ref, made durable (gr_sync) */
  gr_err serr;
  rc = g->remote_download(remote, &refspecs, &fo);
  if (rc == 0 && gr_sync(g, r->repo, &serr) != 0) {
    g->remote_free(remote);
    *e = serr;
    return -1;
  }
  if (rc == 0) rc = g->remote_update_tips(remote, &fo.callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, "orket: fetch");
  if (rc == 0 && gr_sync(g, r->repo, &serr) != 0) {
    g->remote_free(remote);
    *e = serr;
    return -1;
  }
  if (rc < 0) {
    const git_error *le = g->error_last();
    char shown[512];
    gr_url_shown(url, shown, sizeof shown);
    gr_fail(e, rc == GIT_EAUTH ? "EAUTH" : "EREMOTE", "fetching %s: %s (the remote %s: orket.lua's git.remote)", what,
            le && le->message ? le->message : "unknown libgit2 error", shown);
    g->remote_free(remote);
    return -1;
  }
  /* whether the remote has the branch at all: its advertised refs stay readable after the fetch */
  const git_remote_head **heads = NULL;
  size_t count = 0;
  int found = 0;
  if (g->remote_ls(&heads, &count, remote) == 0) {
    for (size_t i = 0; i < count; i++) {
      if (strcmp(heads[i]->name, src) == 0) {
        g->oid_tostr(id, GR_OID_HEX + 1, &heads[i]->oid);
        found = 1;
      }
    }
  }
  g->remote_free(remote);
  if (!found) {
    /* a tracking ref from an earlier fetch names nothing the remote has now */
    git_reference *old = NULL;
    if (g->reference_lookup(&old, r->repo, dst) == 0) (void)g->reference_delete(old);
    g->reference_free(old);
  }
  return found;
}

int gitrepo_fetch_main(gitrepo *r, const char *url, const char *user, const char *password, char *id,
                       gr_err *e) {
  return gr_fetch_ref(r, url, "refs/heads/" GR_MAIN, GR_REMOTE_MAIN, GR_MAIN, user, password, id, e);
}

int gitrepo_fetch_branch(gitrepo *r, const char *url, const char *branch, const char *user, const char *password,
                         char *id, gr_err *e) {
  char src[GR_CARD_MAX + 64], dst[GR_CARD_MAX + 128];
  if (gr_branch_ref(&r->git, branch, src, sizeof src, e) != 0) return -1;
  snprintf(dst, sizeof dst, GR_REMOTE_BRANCHES "%s", branch);
  return gr_fetch_ref(r, url, src, dst, branch, user, password, id, e);
}

int gitrepo_hold_library(gr_err *e) {
  gitapi api;
  if (gr_lib_load(&api, e) != 0) return -1;
  gitapi_close(&api); /* only the table: the set-up stays, and libgit2 stays loaded (gitapi.c) */
  return 0;
}

/* ---- a remote seen from outside ---------------------------------------------------------- */

int gitrepo_init_bare(const char *path, gr_err *e) {
  if (path == NULL || *path == '\0') return gr_fail(e, "EINVAL", "empty path");
  gitapi api;
  if (gr_lib_load(&api, e) != 0) return -1;
  const gitapi *g = &api;
  git_repository *repo = NULL;
  git_repository_init_options o;
  g->repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
  o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
  o.initial_head = GR_MAIN;
  int rc = g->repository_init_ext(&repo, path, &o);
  int ret = rc < 0 ? gr_git(g, e, rc, path) : 0;
  g->repository_free(repo);
  gr_lib_release(&api);
  return ret;
}

void gr_refs_free(gr_ref *v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i].name);
  free(v);
}

int gitrepo_ls_remote(const char *url, const char *user, const char *password, gr_ref **out,
                      size_t *n, gr_err *e) {
  *out = NULL;
  *n = 0;
  if (url == NULL || *url == '\0' || strpbrk(url, "\r\n"))
    return gr_fail(e, "EINVAL", "the remote must be a non-empty URL or path");
  gitapi api;
  if (gr_lib_load(&api, e) != 0) return -1;
  const gitapi *g = &api;
  git_remote *remote = NULL;
  int ret = -1, rc = g->remote_create_detached(&remote, url);
  if (rc < 0) {
    gr_git(g, e, rc, "remote");
    goto out;
  }
  gr_push_state st = {.g = g, .user = user, .password = password};
  git_remote_callbacks cb;
  g->remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
  cb.credentials = gr_push_cred;
  cb.payload = &st;
  const git_remote_head **heads = NULL;
  size_t count = 0;
  if ((rc = g->remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL)) < 0 ||
      (rc = g->remote_ls(&heads, &count, remote)) < 0) {
    const git_error *le = g->error_last();
    gr_fail(e, rc == GIT_EAUTH ? "EAUTH" : "EREMOTE", "listing %s: %s", url,
            le && le->message ? le->message : "unknown libgit2 error");
    goto out;
  }
  gr_ref *v = calloc(count ? count : 1, sizeof *v);
  if (v == NULL) {
    gr_fail(e, "ENOMEM", "out of memory");
    goto out;
  }
  for (size_t i = 0; i < count; i++) {
    v[i].name = strdup(heads[i]->name);
    g->oid_tostr(v[i].id, sizeof v[i].id, &heads[i]->oid);
    if (v[i].name == NULL) {
      gr_refs_free(v, i + 1);
      gr_fail(e, "ENOMEM", "out of memory");
      goto out;
    }
  }
  *out = v;
  *n = count;
  ret = 0;
out:
  g->remote_free(remote);
  gr_lib_release(&api);
  return ret;
}
