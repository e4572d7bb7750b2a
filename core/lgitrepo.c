/* lgitrepo.c: Lua module `orket.c.gitrepo`, a thin binding of gitrepo.h: init/open give a
 * repository userdata with worktree, status, commit, merges, log, recovery and push methods.
 * libgit2 is synchronous. Local operations run on the loop thread, like SQLite: a commit or
 * merge of a turn's files takes milliseconds. A push talks to a remote, so it runs on the
 * thread pool (on a repository handle of its own) while the calling coroutine waits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <sodium.h>
#include <uv.h>

#include "await.h"
#include "gitrepo.h"
#include "modules.h"

#define LGR_META "orket.gitrepo"
#define LGR_HELD "orket.gitrepo.held" /* registry: libgit2 is set up (lgr_hold) */
#define LGR_LOG_DEFAULT 100
#define LGR_LOG_MAX 10000

typedef struct lgr {
  gitrepo *r; /* NULL once closed */
} lgr;

static lgr *lgr_check(lua_State *L) {
  lgr *o = luaL_checkudata(L, 1, LGR_META);
  if (o->r == NULL) luaL_argerror(L, 1, "repository is closed");
  return o;
}

static int lgr_fail(lua_State *L, const gr_err *e) {
  lua_pushnil(L);
  lua_pushstring(L, e->msg);
  lua_pushstring(L, e->code);
  return 3;
}

static void lgr_push_paths(lua_State *L, const gr_paths *p) {
  lua_createtable(L, (int)p->n, 0);
  for (size_t i = 0; i < p->n; i++) {
    lua_pushstring(L, p->v[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* A string field of the table at arg (required unless opt). */
static const char *lgr_field(lua_State *L, int arg, const char *name, int opt) {
  lua_getfield(L, arg, name);
  /* the type first: lua_tostring would turn a number into a string in place */
  if (lua_type(L, -1) != LUA_TSTRING && !(opt && lua_isnil(L, -1))) {
    lua_pushfstring(L, "field '%s' must be a string", name);
    luaL_argerror(L, arg, lua_tostring(L, -1));
  }
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1); /* the string stays alive: the table still holds it */
  return s;
}

static gr_sig lgr_who(lua_State *L, int arg) {
  luaL_checktype(L, arg, LUA_TTABLE);
  gr_sig s = {lgr_field(L, arg, "name", 0), lgr_field(L, arg, "email", 0)};
  return s;
}

/* libgit2 is loaded on the module's first use of it (not when the module is loaded: most
 * commands that load it never touch git) and stays set up for the process from then on:
 * each handle's close would otherwise shut it down when it was the last one, deleting the
 * key of the per-thread state libgit2 keeps on the pool threads pushes and fetches use
 * (those threads outlive it), and that state would be lost rather than freed when they end.
 * The registry remembers that it was done. 0, or -1 with e set (libgit2 missing). */
static int lgr_hold(lua_State *L, gr_err *e) {
  int held = lua_getfield(L, LUA_REGISTRYINDEX, LGR_HELD) != LUA_TNIL;
  lua_pop(L, 1);
  if (held) return 0;
  if (gitrepo_hold_library(e) != 0) return -1;
  lua_pushboolean(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, LGR_HELD);
  return 0;
}

static lgr *lgr_new(lua_State *L) {
  lgr *o = lua_newuserdatauv(L, sizeof *o, 0); /* created closed: an error leaks nothing */
  o->r = NULL;
  luaL_setmetatable(L, LGR_META);
  return o;
}

/* init(path, {name=, email=}) -> repo, created | nil, msg, CODE */
static int lgr_init(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  gr_sig who = lgr_who(L, 2);
  lgr *o = lgr_new(L);
  gr_err e;
  int created = 0;
  if (lgr_hold(L, &e) != 0) return lgr_fail(L, &e);
  if (gitrepo_init(path, &who, &o->r, &created, &e) != 0) return lgr_fail(L, &e);
  lua_pushboolean(L, created);
  return 2;
}

/* open(path) -> repo | nil, msg, CODE */
static int lgr_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lgr *o = lgr_new(L);
  gr_err e;
  if (lgr_hold(L, &e) != 0) return lgr_fail(L, &e);
  if (gitrepo_open(path, &o->r, &e) != 0) return lgr_fail(L, &e);
  return 1;
}

/* card_valid(card) -> whether card can name a branch orket/<card> and a worktree */
static int lgr_card_valid(lua_State *L) {
  lua_pushboolean(L, gitrepo_card_valid(luaL_checkstring(L, 1)));
  return 1;
}

/* init_bare(path) -> true | nil, msg, CODE: a bare repository (a remote on disk) */
static int lgr_init_bare(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  gr_err e;
  if (lgr_hold(L, &e) != 0 || gitrepo_init_bare(path, &e) != 0) return lgr_fail(L, &e);
  lua_pushboolean(L, 1);
  return 1;
}

/* ls_remote(url [, {user=, token=}]) -> {[refname] = id} | nil, msg, CODE */
static int lgr_ls_remote(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  const char *user = NULL, *token = NULL;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    user = lgr_field(L, 2, "user", 1);
    token = lgr_field(L, 2, "token", 1);
  }
  gr_err e;
  gr_ref *v = NULL;
  size_t n = 0;
  if (lgr_hold(L, &e) != 0 || gitrepo_ls_remote(url, user, token, &v, &n, &e) != 0) return lgr_fail(L, &e);
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, v[i].id);
    lua_setfield(L, -2, v[i].name);
  }
  gr_refs_free(v, n);
  return 1;
}

