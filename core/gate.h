/* gate.h: the decision on every tool call an agent makes, in one function. Checks, in
 * order, each with its reason code: the tool exists (TOOL_UNKNOWN); the role may use it
 * (ROLE_FORBIDDEN); the model's argument text was a JSON object (ARGS_MALFORMED); the
 * arguments match the tool's schema (ARGS_INVALID); paths are confined (PATH_ESCAPE) and
 * writable (PATH_PROTECTED); per-turn and per-run limits (LIMIT_EXCEEDED); a status change is
 * legal for this actor on this card (statemachine.c's sm_check, its own code); operator
 * policy rules, deny -> ask -> allow, first match within a level (POLICY_DENY/ASK/ALLOW, or
 * POLICY_ERROR when a predicate fails); a program a tool would run that the project does
 * not list is asked about (COMMAND_ASK). Otherwise ALLOWED. Pure C over schema.h values.
 * Also the one table of tool effect kinds, which the engine reads through the binding. */
#ifndef ORKET_GATE_H
#define ORKET_GATE_H

#include <stddef.h>

#include "schema.h"

typedef enum { GATE_ALLOW = 0, GATE_DENY, GATE_ASK } gate_verdict;

/* What a tool's effect kind means, to the gate and to the engine. */
enum {
  GATE_EFFECT_WRITES = 1u << 0,  /* changes the workspace: its paths must be writable and
                                    count as files touched */
  GATE_EFFECT_OUTSIDE = 1u << 1, /* acts outside the store: the engine journals its intent
                                    and runs it between two transactions of the step */
  GATE_EFFECT_PROGRAM = 1u << 2, /* runs the program args.argv names: asked about unless the
                                    project lists it (COMMAND_ASK) */
  GATE_EFFECT_RECOVER = 1u << 3, /* may say how to recover after a crash cut it short
                                    (idempotent, recover) */
  GATE_EFFECT_DECLARED = 1u << 4, /* a tool file may declare it (the others are given by
                                     the runtime: an MCP server's tools) */
};

typedef struct gate_effect {
  const char *name; /* "read", "write", "board", "process", "sandbox", "mcp" */
  unsigned flags;   /* GATE_EFFECT_* */
} gate_effect;

/* The table of effect kinds, ending with a NULL name. */
const gate_effect *gate_effects(void);

/* The flags of an effect kind (NULL: "read"); -1 for a name not in the table. */
int gate_effect_flags(const char *name, unsigned *flags);

typedef struct gate_decision {
  gate_verdict verdict;
  char code[64];
  char reason[1024]; /* what was attempted and why it was refused (or allowed) */
  char remedy[512];  /* how to do it within the rules; "" when allowed */
  int rule;          /* index of the policy rule that decided, or -1 */
} gate_decision;

typedef struct gate_counters {
  long long calls, bytes, files;
} gate_counters;

/* 0 means no limit. bytes counts "content"-format arguments; files counts path arguments
 * of tools that write. */
typedef struct gate_limits {
  long long calls_turn, calls_run, bytes_turn, bytes_run, files_turn, files_run;
} gate_limits;

typedef enum { GATE_RULE_DENY = 0, GATE_RULE_ASK, GATE_RULE_ALLOW } gate_rule_level;

/* One operator rule. Every field given must match (NULL / 0-length: any). */
typedef struct gate_rule {
  gate_rule_level level;
  const char *name;                  /* where it was written: "policies/x.lua:12" */
  const char *tool, *role, *seat, *card, *status; /* globs */
  const char *const *paths;          /* some path argument matches one of these globs */
  size_t n_paths;
  const char *const *outside;        /* some path argument matches none of these globs */
  size_t n_outside;
  const char *const *arg_keys;       /* args[arg_keys[i]] is a string matching arg_globs[i] */
  const char *const *arg_globs;
  size_t n_args;
  int predicate;                     /* also ask the predicate callback */
  int ignore_case;                   /* paths, outside and arg_globs match as gate_glob_flags
                                        with GATE_GLOB_IGNORE_CASE */
  const char *reason, *remedy;       /* the operator's words, shown with the decision */
} gate_rule;

