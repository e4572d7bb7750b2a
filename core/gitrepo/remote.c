/* remote.c: a remote: push, fetch of its main or a branch, a bare repository on disk, ls-remote. See
 * gitrepo.h and docs/git.md. */
#define _GNU_SOURCE /* syncfs */
#include "internal.h"
#include "../http.h"

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
  /* a push of main: the remote's main as last fetched or pushed (had: GR_REMOTE_MAIN is
   * there); gone: the remote has no main, so the push would make it again (refused), and
   * head the branch the remote's HEAD names ("": none it has) */
  git_remote *remote;
  int had, gone, unlisted; /* unlisted: the remote's branches could not be listed */
  git_oid was;
  char head[256];
} gr_push_state;

/* The branch the connected remote's HEAD names into head ("" when none it has); 1 when the
 * remote has any branch, 0 when it has none (an empty repository: a new remote), -1 when its
 * branches could not be listed (neither: never read as "main gone") */
static int gr_remote_head(const gitapi *g, git_remote *remote, char *head, size_t cap) {
  const git_remote_head **heads = NULL;
  size_t n = 0;
  int any = 0;
  head[0] = '\0';
  if (g->remote_ls(&heads, &n, remote) != 0) return -1;
  for (size_t i = 0; i < n; i++) {
    const char *to = heads[i]->symref_target;
    if (strcmp(heads[i]->name, "HEAD") == 0 && to && strncmp(to, "refs/heads/", 11) == 0)
      snprintf(head, cap, "%s", to + 11);
    if (strncmp(heads[i]->name, "refs/heads/", 11) == 0) any = 1;
  }
  return any;
}

/* What the push sends, as libgit2 read the local ref: the id to report as pushed. A push
 * that would make main on a remote that had it is stopped here, before anything is sent. */
static int gr_push_negotiated(const git_push_update **updates, size_t len, void *payload) {
  gr_push_state *s = payload;
  static const git_oid none;
  for (size_t i = 0; i < len; i++) {
    if (updates[i]->dst_refname && strcmp(updates[i]->dst_refname, s->ref) == 0) {
      /* (a remote with no branch at all is a new one, git.remote changed: main is made there) */
      int any = s->had && s->g->oid_equal(&updates[i]->src, &none)
                    ? gr_remote_head(s->g, s->remote, s->head, sizeof s->head) : 0;
      if (any != 0) {
        if (any < 0) s->unlisted = 1;
        else s->gone = 1;
        return -1;
      }
      s->sent = updates[i]->dst;
      s->pushed = 1;
    }
  }
  return 0;
}

/* The refusal of a remote that had main and has it no more (its default branch renamed, or
 * main deleted): making main there again would start a second line of history beside the
 * team's, which nothing would say. unsure: no record says which remote the tracking ref is
 * of (one an older Orket wrote), so git.remote may have changed since. -1 with e set (ENOENT). */