static int lgr_close(lua_State *L) {
  lgr *o = luaL_checkudata(L, 1, LGR_META);
  gitrepo_close(o->r);
  o->r = NULL;
  return 0;
}

static int lgr_tostring(lua_State *L) {
  lgr *o = luaL_checkudata(L, 1, LGR_META);
  if (o->r) lua_pushfstring(L, "gitrepo (%s)", gitrepo_path(o->r));
  else lua_pushliteral(L, "gitrepo (closed)");
  return 1;
}

/* repo:path() -> main's working tree */
static int lgr_path(lua_State *L) {
  lua_pushstring(L, gitrepo_path(lgr_check(L)->r));
  return 1;
}

/* repo:worktree(card, path) -> path, created | nil, msg, CODE */
static int lgr_worktree(lua_State *L) {
  lgr *o = lgr_check(L);
  const char *card = luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  gr_err e;
  int created = 0;
  char path[4096];
  if (gitrepo_worktree(o->r, card, lua_tostring(L, 3), &created, &e) != 0 ||
      gitrepo_worktree_path(o->r, card, path, sizeof path, &e) != 0)
    return lgr_fail(L, &e);
  lua_pushstring(L, path);
  lua_pushboolean(L, created);
  return 2;
}

/* repo:attach(card, dir, state) -> dir, switched | nil, msg, CODE (gitrepo_attach) */
static int lgr_attach(lua_State *L) {
  lgr *o = lgr_check(L);
  const char *card = luaL_checkstring(L, 2);
  const char *dir = luaL_checkstring(L, 3);
  const char *state = luaL_checkstring(L, 4);
  gr_err e;
  int switched = 0;
  char path[4096];
  if (gitrepo_attach(o->r, card, dir, state, &switched, &e) != 0 ||
      gitrepo_worktree_path(o->r, card, path, sizeof path, &e) != 0)
    return lgr_fail(L, &e);
  lua_pushstring(L, path);
  lua_pushboolean(L, switched);
  return 2;
}

/* The optional field `paths` of the table at arg: a list of strings (gitrepo_commit's only).
 * The pointer array lives in a userdata left on the stack and the strings in the table, so
 * an error raised later frees nothing by hand. Returns 0 without the field or with more
 * than GR_ONLY_MAX paths (the whole walk is then cheaper to reason about than a long list). */
static int lgr_only(lua_State *L, int arg, const char *field, gr_paths *only) {
  if (lua_getfield(L, arg, field) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1)) luaL_argerror(L, arg, lua_pushfstring(L, "field '%s' must be a list of strings", field));
  lua_Integer n = luaL_len(L, -1);
  if (n > GR_ONLY_MAX) {
    lua_pop(L, 1);
    return 0;
  }
  char **v = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *v, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    lua_geti(L, -2, i);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (s == NULL || strlen(s) != len) {
      lua_pushfstring(L, "field '%s' item %d must be a string without NUL bytes", field, (int)i);
      luaL_argerror(L, arg, lua_tostring(L, -1));
    }
    v[i - 1] = (char *)s;
    lua_pop(L, 1);
  }
  only->v = v;
  only->n = (size_t)n;
  return 1;
}

/* repo:detach(card [, {paths=}]) -> detached | nil, msg, CODE (EDIRTY: uncommitted changes).
 * paths: the only paths changed since the directory last matched its index (gitrepo_detach's only) */
static int lgr_detach(lua_State *L) {
  lgr *o = lgr_check(L);
  gr_err e;
  int detached = 0;
  const char *card = luaL_checkstring(L, 2);
  gr_paths only = {NULL, 0};
  int has_only = !lua_isnoneornil(L, 3) && (luaL_checktype(L, 3, LUA_TTABLE), lgr_only(L, 3, "paths", &only));
  if (gitrepo_detach(o->r, card, has_only ? &only : NULL, &detached, &e) != 0) return lgr_fail(L, &e);
  lua_pushboolean(L, detached);
  return 1;
}

/* repo:worktree_path(card) -> path | nil, msg, "ENOENT" */
static int lgr_worktree_path(lua_State *L) {
  lgr *o = lgr_check(L);
  gr_err e;
  char path[4096];
  if (gitrepo_worktree_path(o->r, luaL_checkstring(L, 2), path, sizeof path, &e) != 0) return lgr_fail(L, &e);
  lua_pushstring(L, path);
  return 1;
}