typedef struct gate_input {
  const char *seat;
  const char *const *roles;
  size_t n_roles;
  const char *tool;
  int tool_known;                    /* the registry holds this tool */
  const jv *schema;                  /* its parameters (checked with schema_check) */
  const char *effect;                /* its effect kind (gate_effects; NULL: "read") */
  const char *fixed_status;          /* the status the tool always moves the card to, or NULL */
  const char *const *allowed;        /* tools the actor's roles may use */
  size_t n_allowed;
  int restrict_tools;                /* 0: no role tool list was given */
  const jv *args;                    /* NULL: none (judged as {}) */
  /* Arguments that cannot be judged: args_error, the model's text was not a JSON object
   * (ARGS_MALFORMED, with this reason); args_bad, they are not plain data (ARGS_INVALID).
   * Either is refused right after the tool and role checks, never judged as {}. */
  const char *args_error, *args_bad;
  /* The card's facts, for the state machine. type NULL: "issue". deps_open: some card it
   * depends on is not done (0: all are, or none). */
  const char *card_id, *card_status, *card_type, *card_worked_by;
  int card_deps_open;
  const char *fixed_reason;          /* the wait reason the tool's fixed status is entered with */
  gate_counters turn, run;
  gate_limits limits;
  schema_limits schema_limits;
  const gate_rule *rules;
  size_t n_rules;
  /* The programs a tool with GATE_EFFECT_PROGRAM runs unasked: args.argv[0] exactly as
   * written (no PATH lookup), the project's verify.commands. */
  const char *const *commands;
  size_t n_commands;
  /* Rules with predicate set: 1 matches, 0 does not, -1 failed (d->reason filled). */
  int (*predicate)(void *ud, size_t rule, gate_decision *d);
  void *ud;
} gate_input;

/* Decides; always fills d. A status change (the "status"-format argument, else the tool's
 * fixed_status) is put to sm_check as this actor (seat, roles) on this card, with the call's
 * top-level "wait_reason" string argument (fixed_reason for the fixed status). */
void gate_check(const gate_input *in, gate_decision *d);

/* What a call of a tool with this schema adds to the counters: the bytes of its "content"
 * strings and, for an effect that writes, its path arguments; by the same walk gate_check
 * uses. */
void gate_measure(const jv *schema, const jv *args, const char *effect, long long *bytes, long long *files);

/* Glob match: '*' any run without '/', '**' any run, '**' followed by '/' zero or more whole
 * directories, '?' one byte other than '/'; a trailing slash-double-star also matches the directory. Linear in
 * pattern x subject (no backtracking blow-up on hostile paths). The pattern ends at its NUL
 * (lgate.c refuses one holding a NUL); the subject is slen bytes, a NUL among them a byte
 * like another. Returns 1/0, or -1 when the pattern is longer than 512 bytes or the subject
 * longer than 4096. */
int gate_glob(const char *pattern, const char *s, size_t slen);

/* gate_glob's options. IGNORE_CASE: an ASCII letter of the pattern matches itself in either
 * case (a file from Windows or macOS may be named SERVER.PEM, and its filesystem may open it
 * as server.pem); every other byte, those of UTF-8 characters included, only itself. */
enum { GATE_GLOB_IGNORE_CASE = 1u << 0 };

/* gate_glob with options (0: gate_glob itself). */
int gate_glob_flags(const char *pattern, const char *s, size_t slen, unsigned flags);

/* The same match by the general table alone, without gate_glob's shortcuts (a pattern with
 * no wildcard; one star, first or last): the C tests hold gate_glob_flags to it. */
int gate_glob_table(const char *pattern, const char *s, size_t slen, unsigned flags);

#endif