static int gr_main_gone(gr_err *e, const char *doing, const char *shown, const char *was, const char *head,
                        int unsure) {
  char why[200];
  if (head[0])
    snprintf(why, sizeof why, "its HEAD names %.120s: its default branch renamed?", head);
  else
    snprintf(why, sizeof why, "its HEAD names no branch it has: main deleted?");
  return gr_fail(e, "ENOENT", "%s: the remote %.300s has no main any more (it had it at %.12s, kept as %s%s), and %s "
                 "Orket pushes main only where it is the remote's main, so it does not make it again: rename the "
                 "remote's branch back to main (its default branch), or, for Orket to make main there anew, drop "
                 "what it knows of the remote's main: git -C workspace update-ref -d %s",
                 doing, shown, was, GR_REMOTE_MAIN,
                 unsure ? "; an older Orket wrote it, with no record of which remote it was: if orket.lua's "
                          "git.remote named another remote then, this one never had main" : "",
                 why, GR_REMOTE_MAIN);
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

/* ---- which remote GR_REMOTE_MAIN is of ------------------------------------------------------ */

/* GR_REMOTE_MAIN says "the remote had main" only of the remote it was fetched from or pushed
 * to: git.remote may be changed to another one (a forge repository made with its README on
 * master), which never had main, where main is made as on a new remote. The file
 * GR_MAIN_OF in main's gitdir names that remote, as gr_url_shown shows it (no credentials in
 * a file; a token changed in the URL is still the same remote): written after the ref (a kill
 * between leaves the old name or none, so the next fetch drops the ref and fetches it again,
 * or trusts it), whole (a rename), durable (fsync), never a lock a person's git would wait
 * on, and untouched by git gc, unlike a reflog (expired) or a config key (config.lock). */
#define GR_MAIN_OF "orket-remote-main"
#define GR_MAIN_OF_MAGIC "orket-remote-main 1 "
#define GR_SHOWN_MAX 2048 /* a longer URL is compared by this much of it */

/* 1 when GR_MAIN_OF names the remote shown, 0 when it names another, -1 when there is none
 * (or it cannot be read as one: a ref an older Orket wrote, trusted as this remote's). shown
 * is the remote's key (gr_remote_key); a record an earlier Orket wrote of the URL as shown
 * is taken for the same remote too (also, NULL: none). */
static int gr_main_of(const gitapi *g, git_repository *repo, const char *shown, const char *also) {
  char p[PATH_MAX], buf[sizeof GR_MAIN_OF_MAGIC + GR_SHOWN_MAX + 2];
  struct stat st;
  if ((size_t)snprintf(p, sizeof p, "%s" GR_MAIN_OF, g->repository_commondir(repo)) >= sizeof p) return -1;
  int fd = open(p, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf - 1) : -1;
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  char *nl = strchr(buf, '\n');
  size_t m = sizeof GR_MAIN_OF_MAGIC - 1;
  if (nl == NULL || strncmp(buf, GR_MAIN_OF_MAGIC, m) != 0) return -1;
  *nl = '\0';
  return strcmp(buf + m, shown) == 0 || (also && strcmp(buf + m, also) == 0);
}

/* Records that GR_REMOTE_MAIN, just written, is the remote shown's (unless it says so
 * already). Best effort: one not written leaves the old name (the ref is dropped and fetched
 * again) or none (trusted). The temporary file is this process's (pid): two processes may
 * fetch at once. */
static void gr_main_of_write(const gitapi *g, git_repository *repo, const char *shown) {
  char p[PATH_MAX], tmp[PATH_MAX + 32], buf[sizeof GR_MAIN_OF_MAGIC + GR_SHOWN_MAX + 2];
  if (gr_main_of(g, repo, shown, NULL) == 1) return;
  if ((size_t)snprintf(p, sizeof p, "%s" GR_MAIN_OF, g->repository_commondir(repo)) >= sizeof p) return;
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", p, (long)getpid());
  int n = snprintf(buf, sizeof buf, GR_MAIN_OF_MAGIC "%s\n", shown);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return;
  int ok = n > 0 && (size_t)n < sizeof buf && write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp, p) != 0) (void)unlink(tmp);
}

/* Deletes ref in main's repository. A packed one (a person's git gc packs every ref) is
 * deleted by rewriting packed-refs under packed-refs.lock, which main's gitdir shares with a
 * person's git: the write is recorded as Orket's first, so that recovery clears the lock a kill
 * inside it leaves, and only that (repo.c, gr_write_begin). */
static void gr_ref_delete(const gitapi *g, git_repository *repo, git_reference *ref) {
  gr_write_begin(g, repo, "packed-refs.lock");
  (void)g->reference_delete(ref);
  gr_write_end(g, repo);
}

/* Before a fetch or push of main to the remote shown: 1 and old (the remote's main as last
 * fetched or pushed) when GR_REMOTE_MAIN is that remote's (*unsure: by no record, so
 * trusted); 0 when there is none, or it is another remote's: then it is dropped, with
 * GR_REMOTE_MAIN_DROPPED (of that remote too), as for a new remote, so that no view of the
 * remote's main reads the old one's. */