/* repo:status(card) -> {changed paths, sorted} */
/* repo:worktree_remove(card) -> removed | nil, msg, CODE (EDIRTY: uncommitted changes) */
static int lgr_worktree_remove(lua_State *L) {
  lgr *o = lgr_check(L);
  gr_err e;
  int removed = 0;
  if (gitrepo_worktree_remove(o->r, luaL_checkstring(L, 2), &removed, &e) != 0) return lgr_fail(L, &e);
  lua_pushboolean(L, removed);
  return 1;
}

static int lgr_status(lua_State *L) {
  lgr *o = lgr_check(L);
  gr_paths p;
  gr_err e;
  if (gitrepo_status(o->r, luaL_checkstring(L, 2), &p, &e) != 0) return lgr_fail(L, &e);
  lgr_push_paths(L, &p);
  gr_paths_free(&p);
  return 1;
}

/* repo:commit(card, {name=, email=, message=, turn=, paths=, wrote=}) -> id, "committed"|"exists"|"clean",
 * skipped ({"path (why)"...}: what was left out, never opened). paths: the only paths that
 * changed since the working tree last matched its index (gitrepo_commit's only); wrote: without
 * paths, those the turn's tools wrote, each said in skipped when a .gitignore rule kept it out
 * (gitrepo_commit's wrote; more than GR_ONLY_MAX: none) */
static int lgr_commit(lua_State *L) {
  static const char *const kinds[] = {"committed", "exists", "clean"};
  lgr *o = lgr_check(L);
  const char *card = luaL_checkstring(L, 2);
  gr_sig who = lgr_who(L, 3);
  const char *msg = lgr_field(L, 3, "message", 0);
  const char *turn = lgr_field(L, 3, "turn", 1);
  char id[GR_OID_HEX + 1];
  gr_commit_kind kind;
  gr_paths skipped, only = {NULL, 0}, wrote = {NULL, 0};
  gr_err e;
  int has_only = lgr_only(L, 3, "paths", &only), has_wrote = lgr_only(L, 3, "wrote", &wrote);
  if (gitrepo_commit(o->r, card, &who, msg, turn, has_only ? &only : NULL, has_wrote ? &wrote : NULL, id, &kind,
                     &skipped, &e) != 0)
    return lgr_fail(L, &e);
  lua_pushstring(L, id);
  lua_pushstring(L, kinds[kind]);
  lgr_push_paths(L, &skipped);
  gr_paths_free(&skipped);
  return 3;
}

/* repo:find_trailer(branch, key, value [, since_main=true]) -> id | false */
static int lgr_find_trailer(lua_State *L) {
  lgr *o = lgr_check(L);
  const char *branch = luaL_checkstring(L, 2), *key = luaL_checkstring(L, 3), *value = luaL_checkstring(L, 4);
  int since = lua_isnoneornil(L, 5) ? 1 : lua_toboolean(L, 5);
  char id[GR_OID_HEX + 1];
  gr_err e;
  int found = gitrepo_find_trailer(o->r, branch, key, value, since, id, &e);
  if (found < 0) return lgr_fail(L, &e);
  if (found) lua_pushstring(L, id);
  else lua_pushboolean(L, 0);
  return 1;
}

static const char *const lgr_merge_kinds[] = {"uptodate", "fastforward", "merged", "conflict"};

/* The answer of a merge into main: {kind=, id=, diverged=n, diverged_paths={first GR_VIEW_NAMED} [, stale=msg]} | nil, msg, "ECONFLICT", paths
 * (what: how the message names the merged side). */
static int lgr_merge_answer(lua_State *L, lgr *o, int rc, const char *what, const char *id, gr_merge_kind kind,
                            gr_paths *conf, gr_err *e) {
  if (rc < 0) return lgr_fail(L, e);
  if (kind == GR_CONFLICT) {
    luaL_Buffer b;
    lua_pushnil(L);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "git: merging ");
    luaL_addstring(&b, what);
    luaL_addstring(&b, " into main conflicts in: ");
    for (size_t i = 0; i < conf->n; i++) {
      if (i) luaL_addstring(&b, ", ");
      luaL_addstring(&b, conf->v[i]);
    }
    luaL_pushresult(&b);
    lua_pushliteral(L, "ECONFLICT");
    lgr_push_paths(L, conf);
    gr_paths_free(conf);
    return 4;
  }
  lua_createtable(L, 0, 3);
  lua_pushstring(L, lgr_merge_kinds[kind]);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, id);
  lua_setfield(L, -2, "id");
  if (rc == 1) {
    lua_pushstring(L, e->msg);
    lua_setfield(L, -2, "stale");
  }
  lua_pushinteger(L, (lua_Integer)gitrepo_view_last(o->r));
  lua_setfield(L, -2, "diverged");
  lgr_push_paths(L, gitrepo_view_last_paths(o->r));
  lua_setfield(L, -2, "diverged_paths");
  return 1;
}

