/* gitfloor.c: the floor under bench/gitscale.lua's git figures: per card, the least libgit2
 * work the engine's layout of working directories implies (docs/git.md), with the same
 * durability (libgit2's syncs off, each ref move made durable by a syncfs before and after
 * it, as the engine does: docs/git.md, Durable writes): a branch orket/<CARD> from main; a working
 * directory holding main's files (a pool of reused directories, each with an index of its
 * own, switched to the card's tree by a safe checkout, so only what changed since its last
 * card is written); the card's change (one new file) committed on the branch from that
 * index; the branch merged into main; main's working tree updated at the merged paths only.
 * Each checkout is limited to the paths that differ between the trees, so nothing walks the
 * whole working directory. No Lua, no store, no model.
 * With CONCURRENCY cards in flight (default 1), card i begins once card i-CONCURRENCY is
 * merged, in that card's directory, and is merged after the CONCURRENCY-1 cards begun before
 * it: as the engine's cards go in a steady state. At 1 each merge is a fast-forward and a
 * directory has nothing to catch up; above 1 a merge is a three-way merge from the main the
 * card began on (known here, never searched for), written as a merge commit, and a
 * directory catches up with the cards merged since it was last used.
 *   gitfloor DIR CARDS [CONCURRENCY]  -> prints "us_per_card cpu_us_per_card"
 * DIR must not exist; it is made and left for the caller to remove. */
#define _GNU_SOURCE /* syncfs */
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/repository.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floor.h"

static void check(int rc, const char *what) {
  if (rc < 0) {
    const git_error *g = git_error_last();
    fprintf(stderr, "gitfloor: %s: %s\n", what, g && g->message ? g->message : "?");
    exit(1);
  }
}

