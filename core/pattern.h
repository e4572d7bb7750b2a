/* pattern.h: the Lua 5.4 pattern language (what string.find, match, gmatch and gsub
 * accept), compiled once into a flat program of nodes and run by a matcher that keeps its
 * alternatives on a bounded explicit stack and counts every step against a budget.
 * Pure C, reentrant, no allocation: the caller provides the program's memory. lpattern.c
 * builds the Lua functions on it. */
#ifndef ORKET_PATTERN_H
#define ORKET_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#define PAT_MAXCAPTURES 32   /* as many as stock Lua allows */
/* Open alternatives plus captures passed on one path, at most: stock Lua bounds the same
 * quantity (its recursion), so a pattern it calls "too complex" is refused here too. */
#define PAT_MAXNEST 200
#define PAT_CHECK_EVERY 1024 /* steps between calls of the check callback */

typedef enum pat_status {
  PAT_OK = 0,
  PAT_EPATTERN, /* a malformed pattern or capture misuse: msg is stock Lua's message */
  PAT_ESTEPS,   /* the step cap is spent: "pattern too complex: step budget exhausted (N steps)" */
  PAT_ECHECK    /* the check callback said stop: "pattern too complex: <its reason>" */
} pat_status;

/* Asked every PAT_CHECK_EVERY steps with the steps since its last call (and by
 * pat_run_flush). Returns 0 to go on, or nonzero to stop with a reason written into why. */
typedef int (*pat_check_fn)(void *ud, uint64_t steps, char *why, size_t whylen);

/* The budget and outcome of one or more matches. */
typedef struct pat_run {
  uint64_t steps;     /* counted since pat_run_init / pat_run_restart */
  uint64_t max_steps; /* 0: no cap */
  uint64_t reported;  /* steps already passed to check */
  uint64_t next_stop; /* the count at which the slow path (cap, check) runs next */
  pat_check_fn check; /* may be NULL */
  void *check_ud;
  pat_status status;  /* sticky: the first error is the one kept */
  char msg[160];
} pat_run;

/* A compiled pattern; lives in memory the caller provides (pat_prog_size bytes). */
typedef struct pat_prog pat_prog;

/* Bytes needed to compile a pattern of lp bytes. */
size_t pat_prog_size(size_t lp);

/* Compiles p (lp bytes, no NUL needed) into mem, which must be pat_prog_size(lp) bytes
 * aligned for any object (malloc, a Lua userdata). With anchor set, a leading '^' anchors
 * the match (find, match, gsub); without it '^' is an ordinary character (gmatch).
 * Never fails: a malformed piece compiles to a node that reports stock Lua's message when
 * a match reaches it, because stock Lua reports such mistakes only then ("x%" never
 * complains about a subject without an 'x'). Costs O(lp) steps, charged by the caller. */
pat_prog *pat_compile(void *mem, const char *p, size_t lp, int anchor);

/* Whether the program is anchored (began with '^' and was compiled with anchor set). */
int pat_anchored(const pat_prog *g);

typedef struct pat_capture {
  size_t at;    /* offset in the subject */
  ptrdiff_t len; /* bytes, or PAT_CAP_POSITION, or PAT_CAP_UNFINISHED */
} pat_capture;
#define PAT_CAP_UNFINISHED (-1)
#define PAT_CAP_POSITION (-2)

typedef struct pat_match {
  size_t start, end; /* the match is subject[start, end) */
  int ncaps;         /* captures the pattern defines */
  pat_capture cap[PAT_MAXCAPTURES];
} pat_match;

void pat_run_init(pat_run *r, uint64_t max_steps, pat_check_fn check, void *ud);

/* A fresh step count for the next call (each call of a gmatch iterator has its own). */
void pat_run_restart(pat_run *r);

/* Counts n steps of work done outside the matcher (compiling, a plain search). Returns 0,
 * or -1 with r->status and r->msg set when the cap or the check says stop. */
int pat_run_charge(pat_run *r, uint64_t n);

/* Passes the steps not yet reported to the check callback. Returns 0, or -1 when it says
 * stop (r->status = PAT_ECHECK). */
int pat_run_flush(pat_run *r);

/* Matches g against subject s (ls bytes) starting exactly at offset at (<= ls).
 * Returns 1 with *m filled, 0 for no match, -1 on error (r->status, r->msg). */
int pat_match_at(const pat_prog *g, const char *s, size_t ls, size_t at, pat_run *r,
                 pat_match *m);

/* The first match at offset from or later (only at from when anchored). Same returns. */
int pat_search(const pat_prog *g, const char *s, size_t ls, size_t from, pat_run *r,
               pat_match *m);

/* Capture i (0-based) of match m: PAT_CAP_TEXT with *at, *len set; PAT_CAP_AT with *at
 * the 1-based position; or PAT_CAP_BAD with stock Lua's message in err ("invalid capture
 * index %N", "unfinished capture"). A pattern without captures yields its whole match as
 * capture 0. */
enum { PAT_CAP_TEXT, PAT_CAP_AT, PAT_CAP_BAD };
int pat_capture_get(const pat_match *m, int i, size_t *at, size_t *len, char *err,
                    size_t errlen);

/* How many values a match yields: its captures, or the whole match when it has none. */
int pat_nvalues(const pat_match *m);

/* Whether p has none of the characters that make a pattern more than plain text. */
int pat_is_plain(const char *p, size_t lp);

#endif