/* repo:merge_to_main(card, who) -> {kind=, id= [, stale=msg]} | nil, msg, "ECONFLICT", paths
 * stale: main moved but its working tree could not follow (see gitrepo.h). */
static int lgr_merge_to_main(lua_State *L) {
  lgr *o = lgr_check(L);
  const char *card = luaL_checkstring(L, 2);
  gr_sig who = lgr_who(L, 3);
  char id[GR_OID_HEX + 1], what[GR_CARD_MAX + 16];
  gr_merge_kind kind;
  gr_paths conf;
  gr_err e;
  int rc = gitrepo_merge_to_main(o->r, card, &who, id, &kind, &conf, &e);
  snprintf(what, sizeof what, "orket/%s", card);
  return lgr_merge_answer(L, o, rc, what, id, kind, &conf, &e);
}

/* repo:merge_remote_to_main(who) -> as merge_to_main, for the remote's main as fetch_main
 * last kept it (ENOENT: none fetched) */
static int lgr_merge_remote_to_main(lua_State *L) {
  lgr *o = lgr_check(L);
  gr_sig who = lgr_who(L, 2);
  char id[GR_OID_HEX + 1];
  gr_merge_kind kind;
  gr_paths conf;
  gr_err e;
  int rc = gitrepo_merge_remote_to_main(o->r, &who, id, &kind, &conf, &e);
  return lgr_merge_answer(L, o, rc, "the remote's main", id, kind, &conf, &e);
}

/* A merge into a card's branch as Lua sees it: {kind=, id=, conflicts={paths}}; frees conf. */
static int lgr_push_merge(lua_State *L, const char *id, gr_merge_kind kind, gr_paths *conf) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, lgr_merge_kinds[kind]);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, id);
  lua_setfield(L, -2, "id");
  lgr_push_paths(L, conf);
  lua_setfield(L, -2, "conflicts");
  gr_paths_free(conf);
  return 1;
}

/* repo:merge_from_main(card, who) -> {kind=, id=, conflicts={paths}} | nil, msg, CODE
 * kind "conflict": the merge commit holds conflict markers in those paths. */
static int lgr_merge_from_main(lua_State *L) {
  lgr *o = lgr_check(L);
  const char *card = luaL_checkstring(L, 2);
  gr_sig who = lgr_who(L, 3);
  char id[GR_OID_HEX + 1];
  gr_merge_kind kind;
  gr_paths conf;
  gr_err e;
  if (gitrepo_merge_from_main(o->r, card, &who, id, &kind, &conf, &e) != 0) return lgr_fail(L, &e);
  return lgr_push_merge(L, id, kind, &conf);
}

/* repo:merge_remote_to_card(card, who) -> as merge_from_main, for the remote's orket/<card>
 * as fetch_branch last kept it */
static int lgr_merge_remote_to_card(lua_State *L) {
  lgr *o = lgr_check(L);
  const char *card = luaL_checkstring(L, 2);
  gr_sig who = lgr_who(L, 3);
  char id[GR_OID_HEX + 1];
  gr_merge_kind kind;
  gr_paths conf;
  gr_err e;
  if (gitrepo_merge_remote_to_card(o->r, card, &who, id, &kind, &conf, &e) != 0) return lgr_fail(L, &e);
  return lgr_push_merge(L, id, kind, &conf);
}

/* repo:log(branch [, max=100]) -> {{id=, summary=, author=, email=, time=, parents=}, ...}
 * the commits on branch not on main, newest first */
static int lgr_log(lua_State *L) {
  lgr *o = lgr_check(L);
  const char *branch = luaL_checkstring(L, 2);
  lua_Integer max = luaL_optinteger(L, 3, LGR_LOG_DEFAULT);
  luaL_argcheck(L, max >= 1 && max <= LGR_LOG_MAX, 3, "must be between 1 and 10000");
  gr_commit *v;
  size_t n;
  gr_err e;
  if (gitrepo_log(o->r, branch, (size_t)max, &v, &n, &e) != 0) return lgr_fail(L, &e);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 6);
    lua_pushstring(L, v[i].id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, v[i].summary);
    lua_setfield(L, -2, "summary");
    lua_pushstring(L, v[i].author_name);
    lua_setfield(L, -2, "author");
    lua_pushstring(L, v[i].author_email);
    lua_setfield(L, -2, "email");
    lua_pushinteger(L, (lua_Integer)v[i].time);
    lua_setfield(L, -2, "time");
    lua_pushinteger(L, (lua_Integer)v[i].parents);
    lua_setfield(L, -2, "parents");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  gr_commits_free(v, n);
  return 1;
}

/* repo:head(branch) -> id | nil, msg, "ENOENT" */
static int lgr_head(lua_State *L) {
  lgr *o = lgr_check(L);
  char id[GR_OID_HEX + 1];
  gr_err e;
  if (gitrepo_head(o->r, luaL_checkstring(L, 2), id, &e) != 0) return lgr_fail(L, &e);
  lua_pushstring(L, id);
  return 1;
}