/* what the repository's files hold made durable, as the engine's gr_sync does */
static void sync_git(git_repository *repo) {
  int fd = open(git_repository_commondir(repo), O_RDONLY | O_DIRECTORY);
  if (fd < 0 || syncfs(fd) != 0) check(-1, "syncfs");
  close(fd);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

/* Checks out tree into repo's working directory against its index (the baseline: what
 * the files were last checked out as), writing only the paths that differ. */
static void switch_to(git_repository *repo, git_index *idx, git_tree *tree) {
  git_oid bid;
  git_tree *base = NULL;
  git_diff *diff = NULL;
  check(git_index_write_tree(&bid, idx), "baseline");
  check(git_tree_lookup(&base, repo, &bid), "baseline");
  check(git_diff_tree_to_tree(&diff, repo, base, tree, NULL), "diff");
  size_t n = git_diff_num_deltas(diff);
  if (n > 0) {
    char **paths = calloc(n, sizeof *paths);
    if (paths == NULL) {
      fprintf(stderr, "gitfloor: out of memory\n");
      exit(1);
    }
    for (size_t i = 0; i < n; i++) {
      const git_diff_delta *d = git_diff_get_delta(diff, i);
      paths[i] = (char *)(d->new_file.path ? d->new_file.path : d->old_file.path);
    }
    git_checkout_options co;
    git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
    co.checkout_strategy = GIT_CHECKOUT_SAFE | GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH;
    co.baseline = base;
    co.paths.strings = paths;
    co.paths.count = n;
    check(git_checkout_tree(repo, (git_object *)tree, &co), "checkout");
    free(paths);
  }
  git_diff_free(diff);
  git_tree_free(base);
}

/* A directory of the pool: the main repository opened again, its working directory and
 * index set to the directory's own. */
typedef struct slot {
  git_repository *repo;
  git_index *idx;
  char wd[2048];
} slot;

/* A card in flight: what its merge needs. */
typedef struct flight {
  int card;
  git_oid base; /* main when it began */
  git_oid tip;  /* its commit */
  git_oid tree; /* its commit's tree */
  char fname[64];
} flight;

typedef struct floor_ctx {
  git_repository *repo; /* main's */
  git_index *midx;
  git_signature *sig;
} floor_ctx;

/* Card i begins in slot s: a branch from main, the directory switched to main's tree, the
 * card's change committed from the directory's index. */
static void begin(floor_ctx *fc, slot *s, flight *f, int i) {
  char bname[64], ref[96], msg[128], p[4096], text[96];
  git_commit *mc = NULL;
  git_tree *mt = NULL, *nt = NULL;
  git_reference *br = NULL;
  snprintf(bname, sizeof bname, "orket/B-%d", i);
  snprintf(ref, sizeof ref, "refs/heads/%s", bname);
  f->card = i;
  check(git_reference_name_to_id(&f->base, fc->repo, "refs/heads/main"), "main");
  check(git_commit_lookup(&mc, s->repo, &f->base), "main commit");
  check(git_branch_create(&br, s->repo, bname, mc, 0), "branch");
  /* the working directory holds main's files: only what changed is written */
  check(git_commit_tree(&mt, mc), "main tree");
  check(git_index_read(s->idx, 0), "index read");
  switch_to(s->repo, s->idx, mt);
  /* the card's change, committed from the index */
  snprintf(f->fname, sizeof f->fname, "f-%d.txt", i);
  snprintf(p, sizeof p, "%s/%s", s->wd, f->fname);
  snprintf(text, sizeof text, "the change of card B-%d\n", i);
  write_file(p, text);
  check(git_index_add_bypath(s->idx, f->fname), "add");
  check(git_index_write_tree(&f->tree, s->idx), "tree");
  check(git_tree_lookup(&nt, s->repo, &f->tree), "tree");
  snprintf(msg, sizeof msg, "B-%d: turn 1\n\nOrket-Turn: 1/B-%d/1\n", i, i);
  const git_commit *parents[1] = {mc};
  git_reference *cref = NULL;
  check(git_commit_create(&f->tip, s->repo, NULL, fc->sig, fc->sig, NULL, msg, nt, 1, parents), "commit");
  sync_git(s->repo);
  check(git_reference_create_matching(&cref, s->repo, ref, &f->tip, 1, git_commit_id(mc), "commit"), "commit");
  git_reference_free(cref);
  sync_git(s->repo);
  check(git_index_write(s->idx), "index write");
  git_reference_free(br);
  git_tree_free(nt);
  git_tree_free(mt);
  git_commit_free(mc);
}

/* Merges card f into main: a fast-forward when main has not moved since the card began,
 * else a merge commit of the three-way merge from there; then main's working tree follows
 * at the card's path only. */
static void merge(floor_ctx *fc, flight *f) {
  git_repository *repo = fc->repo;
  git_oid mid, target, ttree;
  git_reference *moved = NULL;
  check(git_reference_name_to_id(&mid, repo, "refs/heads/main"), "main");
  if (git_oid_equal(&mid, &f->base)) {
    target = f->tip;
    ttree = f->tree;
  } else {
    git_commit *bc = NULL, *mc = NULL, *cc = NULL;
    git_tree *bt = NULL, *mt = NULL, *ct = NULL, *tree = NULL;
    git_index *idx = NULL;
    char msg[96];
    check(git_commit_lookup(&bc, repo, &f->base), "base");
    check(git_commit_lookup(&mc, repo, &mid), "main commit");
    check(git_commit_lookup(&cc, repo, &f->tip), "card commit");
    check(git_commit_tree(&bt, bc), "base tree");
    check(git_commit_tree(&mt, mc), "main tree");
    check(git_commit_tree(&ct, cc), "card tree");
    check(git_merge_trees(&idx, repo, bt, mt, ct, NULL), "merge");
    if (git_index_has_conflicts(idx)) check(-1, "merge conflict");
    check(git_index_write_tree_to(&ttree, idx, repo), "merged tree");
    check(git_tree_lookup(&tree, repo, &ttree), "merged tree");
    snprintf(msg, sizeof msg, "Merge orket/B-%d into main\n", f->card);
    const git_commit *parents[2] = {mc, cc};
    check(git_commit_create(&target, repo, NULL, fc->sig, fc->sig, NULL, msg, tree, 2, parents), "merge commit");
    sync_git(repo);
    git_tree_free(tree);
    git_index_free(idx);
    git_tree_free(ct);
    git_tree_free(mt);
    git_tree_free(bt);
    git_commit_free(cc);
    git_commit_free(mc);
    git_commit_free(bc);
  }
  check(git_reference_create_matching(&moved, repo, "refs/heads/main", &target, 1, &mid, "merge"), "main");
  git_reference_free(moved);
  sync_git(repo);
  /* main's working tree follows at the merged paths only */
  git_tree *tt = NULL; /* the merged tree, as main's handle sees it */
  check(git_tree_lookup(&tt, repo, &ttree), "merged tree");
  git_checkout_options co;
  git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
  co.checkout_strategy = GIT_CHECKOUT_SAFE | GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH;
  co.baseline_index = fc->midx; /* what main's files were last checked out as */
  char *paths[1] = {f->fname};
  co.paths.strings = paths;
  co.paths.count = 1;
  check(git_checkout_tree(repo, (git_object *)tt, &co), "main checkout");
  git_tree_free(tt);
  f->card = 0;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: gitfloor DIR CARDS [CONCURRENCY]\n");
    return 2;
  }
  const char *dir = argv[1];
  int cards = atoi(argv[2]), k = argc == 4 ? atoi(argv[3]) : 1;
  if (cards < 1 || k < 1 || k > 64) {
    fprintf(stderr, "gitfloor: CARDS must be at least 1 and CONCURRENCY 1 to 64\n");
    return 2;
  }
  char ws[2048], p[4096];
  if (strlen(dir) > 1000) {
    fprintf(stderr, "gitfloor: DIR too long\n");
    return 2;
  }
  snprintf(ws, sizeof ws, "%s/ws", dir);
  if (mkdir(dir, 0755) != 0 || mkdir(ws, 0755) != 0) {
    perror(dir);
    return 1;
  }
  git_libgit2_init();
  check(git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 0), "options");
  /* a tree written from an index is not checked object by object (every blob in it was
   * written or read by libgit2 itself): otherwise each commit opens every file's object */
  check(git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 0), "options");

  /* main with a first commit of one file, as orket init makes it */
  floor_ctx fc = {0};
  git_repository_init_options io;
  git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
  io.initial_head = "main";
  check(git_repository_init_ext(&fc.repo, ws, &io), "init");
  snprintf(p, sizeof p, "%s/README.md", ws);
  write_file(p, "notes\n");
  check(git_signature_now(&fc.sig, "orket", "orket@orket.invalid"), "signature");
  git_oid tid, cid;
  git_tree *tree = NULL;
  check(git_repository_index(&fc.midx, fc.repo), "index");
  check(git_index_add_bypath(fc.midx, "README.md"), "add");
  check(git_index_write_tree(&tid, fc.midx), "tree");
  check(git_tree_lookup(&tree, fc.repo, &tid), "tree");
  check(git_commit_create(&cid, fc.repo, "HEAD", fc.sig, fc.sig, NULL, "Initial commit\n", tree, 0, NULL), "commit");
  check(git_index_write(fc.midx), "index write");
  git_tree_free(tree);

  slot *slots = calloc((size_t)k, sizeof *slots);
  flight *fl = calloc((size_t)k, sizeof *fl);
  if (slots == NULL || fl == NULL) {
    fprintf(stderr, "gitfloor: out of memory\n");
    return 1;
  }
  for (int s = 0; s < k; s++) {
    char ip[2048];
    snprintf(slots[s].wd, sizeof slots[s].wd, "%s/wd-%d", dir, s);
    snprintf(ip, sizeof ip, "%s/wd-%d.index", dir, s);
    if (mkdir(slots[s].wd, 0755) != 0) {
      perror(slots[s].wd);
      return 1;
    }
    check(git_repository_open(&slots[s].repo, ws), "open");
    check(git_repository_set_workdir(slots[s].repo, slots[s].wd, 0), "workdir");
    check(git_index_open(&slots[s].idx, ip), "index open");
    git_repository_set_index(slots[s].repo, slots[s].idx);
  }

  long long t0 = floor_now_us(), c0 = floor_cpu_us();
  for (int i = 1; i <= cards; i++) {
    begin(&fc, &slots[(i - 1) % k], &fl[(i - 1) % k], i);
    if (i >= k) merge(&fc, &fl[i % k]); /* card i-k+1, the oldest in flight */
  }
  for (int i = cards + 1; i < cards + k; i++) /* the last ones in flight, oldest first */
    if (i - k + 1 >= 1 && fl[i % k].card) merge(&fc, &fl[i % k]);
  long long us = floor_now_us() - t0, cpu = floor_cpu_us() - c0;
  printf("%.1f %.1f\n", (double)us / cards, (double)cpu / cards);
  for (int s = 0; s < k; s++) {
    git_index_free(slots[s].idx);
    git_repository_free(slots[s].repo);
  }
  free(slots);
  free(fl);
  git_index_free(fc.midx);
  git_signature_free(fc.sig);
  git_repository_free(fc.repo);
  git_libgit2_shutdown();
  return 0;
}
