/* tests.h: the list of C unit tests. Add a test: write TEST(name) in a file under tests/c/ and
 * add X(name) here. */
#ifndef ORKET_TESTS_H
#define ORKET_TESTS_H

#include "check.h"

#define ORKET_C_TESTS(X)                 \
  X(test_memcap_counts)                  \
  X(test_bytecode_bundle)                \
  X(test_bytecode_encode_name)           \
  X(test_httpd_parse_listen)             \
  X(test_httpd_is_loopback)              \
  X(test_httpd_lifecycle)                \
  X(test_httpproxy_cookie)               \
  X(test_memcap_ceiling)                 \
  X(test_memcap_nested)                  \
  X(test_memcap_headroom)                \
  X(test_budget_instructions)            \
  X(test_budget_deadline)                \
  X(test_budget_sticky)                  \
  X(test_budget_call_cap)                \
  X(test_runtime_open_close)             \
  X(test_runtime_pcall_traceback)        \
  X(test_runtime_pcall_nonstring)        \
  X(test_runtime_pcall_hostile_errors)   \
  X(test_runtime_find_home)              \
  X(test_home_exe_dir_without_proc)      \
  X(test_home_locate_prefix)             \
  X(test_runtime_memory_bomb_contained)  \
  X(test_runtime_read_script)            \
  X(test_statemachine_table)             \
  X(test_statemachine_refusal_messages)  \
  X(test_statemachine_wait_reasons)      \
  X(test_statemachine_dependencies)      \
  X(test_statemachine_review_guards)     \
  X(test_statemachine_unknown_names)     \
  X(test_statemachine_actors)            \
  X(test_gate_glob)                      \
  X(test_schema_validate)                \
  X(test_gate_order)                     \
  X(test_gate_nested_paths)              \
  X(test_gate_effects)                   \
  X(test_gate_command_ask)               \
  X(test_pattern_cases)                  \
  X(test_pattern_depth)                  \
  X(test_pattern_budget)                 \
  X(test_toolscan)                        \
  X(test_frame_sse_basic)                 \
  X(test_frame_sse_every_two_chunk_split) \
  X(test_frame_sse_split_crlf_and_done)   \
  X(test_frame_sse_cr_at_chunk_end)       \
  X(test_frame_sse_finish_lenient)        \
  X(test_frame_ndjson)                    \
  X(test_frame_caps)                      \
  X(test_frame_raw)                        \
  X(test_chatwire_openai_content)          \
  X(test_chatwire_openai_tool_calls)       \
  X(test_chatwire_failures)                \
  X(test_chatwire_depth)                   \
  X(test_chatwire_pieces)                  \
  X(test_chatwire_content_parts)           \
  X(test_chatwire_ollama)                  \
  X(test_http_parse_date)                  \
  X(test_jsonout_strings)                  \
  X(test_jsonout_numbers)                  \
  X(test_jsonout_raw_empty)                \
  X(test_otlpspan_bytes)                   \
  X(test_inert_decode)                     \
  X(test_workspace_mount_id)               \
  X(test_workspace_bind_mount)             \
  X(test_workspace_fd_exhaustion)          \
  X(test_workspace_dotgit)                 \
  X(test_lockfile_shared_exclusive)        \
  X(test_gitrepo_init_worktree)            \
  X(test_gitrepo_commit_idempotent)        \
  X(test_gitrepo_merges)                   \
  X(test_gitrepo_recovery)                 \
  X(test_gitrepo_card_dir_cut_short)       \
  X(test_gitrepo_card_dir_emptied)         \
  X(test_gitrepo_view)                     \
  X(test_gitrepo_view_base_kept)           \
  X(test_gitrepo_durable)                  \
  X(test_gitrepo_conflict_kinds)           \
  X(test_gitrepo_push)                     \
  X(test_gitcrash)                         \
  X(test_hmac_vectors)                     \
  X(test_jose_alg_pinning)               \
  X(test_jose_sign_verify)               \
  X(test_hmac_webhook_signature)         \
  X(test_seal_round_trip_and_refusals)     \
  X(test_seal_buffer_round_trip_and_refusals) \
  X(test_seal_every_byte)                  \
  X(test_auditchain_hash_and_signature)    \
  X(test_password_hash_and_verify)         \
  X(test_pg_mask_password)               \
  X(test_pg_scrub_conninfo)              \
  X(test_pg_sqlstate_codes)              \
  X(test_confine_layer_names)              \
  X(test_confine_spec_roundtrip)           \
  X(test_confine_decode_rejects)           \
  X(test_proc_stream_head_tail)            \
  X(test_proc_stream_grows_as_needed)      \
  X(test_confine_spec_paths)               \
  X(test_confine_spec_inward)              \
  X(test_confine_spec_relay)               \
  X(test_confine_path_ok)                  \
  X(test_confine_view_plan)                \
  X(test_confine_strip_accounts)           \
  X(test_confine_pids_paths)              \
  X(test_confine_relay_services)           \
  X(test_confine_spec_services)

#define X(name) TEST(name);
ORKET_C_TESTS(X)
#undef X

#endif