/* repo:set_aside(card, ref[, keep]) -> id (the branch's commit, now ref's) | nil, msg, CODE:
 * the branch deleted, or moved back to keep (gitrepo_set_aside: ENOENT, EEXIST, EINVAL,
 * EUNSAFE) */
static int lgr_set_aside(lua_State *L) {
  lgr *o = lgr_check(L);
  char id[GR_OID_HEX + 1];
  gr_err e;
  if (gitrepo_set_aside(o->r, luaL_checkstring(L, 2), luaL_checkstring(L, 3), luaL_optstring(L, 4, NULL), id, &e) != 0)
    return lgr_fail(L, &e);
  lua_pushstring(L, id);
  return 1;
}

/* repo:contains(ref, id) -> whether commit id is ref's tip or in its history | nil, msg, CODE */
static int lgr_contains(lua_State *L) {
  lgr *o = lgr_check(L);
  gr_err e;
  int rc = gitrepo_contains(o->r, luaL_checkstring(L, 2), luaL_checkstring(L, 3), &e);
  if (rc < 0) return lgr_fail(L, &e);
  lua_pushboolean(L, rc);
  return 1;
}

/* ---- push on the thread pool ------------------------------------------------------------ */

/* One push in flight: its own copies of the arguments (the worker thread must not touch Lua
 * strings), its result, and whether the coroutine that waits for it was cancelled. */
typedef struct lgr_push_req {
  rt_wait w; /* first member */
  uv_work_t work;
  char *path, *url, *branch, *user, *token;
  int fetch, force, rc, cancelled; /* fetch: 1 main, 2 branch */
  char id[GR_OID_HEX + 1]; /* fetch: the remote's main or branch; push: the commit pushed */
  gr_err e;
} lgr_push_req;

static void lgr_push_free(lgr_push_req *p) {
  if (p->token) sodium_memzero(p->token, strlen(p->token));
  free(p->path);
  free(p->url);
  free(p->branch);
  free(p->user);
  free(p->token);
  free(p);
}

/* On a pool thread: a repository handle of its own (libgit2 objects are not shared
 * between threads). */
static void lgr_push_work(uv_work_t *wk) {
  lgr_push_req *p = wk->data;
  gitrepo *r = NULL;
  p->rc = gitrepo_open(p->path, &r, &p->e);
  if (p->rc == 0 && p->fetch == 2) p->rc = gitrepo_fetch_branch(r, p->url, p->branch, p->user, p->token, p->id, &p->e);
  else if (p->rc == 0 && p->fetch) p->rc = gitrepo_fetch_main(r, p->url, p->user, p->token, p->id, &p->e);
  else if (p->rc == 0) p->rc = gitrepo_push(r, p->url, p->branch, p->force, p->user, p->token, p->id, &p->e);
  gitrepo_close(r);
}

static int lgr_push_results(lua_State *L, void *ud) {
  lgr_push_req *p = ud;
  if (p->rc < 0 || (!p->fetch && p->rc != 0)) return lgr_fail(L, &p->e);
  if (p->rc == 1 || !p->fetch) lua_pushstring(L, p->id);
  else lua_pushboolean(L, 0);
  return 1;
}

static void lgr_push_done(uv_work_t *wk, int status) {
  (void)status;
  lgr_push_req *p = wk->data;
  if (!p->cancelled) rt_wait_finish(&p->w, lgr_push_results, p);
  else p->w.rt->left_running--; /* the runtime outlives its pool work (rt_close waits for it) */
  lgr_push_free(p);
}

/* A running push or fetch cannot be stopped: it finishes on its thread and lgr_push_done
 * frees it. Until then it counts in orket.stats().left_running, so that whoever removes
 * what it uses (a test's repositories) can wait for it first. */
static void lgr_push_cancel(rt_wait *w) {
  ((lgr_push_req *)w)->cancelled = 1;
  w->rt->left_running++;
}

static char *lgr_dup(const char *s) { return s ? strdup(s) : NULL; }

/* Starts a push or fetch on the thread pool and yields until it ends. */
static int lgr_remote_op(lua_State *L, lgr *o, int fetch, const char *url, const char *branch, int opts) {
  int force = 0;
  const char *user = NULL, *token = NULL;
  if (!lua_isnoneornil(L, opts)) {
    luaL_checktype(L, opts, LUA_TTABLE);
    lua_getfield(L, opts, "force");
    force = lua_toboolean(L, -1);
    lua_pop(L, 1);
    user = lgr_field(L, opts, "user", 1);
    token = lgr_field(L, opts, "token", 1);
  }
  orket_rt *rt = rt_get(L);
  rt_wait_require(L); /* before the allocations, so that error leaks nothing */
  lgr_push_req *p = calloc(1, sizeof *p);
  if (p == NULL) return luaL_error(L, "push: out of memory");
  p->path = lgr_dup(gitrepo_path(o->r));
  p->url = lgr_dup(url);
  p->branch = lgr_dup(branch);
  p->user = lgr_dup(user);
  p->token = lgr_dup(token);
  p->force = force;
  p->fetch = fetch;
  if (!p->path || !p->url || !p->branch || (user && !p->user) || (token && !p->token)) {
    lgr_push_free(p);
    return luaL_error(L, "push: out of memory");
  }
  p->work.data = p;
  rt_wait_begin(L, &p->w, lgr_push_cancel);
  int rc = uv_queue_work(&rt->loop, &p->work, lgr_push_work, lgr_push_done);
  if (rc != 0) {
    p->e.code = "EIO";
    snprintf(p->e.msg, sizeof p->e.msg, "git: cannot start the %s: %s", fetch ? "fetch" : "push", uv_strerror(rc));
    p->rc = -1;
    rt_wait_finish(&p->w, lgr_push_results, p);
    lgr_push_free(p);
  }
  return rt_wait_yield(L);
}

