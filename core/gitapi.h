/* gitapi.h: libgit2's entry points, loaded with dlopen when the first repository is opened.
 * libgit2 brings mbedTLS, libssh2, Kerberos and more with it; resolving their symbols took a
 * large share of the start-up time of every orket command, though most never touch git.
 * <git2.h> is used for its types alone. */
#ifndef ORKET_GITAPI_H
#define ORKET_GITAPI_H

#include <stddef.h>

#include <git2.h>
#include <git2/sys/commit.h>     /* git_commit_create_from_ids */
#include <git2/sys/repository.h> /* git_repository_set_index */
#include <git2/sys/odb_backend.h> /* git_odb_backend_one_pack (core/gitrepo/pack.c) */

/* The functions the git layer (core/gitrepo/, gitdiff.c, gitexport.c) uses, each named without its git_ prefix. One list makes both the
 * table and its loader, and each field takes its type from libgit2's own declaration, so
 * the two cannot disagree. */
#define GITAPI_FUNCS(X) \
  X(attr_cache_flush) X(attr_get) X(attr_value)                                              \
  X(blob_create_from_buffer) X(blob_free) X(blob_rawcontent) X(blob_rawsize) X(blob_is_binary) X(blob_lookup) X(branch_create)  \
  X(branch_iterator_free) X(branch_iterator_new) X(branch_lookup) X(branch_next)             \
  X(checkout_options_init) X(checkout_tree) X(commit_author) X(commit_create) X(commit_create_from_ids) \
  X(commit_free) X(commit_id) X(commit_lookup) X(commit_message) X(commit_parent_id)         \
  X(commit_parentcount) X(commit_tree) X(commit_tree_id) X(config_free)                     \
  X(config_add_file_ondisk) X(config_get_bool) X(config_get_string) X(config_new) X(config_parse_bool)     \
  X(credential_userpass_plaintext_new) X(diff_free) X(diff_get_delta) X(diff_num_deltas)     \
  X(diff_tree_to_tree) X(error_last) X(fetch_options_init) X(graph_descendant_of)            \
  X(ignore_path_is_ignored) X(index_add) X(index_add_all) X(index_add_bypath)                \
  X(index_conflict_get) X(index_conflict_iterator_free) X(index_conflict_iterator_new)       \
  X(index_conflict_next) X(index_conflict_remove) X(index_entrycount) X(index_find_prefix) X(index_free) X(index_get_byindex)         \
  X(index_get_bypath) X(index_has_conflicts) X(index_new) X(index_open) X(index_path) X(index_read) X(index_read_tree)  \
  X(index_remove_bypath) X(index_update_all) X(index_write) X(index_write_tree)              \
  X(index_write_tree_to) X(libgit2_init) X(libgit2_opts) X(libgit2_shutdown)                 \
  X(merge_bases) X(merge_commits) X(merge_file_from_index)                                  \
  X(merge_file_options_init) X(merge_file_result_free) X(merge_options_init) X(merge_trees)  \
  X(message_trailer_array_free) X(message_trailers) X(odb_exists) X(odb_free) X(odb_hash) X(odb_hashfile) \
  X(oid_equal) X(oid_fromstr) X(oid_tostr) X(oidarray_dispose)                               \
  X(push_options_init) X(reference_create_matching) X(reference_delete) X(reference_free)    \
  X(reference_lookup) X(reference_name) X(reference_name_is_valid) X(reference_name_to_id)   \
  X(reference_peel) X(reference_symbolic_target) X(reference_type) X(remote_connect)         \
  X(remote_create_detached) X(remote_create_options_init) X(remote_create_with_opts) X(remote_download) X(remote_update_tips)         \
  X(remote_fetch) X(remote_free) X(remote_init_callbacks) X(remote_ls) X(remote_push)        \
  X(repository_commondir) X(repository_config_snapshot) X(repository_free)                  \
  X(repository_hashfile) X(repository_head)                                                  \
  X(repository_head_unborn) X(repository_index) X(repository_init_ext)                       \
  X(repository_init_options_init) X(repository_is_bare) X(repository_is_worktree)            \
  X(repository_odb) X(repository_open_ext) X(repository_path) X(repository_set_head)         \
  X(repository_new) X(repository_set_config) X(repository_set_index) X(repository_set_workdir) X(repository_workdir) X(revwalk_free)    \
  X(revwalk_hide_ref) X(revwalk_new) X(revwalk_next) X(revwalk_push) X(revwalk_push_ref)      \
  X(revwalk_sorting)                                                                         \
  X(signature_free) X(signature_now) X(status_byindex) X(status_list_entrycount)             \
  X(status_list_free) X(status_list_new) X(status_options_init) X(strarray_dispose)          \
  X(tree_entry_bypath) X(tree_entry_filemode) X(tree_entry_free) X(tree_entry_id) X(tree_entry_name) X(tree_entry_type) X(tree_free) X(tree_id)             \
  X(tree_lookup) X(tree_walk) X(worktree_add) X(worktree_add_options_init) X(worktree_free)  \
  X(worktree_list) X(worktree_lookup) X(worktree_path) X(worktree_prune)                     \
  X(worktree_prune_options_init) X(worktree_validate)                                        \
  X(revparse_single) X(object_peel) X(object_free) X(object_id) X(merge_base)                \
  X(diff_options_init) X(diff_find_similar) X(patch_from_diff) X(patch_get_delta)            \
  X(patch_line_stats) X(patch_to_buf) X(patch_free) X(buf_dispose) X(odb_read_header)        \
  X(packbuilder_new) X(packbuilder_set_threads) X(packbuilder_insert) X(packbuilder_write)   \
  X(packbuilder_name) X(packbuilder_object_count) X(packbuilder_free) X(odb_backend_one_pack)

typedef struct gitapi {
  void *lib;
#define GITAPI_FIELD(name) __typeof__(git_##name) *name;
  GITAPI_FUNCS(GITAPI_FIELD)
#undef GITAPI_FIELD
} gitapi;

/* Loads libgit2 (the soname of the version whose headers this was built with, e.g.
 * libgit2.so.1.5) and every entry point above. Returns 0, or -1 with a message naming what
 * is missing. Once loaded, libgit2 stays loaded until the process ends (see gitapi.c); each
 * table holds a reference. libgit2 itself is not set up here: see git_libgit2_init. */
int gitapi_open(gitapi *api, char *err, size_t errlen);

/* Drops the table's reference; the table must not be used afterwards. Idempotent. */
void gitapi_close(gitapi *api);

#endif
