/* pattern.h: Lua 5.4's pattern matcher (find/match/gmatch/gsub semantics) as pure C with a
 * step budget, so a pathological pattern cannot hold the thread: every match step is
 * counted, and a caller-supplied check (the sandbox's deadline and instruction budget) is
 * asked every PAT_CHECK_EVERY steps. Reentrant: all state lives in a pat_state. The Lua
 * binding (lpattern.c) builds the string functions on top. */
#ifndef ORKET_PATTERN_H
#define ORKET_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#define PAT_MAXCAPTURES 32     /* as LUA_MAXCAPTURES */
#define PAT_MAXCCALLS 200      /* matcher recursion depth, as lstrlib.c's MAXCCALLS */
#define PAT_CHECK_EVERY 1024   /* steps between calls of the check callback */
#define PAT_CAP_UNFINISHED (-1)
#define PAT_CAP_POSITION (-2)

typedef enum pat_status {
  PAT_OK = 0,
  PAT_EPATTERN, /* a malformed pattern or capture misuse: msg is Lua's own message */
  PAT_ESTEPS,   /* the step budget is spent: "pattern too complex: step budget exhausted" */
  PAT_ECHECK    /* the check callback said stop: "pattern too complex: <its reason>" */
} pat_status;

/* Called every PAT_CHECK_EVERY steps with the steps since its last call (and once more
 * by pat_flush). Returns 0 to go on, or nonzero to stop with a reason written into why. */
typedef int (*pat_check_fn)(void *ud, uint64_t steps, char *why, size_t whylen);

typedef struct pat_capture {
  const char *init;
  ptrdiff_t len; /* bytes, or PAT_CAP_UNFINISHED / PAT_CAP_POSITION */
} pat_capture;

typedef struct pat_state {
  const char *src_init, *src_end; /* the subject */
  const char *p_end;              /* end of the pattern */
  int level;                      /* captures (finished or not) */
  int matchdepth;                 /* recursion left before "pattern too complex" */
  uint64_t steps;                 /* spent since pat_prepare / pat_reset_steps */
  uint64_t max_steps;             /* 0: no cap */
  uint64_t checked;               /* steps already reported to check */
  uint64_t next_check;
  pat_check_fn check;
  void *check_ud;
  pat_status status;
  char msg[160];
  pat_capture capture[PAT_MAXCAPTURES];
} pat_state;

/* Sets up a match of pattern p (lp bytes, after any '^' the caller stripped) against the
 * subject s (ls bytes). Neither needs a NUL terminator. max_steps 0 means no cap; check
 * may be NULL. */
void pat_prepare(pat_state *ms, const char *s, size_t ls, const char *p, size_t lp,
                 uint64_t max_steps, pat_check_fn check, void *check_ud);

/* Before each match attempt: forget captures, restore the recursion allowance. */
void pat_reprepare(pat_state *ms);

/* Starts a fresh step count (each call of a gmatch iterator gets its own). */
void pat_reset_steps(pat_state *ms);

/* Matches p (pointing into the prepared pattern) at subject position s. Returns the end
 * of the match, or NULL: no match when ms->status is PAT_OK, else an error with ms->msg. */
const char *pat_match(pat_state *ms, const char *s, const char *p);

/* string.find/match's search: tries positions from s1 on (only s1 when anchor). Returns
 * the end of the first match and sets *start, or NULL (check ms->status). */
const char *pat_search(pat_state *ms, const char *s1, const char *p, int anchor,
                       const char **start);

/* Reports the steps not yet passed to the check callback. Returns 0, or -1 when the
 * callback says stop (ms->status = PAT_ECHECK, ms->msg set). */
int pat_flush(pat_state *ms);

/* The captures a successful match s..e yields: the whole match when the pattern has none
 * (and s is not NULL), else ms->level. */
int pat_ncaptures(const pat_state *ms, const char *s);

/* Capture i (0-based) of a match s..e. Returns its length with *cap set, or
 * PAT_CAP_POSITION with *pos set (1-based), or -1 with ms->status/msg set ("invalid
 * capture index %N", "unfinished capture"). */
ptrdiff_t pat_get_capture(pat_state *ms, int i, const char *s, const char *e,
                          const char **cap, size_t *pos);

/* The capture that "%n" (n = '0'..'9' as a character) names in a pattern or replacement:
 * checks it like Lua. Returns the 0-based index or -1 with ms->status/msg set. */
int pat_check_capture(pat_state *ms, int l);

/* Whether p has no special characters (string.find then searches plainly). */
int pat_nospecials(const char *p, size_t lp);

/* The first occurrence of s2 in s1, or NULL. */
const char *pat_memfind(const char *s1, size_t l1, const char *s2, size_t l2);

/* Lua's posrelatI: an initial position (1-based, negative from the end) clipped to >= 1. */
size_t pat_posrelat(long long pos, size_t len);

#endif