/* repo:push(url, branch [, {force=, user=, token=}]) -> true | nil, msg, CODE; waits (call it
 * in a task) while the push runs on the thread pool */
static int lgr_push(lua_State *L) {
  lgr *o = lgr_check(L);
  const char *url = luaL_checkstring(L, 2);
  const char *branch = luaL_checkstring(L, 3);
  return lgr_remote_op(L, o, 0, url, branch, 4);
}

/* repo:fetch_main(url [, {user=, token=}]) -> the remote main's id (kept as
 * refs/remotes/orket/main) | false (the remote has no main) | nil, msg, CODE; waits on the
 * thread pool like push */
static int lgr_fetch_main(lua_State *L) {
  lgr *o = lgr_check(L);
  const char *url = luaL_checkstring(L, 2);
  return lgr_remote_op(L, o, 1, url, GR_MAIN, 3);
}

/* repo:fetch_branch(url, branch [, {user=, token=}]) -> the remote branch's id (kept as
 * refs/remotes/orket-branches/<branch>) | false (the remote has no such branch) | nil, msg,
 * CODE; waits on the thread pool like push */
static int lgr_fetch_branch(lua_State *L) {
  lgr *o = lgr_check(L);
  const char *url = luaL_checkstring(L, 2);
  const char *branch = luaL_checkstring(L, 3);
  return lgr_remote_op(L, o, 2, url, branch, 4);
}

/* Pushes one side of a diverged path: {kind=, id=, size=} (id and size absent when none). */
static void lgr_push_side(lua_State *L, const char *kind, const char *id, int64_t size) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (*id) {
    lua_pushstring(L, id);
    lua_setfield(L, -2, "id");
  }
  if (size >= 0) {
    lua_pushinteger(L, (lua_Integer)size);
    lua_setfield(L, -2, "size");
  }
}

/* repo:view_status([forget]) -> {{path=, main={kind=, id=, size=}, view={kind=, id=, size= [, at=]}}...}, behind, waits, unfollowed:
 * the paths where main's view holds a person's version rather than main's, why the view is
 * behind main (nil when it holds main's tip), and true while it waits for main to be checked
 * out there (nothing listed then), and true for unfollowed when Orket's merge to main's tip is
 * not followed yet (a refresh finishes it) (gitrepo.h) */
static int lgr_view_status(lua_State *L) {
  lgr *o = lgr_check(L);
  gr_view_path *v = NULL;
  size_t n = 0;
  char behind[GR_VIEW_WHY];
  gr_err e;
  int waits = gitrepo_view_status(o->r, &v, &n, behind, sizeof behind, lua_toboolean(L, 2), &e);
  if (waits < 0) return lgr_fail(L, &e);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    luaL_checkstack(L, 4, "view status");
    lua_createtable(L, 0, 3);
    lua_pushstring(L, v[i].path);
    lua_setfield(L, -2, "path");
    lgr_push_side(L, v[i].main_kind, v[i].main_id, v[i].main_size);
    lua_setfield(L, -2, "main");
    lgr_push_side(L, v[i].view_kind, v[i].view_id, v[i].view_size);
    if (v[i].view_at) {
      lua_pushstring(L, v[i].view_at);
      lua_setfield(L, -2, "at");
    }
    lua_setfield(L, -2, "view");
    if (v[i].ignored) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "ignored");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  gr_view_paths_free(v, n);
  if (!behind[0]) return 1;
  lua_pushstring(L, behind);
  if (!waits) return 2;
  lua_pushboolean(L, waits == 1);
  if (waits == 1) return 3;
  lua_pushboolean(L, 1); /* unfollowed: a refresh finishes it */
  return 4;
}

/* repo:view_moved() -> {from=, to=} | nil: main moved by a person, not followed by the view,
 * while a path the refresh that found it listed is still listed (gitrepo_view_moved) */
static int lgr_view_moved(lua_State *L) {
  lgr *o = lgr_check(L);
  char from[GR_OID_HEX + 1], to[GR_OID_HEX + 1];
  if (!gitrepo_view_moved(o->r, from, to)) return 0;
  lua_createtable(L, 0, 2);
  lua_pushstring(L, from);
  lua_setfield(L, -2, "from");
  lua_pushstring(L, to);
  lua_setfield(L, -2, "to");
  return 1;
}

