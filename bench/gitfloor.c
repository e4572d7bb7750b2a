/* gitfloor.c: the floor under bench/gitscale.lua's git figures: per card, the least libgit2
 * work the engine's layout of working directories implies (docs/git.md), with the same
 * durability settings (objects and refs fsync'd): a branch orket/<CARD> from main; a working
 * directory holding main's files (one reused directory with an index of its own, switched to
 * the card's tree by a safe checkout, so only what changed since its last card is written);
 * the card's change (one new file) committed on the branch from that index; the branch
 * merged into main (a fast-forward here: cards run one after another); main's working tree
 * updated at the merged paths only. Each checkout is limited to the paths that differ between
 * the trees, so nothing walks the whole working directory. No Lua, no store, no model.
 *   gitfloor DIR CARDS  -> prints "us_per_card cpu_us_per_card"
 * DIR must not exist; it is made and left for the caller to remove. */
#define _POSIX_C_SOURCE 200809L
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

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: gitfloor DIR CARDS\n");
    return 2;
  }
  const char *dir = argv[1];
  int cards = atoi(argv[2]);
  char ws[2048], wd[2048], idxpath[2048], p[4096];
  if (strlen(dir) > 1000) {
    fprintf(stderr, "gitfloor: DIR too long\n");
    return 2;
  }
  snprintf(ws, sizeof ws, "%s/ws", dir);
  snprintf(wd, sizeof wd, "%s/wd", dir);
  snprintf(idxpath, sizeof idxpath, "%s/wd.index", dir);
  if (mkdir(dir, 0755) != 0 || mkdir(ws, 0755) != 0 || mkdir(wd, 0755) != 0) {
    perror(dir);
    return 1;
  }
  git_libgit2_init();
  check(git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1), "options");
  /* a tree written from an index is not checked object by object (every blob in it was
   * written or read by libgit2 itself): otherwise each commit opens every file's object */
  check(git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 0), "options");

  /* main with a first commit of one file, as orket init makes it */
  git_repository *repo = NULL;
  git_repository_init_options io;
  git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
  io.initial_head = "main";
  check(git_repository_init_ext(&repo, ws, &io), "init");
  snprintf(p, sizeof p, "%s/README.md", ws);
  write_file(p, "notes\n");
  git_signature *sig = NULL;
  check(git_signature_now(&sig, "orket", "orket@orket.invalid"), "signature");
  git_index *midx = NULL;
  git_oid tid, cid;
  git_tree *tree = NULL;
  check(git_repository_index(&midx, repo), "index");
  check(git_index_add_bypath(midx, "README.md"), "add");
  check(git_index_write_tree(&tid, midx), "tree");
  check(git_tree_lookup(&tree, repo, &tid), "tree");
  check(git_commit_create(&cid, repo, "HEAD", sig, sig, NULL, "Initial commit\n", tree, 0, NULL), "commit");
  check(git_index_write(midx), "index write");
  git_tree_free(tree);

  /* the card's working directory: the main repository opened again, its working
   * directory and index set to the reused directory's own */
  git_repository *card = NULL;
  git_index *cidx = NULL;
  check(git_repository_open(&card, ws), "open");
  check(git_repository_set_workdir(card, wd, 0), "workdir");
  check(git_index_open(&cidx, idxpath), "index open");
  git_repository_set_index(card, cidx);

  long long t0 = floor_now_us(), c0 = floor_cpu_us();
  for (int i = 1; i <= cards; i++) {
    char bname[64], ref[96], msg[128], fname[64];
    git_oid mid, nid;
    git_commit *mc = NULL;
    git_tree *mt = NULL, *nt = NULL;
    git_reference *br = NULL, *moved = NULL;
    snprintf(bname, sizeof bname, "orket/B-%d", i);
    snprintf(ref, sizeof ref, "refs/heads/%s", bname);
    /* a branch from main */
    check(git_reference_name_to_id(&mid, repo, "refs/heads/main"), "main");
    check(git_commit_lookup(&mc, card, &mid), "main commit");
    check(git_branch_create(&br, card, bname, mc, 0), "branch");
    /* the working directory holds main's files: only what changed is written */
    check(git_commit_tree(&mt, mc), "main tree");
    check(git_index_read(cidx, 0), "index read");
    switch_to(card, cidx, mt);
    /* the card's change, committed from the index */
    snprintf(fname, sizeof fname, "f-%d.txt", i);
    snprintf(p, sizeof p, "%s/%s", wd, fname);
    char text[96];
    snprintf(text, sizeof text, "the change of card B-%d\n", i);
    write_file(p, text);
    check(git_index_add_bypath(cidx, fname), "add");
    check(git_index_write_tree(&tid, cidx), "tree");
    check(git_tree_lookup(&nt, card, &tid), "tree");
    snprintf(msg, sizeof msg, "B-%d: turn 1\n\nOrket-Turn: 1/B-%d/1\n", i, i);
    const git_commit *parents[1] = {mc};
    check(git_commit_create(&nid, card, ref, sig, sig, NULL, msg, nt, 1, parents), "commit");
    check(git_index_write(cidx), "index write");
    /* merged into main: main is its parent, so a fast-forward (compare-and-swap) */
    check(git_reference_create_matching(&moved, repo, "refs/heads/main", &nid, 1, &mid, "merge"), "main");
    /* main's working tree follows at the merged paths only */
    git_checkout_options co;
    git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
    co.checkout_strategy = GIT_CHECKOUT_SAFE | GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH;
    co.baseline_index = midx; /* what main's files were last checked out as */
    char *paths[1] = {fname};
    co.paths.strings = paths;
    co.paths.count = 1;
    git_tree *mtree = NULL; /* the same tree, as main's handle sees it */
    check(git_tree_lookup(&mtree, repo, &tid), "tree");
    check(git_checkout_tree(repo, (git_object *)mtree, &co), "main checkout");
    git_tree_free(mtree);
    git_reference_free(moved);
    git_reference_free(br);
    git_tree_free(nt);
    git_tree_free(mt);
    git_commit_free(mc);
  }
  long long us = floor_now_us() - t0, cpu = floor_cpu_us() - c0;
  printf("%.1f %.1f\n", (double)us / cards, (double)cpu / cards);
  git_index_free(cidx);
  git_repository_free(card);
  git_index_free(midx);
  git_signature_free(sig);
  git_repository_free(repo);
  git_libgit2_shutdown();
  return 0;
}