static int gr_had_main(const gitapi *g, git_repository *repo, const char *shown, const char *also, git_oid *old,
                       int *unsure) {
  *unsure = 0;
  if (g->reference_name_to_id(old, repo, GR_REMOTE_MAIN) != 0) return 0;
  int of = gr_main_of(g, repo, shown, also);
  if (of != 0) {
    *unsure = of < 0;
    return 1;
  }
  const char *drop[] = {GR_REMOTE_MAIN_DROPPED, GR_REMOTE_MAIN}; /* the tracking ref last: it says "had" */
  for (size_t i = 0; i < 2; i++) {
    git_reference *ref = NULL;
    if (g->reference_lookup(&ref, repo, drop[i]) == 0) gr_ref_delete(g, repo, ref);
    g->reference_free(ref);
  }
  return 0;
}

/* How a remote at url is reached over HTTP: through the proxy git itself would use
 * (GIT_PROXY_AUTO: remote.<name>.proxy, http.<url>.proxy or http.proxy in git's config, else
 * http_proxy/HTTP_PROXY for http://, https_proxy/HTTPS_PROXY for https://) when the HTTP
 * client would use one for it (core/http.h http_proxy_for: the environment names one, and
 * neither no_proxy nor this machine's host says direct), as the model calls go through theirs. libgit2's default is no proxy at
 * all: behind one, every push failed to resolve the forge's name. */
static void gr_proxy(git_proxy_options *px, const char *url) {
  memset(px, 0, sizeof *px);
  px->version = GIT_PROXY_OPTIONS_VERSION;
  /* direct wherever the HTTP client goes direct (this machine, no_proxy by libcurl's rules:
   * libgit2 matches only the exact host, so a subdomain went through the proxy) */
  const char *var, *value;
  px->type = http_proxy_for(url, &var, &value) ? GIT_PROXY_AUTO : GIT_PROXY_NONE;
}

/* libgit2's last message into buf, with any proxy password masked (http_redact): it may
 * quote a proxy setting whole. -> buf */