/* repo:view_refresh() -> diverged: main's view brought to main's tip (idempotent); the
 * number of paths this refresh found a person's */
static int lgr_view_refresh(lua_State *L) {
  lgr *o = lgr_check(L);
  size_t diverged = 0;
  gr_err e;
  if (gitrepo_view_refresh(o->r, &diverged, &e) != 0) return lgr_fail(L, &e);
  lua_pushinteger(L, (lua_Integer)diverged);
  return 1;
}

/* repo:refresh([card]) -> updated: finishes a checkout a crash interrupted */
static int lgr_refresh(lua_State *L) {
  lgr *o = lgr_check(L);
  const char *card = luaL_optstring(L, 2, NULL);
  int updated = 0;
  gr_err e;
  if (gitrepo_refresh(o->r, card, &updated, &e) != 0) return lgr_fail(L, &e);
  lua_pushboolean(L, updated);
  return 1;
}

/* repo:recover() -> number of stale lock files removed (only under the run lock) */
static int lgr_recover(lua_State *L) {
  lgr *o = lgr_check(L);
  int removed = 0;
  gr_err e;
  if (gitrepo_recover(o->r, &removed, &e) != 0) return lgr_fail(L, &e);
  lua_pushinteger(L, removed);
  return 1;
}

/* repo:check() -> true | nil, msg, "EINCONSISTENT" */
static int lgr_check_repo(lua_State *L) {
  lgr *o = lgr_check(L);
  gr_err e;
  if (gitrepo_check(o->r, &e) != 0) return lgr_fail(L, &e);
  lua_pushboolean(L, 1);
  return 1;
}

/* repo:pack_count() -> {loose = N, packs = N} | nil, msg, CODE: git's gc.auto estimate of
 * the loose objects (objects/17 times 256) and the packs a consolidation may rewrite */
static int lgr_pack_count(lua_State *L) {
  lgr *o = lgr_check(L);
  gr_pack_count c;
  gr_err e;
  if (gitrepo_pack_count(o->r, &c, &e) != 0) return lgr_fail(L, &e);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)c.loose);
  lua_setfield(L, -2, "loose");
  lua_pushinteger(L, (lua_Integer)c.packs);
  lua_setfield(L, -2, "packs");
  return 1;
}

#define LGR_PACK_OBJECTS_DEFAULT 100000
#define LGR_PACK_OBJECTS_MAX 1000000 /* the ids listed take 20 bytes each, libgit2's packbuilder some 100 */
#define LGR_PACK_MS_MAX 3600000

/* An integer field of the options table at arg, def when absent, within [lo, hi]. */
static lua_Integer lgr_int_field(lua_State *L, int arg, const char *name, lua_Integer def, lua_Integer lo,
                                 lua_Integer hi) {
  lua_getfield(L, arg, name);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int isint = 0;
    v = lua_tointegerx(L, -1, &isint);
    if (!isint || v < lo || v > hi) {
      lua_pushfstring(L, "field '%s' must be an integer from %I to %I", name, lo, hi);
      luaL_argerror(L, arg, lua_tostring(L, -1));
    }
  }
  lua_pop(L, 1);
  return v;
}

/* One pack in flight on the thread pool: the repository's path (a handle of its own there),
 * the options, the result, and whether the waiting coroutine was cancelled. */
typedef struct lgr_pack_req {
  rt_wait w; /* first member */
  uv_work_t work;
  char *path;
  int all, rc, cancelled;
  size_t max;
  unsigned ms;
  gr_pack_result res;
  gr_err e;
} lgr_pack_req;

static void lgr_pack_work(uv_work_t *wk) {
  lgr_pack_req *p = wk->data;
  gitrepo *r = NULL;
  p->rc = gitrepo_open(p->path, &r, &p->e);
  if (p->rc == 0) p->rc = gitrepo_pack(r, p->all, p->max, p->ms, &p->res, &p->e);
  gitrepo_close(r);
}

static int lgr_pack_results(lua_State *L, void *ud) {
  lgr_pack_req *p = ud;
  if (p->rc != 0) return lgr_fail(L, &p->e);
  const gr_pack_result *res = &p->res;
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, (lua_Integer)res->loose);
  lua_setfield(L, -2, "loose");
  lua_pushinteger(L, (lua_Integer)res->packed);
  lua_setfield(L, -2, "packed");
  lua_pushinteger(L, (lua_Integer)res->removed);
  lua_setfield(L, -2, "removed");
  lua_pushinteger(L, (lua_Integer)res->packs_gone);
  lua_setfield(L, -2, "packs_gone");
  lua_pushinteger(L, (lua_Integer)res->unread);
  lua_setfield(L, -2, "unread");
  if (res->name[0]) {
    lua_pushstring(L, res->name);
    lua_setfield(L, -2, "name");
  }
  return 1;
}

static void lgr_pack_free(lgr_pack_req *p) {
  free(p->path);
  free(p);
}

static void lgr_pack_done(uv_work_t *wk, int status) {
  (void)status;
  lgr_pack_req *p = wk->data;
  if (!p->cancelled) rt_wait_finish(&p->w, lgr_pack_results, p);
  else p->w.rt->left_running--;
  lgr_pack_free(p);
}

/* A pack cannot be stopped once started (its deadline bounds it): counted as a push is */
static void lgr_pack_cancel(rt_wait *w) {
  ((lgr_pack_req *)w)->cancelled = 1;
  w->rt->left_running++;
}

/* repo:pack([{all = bool, max_objects = N, deadline_ms = N}]) -> {loose =, packed =, removed =,
 * packs_gone =, unread =, name = hex | nil} | nil, msg, CODE (ETIMEDOUT: past deadline_ms,
 * nothing removed): gitrepo_pack. In a task it runs on the thread pool and waits there (a
 * pack's writing and syncing take seconds: orket serve's loop goes on meanwhile); outside
 * one, in place. */
static int lgr_pack(lua_State *L) {
  lgr *o = lgr_check(L);
  int all = 0;
  lua_Integer max = LGR_PACK_OBJECTS_DEFAULT, ms = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "all");
    all = lua_toboolean(L, -1);
    lua_pop(L, 1);
    max = lgr_int_field(L, 2, "max_objects", LGR_PACK_OBJECTS_DEFAULT, 1, LGR_PACK_OBJECTS_MAX);
    ms = lgr_int_field(L, 2, "deadline_ms", 0, 0, LGR_PACK_MS_MAX);
  }
  lgr_pack_req *p = calloc(1, sizeof *p);
  if (p == NULL || (p->path = lgr_dup(gitrepo_path(o->r))) == NULL) {
    free(p);
    return luaL_error(L, "pack: out of memory");
  }
  p->all = all;
  p->max = (size_t)max;
  p->ms = (unsigned)ms;
  if (!lua_isyieldable(L)) {
    p->rc = gitrepo_pack(o->r, all, p->max, p->ms, &p->res, &p->e);
    int n = lgr_pack_results(L, p);
    lgr_pack_free(p);
    return n;
  }
  p->work.data = p;
  rt_wait_begin(L, &p->w, lgr_pack_cancel);
  int rc = uv_queue_work(&rt_get(L)->loop, &p->work, lgr_pack_work, lgr_pack_done);
  if (rc != 0) {
    p->e.code = "EIO";
    snprintf(p->e.msg, sizeof p->e.msg, "git: cannot start the pack: %s", uv_strerror(rc));
    p->rc = -1;
    rt_wait_finish(&p->w, lgr_pack_results, p);
    lgr_pack_free(p);
  }
  return rt_wait_yield(L);
}

static const luaL_Reg lgr_methods[] = {
    {"path", lgr_path},
    {"worktree", lgr_worktree},
    {"worktree_path", lgr_worktree_path},
    {"worktree_remove", lgr_worktree_remove},
    {"attach", lgr_attach},
    {"detach", lgr_detach},
    {"status", lgr_status},
    {"commit", lgr_commit},
    {"find_trailer", lgr_find_trailer},
    {"merge_to_main", lgr_merge_to_main},
    {"merge_from_main", lgr_merge_from_main},
    {"log", lgr_log},
    {"head", lgr_head},
    {"push", lgr_push},
    {"fetch_main", lgr_fetch_main},
    {"fetch_branch", lgr_fetch_branch},
    {"merge_remote_to_card", lgr_merge_remote_to_card},
    {"contains", lgr_contains},
    {"set_aside", lgr_set_aside},
    {"merge_remote_to_main", lgr_merge_remote_to_main},
    {"refresh", lgr_refresh},
    {"view_status", lgr_view_status},
    {"view_moved", lgr_view_moved},
    {"view_refresh", lgr_view_refresh},
    {"recover", lgr_recover},
    {"check", lgr_check_repo},
    {"pack_count", lgr_pack_count},
    {"pack", lgr_pack},
    {"close", lgr_close},
    {NULL, NULL},
};

static const luaL_Reg lgr_meta[] = {
    {"__gc", lgr_close},
    {"__close", lgr_close},
    {"__tostring", lgr_tostring},
    {NULL, NULL},
};

static const luaL_Reg lgr_funcs[] = {
    {"init", lgr_init},
    {"open", lgr_open},
    {"card_valid", lgr_card_valid},
    {"init_bare", lgr_init_bare},
    {"ls_remote", lgr_ls_remote},
    {NULL, NULL},
};

int luaopen_orket_gitrepo(lua_State *L) {
  luaL_newmetatable(L, LGR_META);
  luaL_setfuncs(L, lgr_meta, 0);
  luaL_newlib(L, lgr_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, lgr_funcs);
  lua_pushliteral(L, GR_TURN_TRAILER);
  lua_setfield(L, -2, "TURN_TRAILER");
  return 1;
}