static const char *gr_last_msg(const gitapi *g, char *buf, size_t n) {
  const git_error *le = g->error_last();
  http_redact(buf, n, le && le->message ? le->message : "unknown libgit2 error");
  return buf;
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

/* ---- a remote on this machine: what git receive-pack would apply ------------------------- */

/* A push to a path or file:// URL goes through libgit2's local transport, which copies the
 * objects and writes the refs straight into the remote's repository: no git receive-pack, so
 * none of its hooks and none of its receive.* settings. What git would refuse is refused here
 * instead, before anything is sent. (libgit2 itself refuses every push to a repository with
 * a working tree, so receive.denyCurrentBranch needs nothing; Orket never pushes a deletion,
 * so neither does receive.denyDeletes; a push without force that is not a fast-forward is
 * refused by libgit2 from the remote's advertised refs.) */

/* The hooks git receive-pack runs (githooks(5)): any one of them, executable, would run on a
 * push, and the team's policy may be in any (a refusal, a CI trigger, a mail). */
static const char *const gr_receive_hooks[] = {"pre-receive", "update", "proc-receive", "reference-transaction",
                                                "post-receive", "post-update", "push-to-checkout"};

#define GR_CONFIG_MAX ((off_t)4 << 20) /* a larger config file is not read for its hooks */

/* 1 and the folder in path when url is one libgit2 pushes to through its local transport:
 * file://[localhost]/PATH (its %XX escapes decoded), or a folder of this machine given as
 * a path (libgit2 takes a URL of no scheme it knows for one when the folder exists). */
static int gr_local_path(const char *url, char *path, size_t cap) {
  if (strncmp(url, "file://", 7) == 0) {
    const char *p = url + 7;
    if (strncmp(p, "localhost/", 10) == 0) p += 9;
    if (*p != '/') return 0;
    size_t n = 0;
    for (; *p && n + 1 < cap; p++) {
      unsigned int c;
      if (p[0] == '%' && sscanf(p + 1, "%2x", &c) == 1 && strspn(p + 1, "0123456789abcdefABCDEF") >= 2 && c != 0) {
        path[n++] = (char)c;
        p += 2;
      } else {
        path[n++] = *p;
      }
    }
    path[n] = '\0';
    return *p == '\0';
  }
  struct stat st;
  if (strstr(url, "://") != NULL || stat(url, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
  return (size_t)snprintf(path, cap, "%s", url) < cap;
}

/* The remote url stands for, as GR_MAIN_OF records it: a folder of this machine, given as a
 * path or a file:// URL, as file:// and its real path (so /p/r.git, file:///p/r.git and a
 * symlink to it are one remote); any other URL as shown (gr_url_shown). 0, or -1 with e set
 * (doing: what failed) when url is a folder of this machine that is not there now: its key
 * cannot be told, and a key of the path as given would read as another remote and drop what
 * Orket knows of this one's main (a mount not up yet is no new remote). */
static int gr_remote_key(const char *url, const char *doing, char *out, size_t outlen, gr_err *e) {
  char path[PATH_MAX], real[PATH_MAX];
  int local = gr_local_path(url, path, sizeof path);
  if (gr_local_missing(url) || (local && realpath(path, real) == NULL)) {
    gr_url_shown(url, out, outlen);
    return gr_fail(e, "EREMOTE", "%s: the remote %s is no folder here: a remote given as a path is a repository's "
                   "folder (git.remote), else give its URL", doing, out);
  }
  if (!local) {
    gr_url_shown(url, out, outlen);
    return 0;
  }
  /* (a longer one is compared by its first GR_SHOWN_MAX bytes, as any URL) */
  size_t n = strlen(real);
  if (n + 8 > outlen) n = outlen - 8;
  memcpy(out, "file://", 7);
  memcpy(out + 7, real, n);
  out[7 + n] = '\0';
  return 0;
}

/* Adds the config file path at level to cfg when it is a regular file of at most
 * GR_CONFIG_MAX (looked at first without blocking: a FIFO there would hold the push). */
static void gr_config_file(const gitapi *g, git_config *cfg, git_repository *rr, const char *path,
                           git_config_level_t level) {
  struct stat st;
  if (path == NULL || *path == '\0') return;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return;
  int plain = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= GR_CONFIG_MAX;
  close(fd);
  if (plain) (void)g->config_add_file_ondisk(cfg, path, level, rr, 0);
}

/* The settings git receive-pack would read for the repository rr, as a snapshot (NULL when
 * it cannot be made): the system's file ($GIT_CONFIG_SYSTEM, else /etc/gitconfig; none under
 * GIT_CONFIG_NOSYSTEM), the global ones ($GIT_CONFIG_GLOBAL, else $XDG_CONFIG_HOME/git/config
 * or ~/.config/git/config, then ~/.gitconfig) and the repository's own, the last that says
 * a setting winning. Orket's own repositories read none of the first two (repo.c). */
static git_config *gr_receive_config(const gitapi *g, git_repository *rr) {
  git_config *cfg = NULL, *snap = NULL;
  if (g->config_new(&cfg) < 0) return NULL;
  char p[PATH_MAX];
  const char *home = getenv("HOME"), *sys = getenv("GIT_CONFIG_SYSTEM"), *glob = getenv("GIT_CONFIG_GLOBAL");
  if (getenv("GIT_CONFIG_NOSYSTEM") == NULL)
    gr_config_file(g, cfg, rr, sys ? sys : "/etc/gitconfig", GIT_CONFIG_LEVEL_SYSTEM);
  if (glob) {
    gr_config_file(g, cfg, rr, glob, GIT_CONFIG_LEVEL_GLOBAL);
  } else {
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && *xdg && (size_t)snprintf(p, sizeof p, "%s/git/config", xdg) < sizeof p)
      gr_config_file(g, cfg, rr, p, GIT_CONFIG_LEVEL_XDG);
    else if (home && (size_t)snprintf(p, sizeof p, "%s/.config/git/config", home) < sizeof p)
      gr_config_file(g, cfg, rr, p, GIT_CONFIG_LEVEL_XDG);
    if (home && (size_t)snprintf(p, sizeof p, "%s/.gitconfig", home) < sizeof p)
      gr_config_file(g, cfg, rr, p, GIT_CONFIG_LEVEL_GLOBAL);
  }
  if ((size_t)snprintf(p, sizeof p, "%sconfig", g->repository_commondir(rr)) < sizeof p)
    gr_config_file(g, cfg, rr, p, GIT_CONFIG_LEVEL_LOCAL);
  /* a string is read from a snapshot only: the repository takes the files, then one is made */
  if (g->repository_set_config(rr, cfg) < 0 || g->repository_config_snapshot(&snap, rr) < 0) snap = NULL;
  g->config_free(cfg);
  return snap;
}

/* The folder git receive-pack takes its hooks from, for the bare repository rr: core.hooksPath
 * (~/ is the home folder; a relative path is the repository's folder's, where git runs the
 * hooks of a bare one), else its hooks/ folder. 0, or -1 when it does not fit. */
static int gr_hooks_dir(const gitapi *g, git_repository *rr, git_config *cfg, char *dir, size_t cap) {
  const char *hp = NULL, *home = getenv("HOME");
  if (cfg && g->config_get_string(&hp, cfg, "core.hooksPath") == 0 && hp && *hp) {
    size_t n;
    if (strncmp(hp, "~/", 2) == 0 && home)
      n = (size_t)snprintf(dir, cap, "%s/%s", home, hp + 2);
    else if (hp[0] == '/')
      n = (size_t)snprintf(dir, cap, "%s", hp);
    else
      n = (size_t)snprintf(dir, cap, "%s%s", g->repository_path(rr), hp);
    return n < cap ? 0 : -1;
  }
  return (size_t)snprintf(dir, cap, "%shooks", g->repository_commondir(rr)) < cap ? 0 : -1;
}

/* 1 when commit `tip` is `old` or has it in its history, in repo; 0 when not (or repo lacks
 * old); -1 on another error */
static int gr_holds(const gitapi *g, git_repository *repo, const git_oid *tip, const git_oid *old) {
  if (g->oid_equal(tip, old)) return 1;
  git_commit *c = NULL;
  int rc = g->commit_lookup(&c, repo, old);
  g->commit_free(c);
  if (rc == GIT_ENOTFOUND) return 0;
  if (rc < 0) return -1;
  rc = g->graph_descendant_of(repo, tip, old);
  return rc == GIT_ENOTFOUND ? 0 : rc < 0 ? -1 : rc;
}

/* Refuses (EREJECTED, nothing sent) a push of ref (its local commit id, forced or not) to
 * the remote url when that is a bare repository of this machine whose receive-pack would
 * run a hook, or would refuse it by receive.denyNonFastForwards; 0 when it may go (a remote
 * that is not on this machine, or that cannot be opened: the push says why). */
static int gr_receive_guard(gitrepo *r, const char *url, const char *branch, const char *ref, const git_oid *id,
                            int force, gr_err *e) {
  const gitapi *g = &r->git;
  char path[PATH_MAX], dir[PATH_MAX], hook[PATH_MAX + 32];
  git_repository *rr = NULL;
  if (!gr_local_path(url, path, sizeof path) ||
      g->repository_open_ext(&rr, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
    return 0;
  if (!g->repository_is_bare(rr)) { /* libgit2 refuses the push itself, writing nothing */
    g->repository_free(rr);
    return 0;
  }
  git_config *cfg = gr_receive_config(g, rr);
  int ret = 0;
  if (gr_hooks_dir(g, rr, cfg, dir, sizeof dir) != 0) {
    ret = gr_fail(e, "EREJECTED", "pushing %s: the remote %s names a hooks folder (core.hooksPath) too long to "
                  "look into, so whether git would run a hook on a push is not known: nothing was pushed",
                  branch, path);
    goto out;
  }
  for (size_t i = 0; i < sizeof gr_receive_hooks / sizeof gr_receive_hooks[0]; i++) {
    struct stat st;
    snprintf(hook, sizeof hook, "%s/%s", dir, gr_receive_hooks[i]);
    if (stat(hook, &st) == 0 && S_ISREG(st.st_mode) && access(hook, X_OK) == 0) {
      ret = gr_fail(e, "EREJECTED", "pushing %s: the remote %s has a hook git runs on a push, %.400s, which a push "
                    "to a path or file:// URL would not run (libgit2 writes the remote's refs itself, without git "
                    "receive-pack): nothing was pushed. Serve the remote over git://, ssh or http(s) and give that "
                    "URL as git.remote in orket.lua, so that its hooks run, or remove the hook",
                    branch, path, hook);
      goto out;
    }
  }
  int deny = 0;
  git_oid old;
  if (force && cfg && g->config_get_bool(&deny, cfg, "receive.denyNonFastForwards") == 0 && deny &&
      g->reference_name_to_id(&old, rr, ref) == 0 && gr_holds(g, r->repo, id, &old) != 1) {
    char was[GR_OID_HEX + 1];
    g->oid_tostr(was, sizeof was, &old);
    ret = gr_fail(e, "EREJECTED", "pushing %s: the remote %s refuses a push that is not a fast-forward "
                  "(receive.denyNonFastForwards), and its %s at %.12s is not in the history of the commit pushed; "
                  "a push to a path would not apply that setting, so it is applied here: nothing was pushed",
                  branch, path, ref, was);
  }
out:
  if (cfg) g->config_free(cfg);
  g->repository_free(rr);
  return ret;
}

/* After main was pushed as id to the remote shown: the remote's main is id, so the tracking
 * ref says so (as git's push updates its remote-tracking branch), of that remote, and what the
 * remote had dropped of main is back. */
static void gr_pushed_main(gitrepo *r, const git_oid *id, const char *shown) {
  const gitapi *g = &r->git;
  git_reference *ref = NULL;
  if (g->reference_create_matching(&ref, r->repo, GR_REMOTE_MAIN, id, 1, NULL, "orket: push") == 0) {
    g->reference_free(ref);
    gr_main_of_write(g, r->repo, shown);
  }
  ref = NULL;
  if (g->reference_lookup(&ref, r->repo, GR_REMOTE_MAIN_DROPPED) == 0) gr_ref_delete(g, r->repo, ref);
  g->reference_free(ref);
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
  if (gr_receive_guard(r, url, branch, ref, &id, force, e) != 0) {
    g->remote_free(remote);
    return -1;
  }
  gr_push_state st = {.g = g, .user = user, .password = password, .ref = ref, .remote = remote};
  char shown[GR_SHOWN_MAX], key[GR_SHOWN_MAX];
  gr_url_shown(url, shown, sizeof shown);
  if (gr_remote_key(url, doing, key, sizeof key, e) != 0) {
    g->remote_free(remote);
    return -1;
  }
  int is_main = strcmp(ref, "refs/heads/" GR_MAIN) == 0, unsure = 0;
  st.had = is_main && gr_had_main(g, r->repo, key, shown, &st.was, &unsure);
  git_push_options po;
  g->push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
  po.callbacks.credentials = gr_push_cred;
  po.callbacks.push_update_reference = gr_push_ref;
  po.callbacks.push_negotiation = gr_push_negotiated;
  po.callbacks.payload = &st;
  gr_proxy(&po.proxy_opts, url);
  char *specs[] = {spec};
  git_strarray refspecs = {specs, 1};
  rc = g->remote_push(remote, &refspecs, &po);
  g->remote_free(remote);
  if (st.gone) {
    /* a push's listing names no HEAD (git receive-pack advertises none): a fetch's does */
    git_remote *look = NULL;
    gr_err le;
    git_remote_callbacks cb;
    g->remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
    cb.credentials = gr_push_cred;
    cb.payload = &st;
    st.asked = 0;
    git_proxy_options px;
    gr_proxy(&px, url);
    if (!st.head[0] && gr_remote_at(r, url, doing, &look, &le) == 0 &&
        g->remote_connect(look, GIT_DIRECTION_FETCH, &cb, &px, NULL) == 0)
      gr_remote_head(g, look, st.head, sizeof st.head);
    g->remote_free(look);
    char was[GR_OID_HEX + 1];
    g->oid_tostr(was, sizeof was, &st.was);
    return gr_main_gone(e, doing, shown, was, st.head, unsure);
  }
  if (st.unlisted) {
    char lm[1024];
    gr_last_msg(g, lm, sizeof lm);
    return gr_fail(e, "EREMOTE", "%s: the remote %.300s did not list its branches (%s), so whether it had main is "
                   "not known: nothing was pushed",
                   doing, shown, lm);
  }
  if (rc < 0) {
    /* libgit2's message may quote the URL; the credentials are never in it (they are not
     * part of the URL Orket passes) */
    char lm[1024];
    gr_last_msg(g, lm, sizeof lm);
    const char *code = rc == GIT_EAUTH ? "EAUTH" : rc == GIT_ENONFASTFORWARD ? "EREJECTED" : "EREMOTE";
    /* libgit2's own words name no remote ("unexpected http status code: 404"): which one is said */
    return gr_fail(e, code, "pushing %s: %s (the remote %.300s: orket.lua's git.remote)", branch,
                   lm, shown);
  }
  if (st.rejected[0]) return gr_fail(e, "EREJECTED", "the remote refused %s", st.rejected);
  /* nothing negotiated: the remote's branch already was the local one, read above */
  g->oid_tostr(id_out, GR_OID_HEX + 1, st.pushed ? &st.sent : &id);
  if (is_main) gr_pushed_main(r, st.pushed ? &st.sent : &id, key);
  return 0;
}

/* Fetches the remote's src (refs/heads/...) into dst, as gitrepo_fetch_main and
 * gitrepo_fetch_branch say (what: how messages call it). head (NULL: not asked) gets the
 * branch the remote's HEAD names ("" when it names none it has), and dst is then kept when
 * the remote has no src but has other branches (gitrepo_fetch_main decides). */
static int gr_fetch_ref(gitrepo *r, const char *url, const char *src, const char *dst, const char *what,
                        const char *user, const char *password, char *id, char *head, size_t headcap, gr_err *e) {
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
  gr_proxy(&fo.proxy_opts, url);
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
    char lm[1024];
    gr_last_msg(g, lm, sizeof lm);
    char shown[512];
    gr_url_shown(url, shown, sizeof shown);
    gr_fail(e, rc == GIT_EAUTH ? "EAUTH" : "EREMOTE", "fetching %s: %s (the remote %s: orket.lua's git.remote)", what,
            lm, shown);
    g->remote_free(remote);
    return -1;
  }
  /* whether the remote has the branch at all: its advertised refs stay readable after the fetch.
   * A listing that fails says nothing of it (never "the branch is gone"): EREMOTE. */
  const git_remote_head **heads = NULL;
  size_t count = 0;
  int found = 0, others = 0;
  if (g->remote_ls(&heads, &count, remote) == 0) {
    for (size_t i = 0; i < count; i++) {
      if (strcmp(heads[i]->name, src) == 0) {
        g->oid_tostr(id, GR_OID_HEX + 1, &heads[i]->oid);
        found = 1;
      }
    }
    if (head) others = gr_remote_head(g, remote, head, headcap);
  } else {
    others = -1;
  }
  if (others < 0) {
    char lm[1024];
    gr_last_msg(g, lm, sizeof lm);
    char shown[512];
    gr_url_shown(url, shown, sizeof shown);
    gr_fail(e, "EREMOTE", "%s: the remote %s did not list its branches after the fetch (%s): whether it has %s is "
            "not known", doing, shown, lm, what);
    g->remote_free(remote);
    return -1;
  }
  g->remote_free(remote);
  if (!found && !others) {
    /* a tracking ref from an earlier fetch names nothing the remote has now */
    git_reference *old = NULL;
    if (g->reference_lookup(&old, r->repo, dst) == 0) gr_ref_delete(g, r->repo, old);
    g->reference_free(old);
  }
  return found;
}

/* After a fetch found the remote's main at now (it was at old before it, NULL: not known):
 * GR_REMOTE_MAIN_DROPPED records the remote's main as it was when it moved to a commit that
 * no longer holds it, while main holds it (a person moved the remote's main back past commits
 * Orket pushed, or rewrote them), until the remote's main holds it again (a push of main
 * puts them back: gr_pushed_main). Only said, never acted on: failing to write it is no
 * error of the fetch. */
static void gr_note_dropped(gitrepo *r, const git_oid *old, const char *now_hex) {
  const gitapi *g = &r->git;
  git_oid now, was, main;
  git_reference *ref = NULL;
  if (g->oid_fromstr(&now, now_hex) < 0) return;
  if (g->reference_name_to_id(&was, r->repo, GR_REMOTE_MAIN_DROPPED) == 0) {
    if (gr_holds(g, r->repo, &now, &was) != 0 && g->reference_lookup(&ref, r->repo, GR_REMOTE_MAIN_DROPPED) == 0)
      gr_ref_delete(g, r->repo, ref);
    g->reference_free(ref);
    return;
  }
  if (old == NULL || g->oid_equal(old, &now) || g->reference_name_to_id(&main, r->repo, "refs/heads/" GR_MAIN) != 0 ||
      gr_holds(g, r->repo, &main, old) != 1 || gr_holds(g, r->repo, &now, old) != 0)
    return;
  const char *why = "orket: the remote dropped it";
  if (g->reference_create_matching(&ref, r->repo, GR_REMOTE_MAIN_DROPPED, old, 1, NULL, why) == 0)
    g->reference_free(ref);
}

int gitrepo_fetch_main(gitrepo *r, const char *url, const char *user, const char *password, char *id,
                       gr_err *e) {
  const gitapi *g = &r->git;
  git_oid old;
  char head[256] = "", shown[GR_SHOWN_MAX], key[GR_SHOWN_MAX];
  if (url == NULL || *url == '\0' || strpbrk(url, "\r\n"))
    return gr_fail(e, "EINVAL", "the remote must be a non-empty URL or path");
  gr_url_shown(url, shown, sizeof shown);
  if (gr_remote_key(url, "fetching main", key, sizeof key, e) != 0) return -1;
  int unsure = 0, had = gr_had_main(g, r->repo, key, shown, &old, &unsure);
  int rc = gr_fetch_ref(r, url, "refs/heads/" GR_MAIN, GR_REMOTE_MAIN, GR_MAIN, user, password, id, head,
                        sizeof head, e);
  if (rc == 1) {
    gr_note_dropped(r, had ? &old : NULL, id);
    gr_main_of_write(g, r->repo, key);
  }
  /* (a remote without any branch had its tracking ref dropped: a new remote, main made there) */
  if (rc != 0 || !had || g->reference_name_to_id(&old, r->repo, GR_REMOTE_MAIN) != 0) return rc;
  /* The remote had main (fetched or pushed before, kept as GR_REMOTE_MAIN) and has it no
   * more: refused (gr_main_gone), and the tracking ref kept, so that every later fetch and
   * push of main is refused too until a person decides. */
  char was[GR_OID_HEX + 1];
  g->oid_tostr(was, sizeof was, &old);
  return gr_main_gone(e, "fetching main", shown, was, head, unsure);
}

int gitrepo_fetch_branch(gitrepo *r, const char *url, const char *branch, const char *user, const char *password,
                         char *id, gr_err *e) {
  char src[GR_CARD_MAX + 64], dst[GR_CARD_MAX + 128];
  if (gr_branch_ref(&r->git, branch, src, sizeof src, e) != 0) return -1;
  snprintf(dst, sizeof dst, GR_REMOTE_BRANCHES "%s", branch);
  return gr_fetch_ref(r, url, src, dst, branch, user, password, id, NULL, 0, e);
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
  git_proxy_options px;
  gr_proxy(&px, url);
  if ((rc = g->remote_connect(remote, GIT_DIRECTION_FETCH, &cb, &px, NULL)) < 0 ||
      (rc = g->remote_ls(&heads, &count, remote)) < 0) {
    char lm[1024];
    gr_last_msg(g, lm, sizeof lm);
    gr_fail(e, rc == GIT_EAUTH ? "EAUTH" : "EREMOTE", "listing %s: %s", url,
            lm);
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
