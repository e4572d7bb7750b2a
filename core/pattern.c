/* pattern.c: Lua 5.4's pattern-matching machinery ported to pure C with a step budget
 * (see pattern.h). Errors set ms->status and unwind by returning NULL instead of
 * longjmp-ing, so the caller decides how to report them; every loop that can run long
 * counts its steps. Uses only the C library.
 *
 * The matcher follows lstrlib.c of Lua 5.4, whose notice is kept here as its licence asks:
 *
 * Copyright (C) 1994-2022 Lua.org, PUC-Rio.
 *
 * Permission is hereby granted, free of charge, to any person obtaining a copy of this
 * software and associated documentation files (the "Software"), to deal in the Software
 * without restriction, including without limitation the rights to use, copy, modify,
 * merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
 * permit persons to whom the Software is furnished to do so, subject to the following
 * conditions:
 *
 * The above copyright notice and this permission notice shall be included in all copies
 * or substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
 * INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
 * PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
 * HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
 * CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR
 * THE USE OR OTHER DEALINGS IN THE SOFTWARE. */
#include "pattern.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define L_ESC '%'
#define SPECIALS "^$*+?.([%-"
#define uchar(c) ((unsigned char)(c))

/* Lua reads the NUL after a string's end in a few places; these give the same answers
 * without requiring the terminator. */
#define PAT_AT(ms, q) ((q) < (ms)->p_end ? *(q) : '\0')
#define SRC_AT(ms, q) ((q) < (ms)->src_end ? *(q) : '\0')

static const char *pm_match(pat_state *ms, const char *s, const char *p);

static void pm_fail(pat_state *ms, pat_status st, const char *fmt, ...) {
  if (ms->status != PAT_OK) return; /* the first error is the one reported */
  ms->status = st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ms->msg, sizeof ms->msg, fmt, ap);
  va_end(ap);
}

static void pm_arm(pat_state *ms) {
  uint64_t next = ms->steps + PAT_CHECK_EVERY;
  if (ms->max_steps && next > ms->max_steps + 1) next = ms->max_steps + 1;
  ms->next_check = next;
}

/* The slow path of pm_step: the cap, then the caller's check. */
static int pm_check(pat_state *ms) {
  if (ms->max_steps && ms->steps > ms->max_steps) {
    pm_fail(ms, PAT_ESTEPS, "pattern too complex: step budget exhausted (%llu steps)",
            (unsigned long long)ms->max_steps);
    return -1;
  }
  if (pat_flush(ms) != 0) return -1;
  pm_arm(ms);
  return 0;
}

/* Counts n steps of work. Returns 0 to go on, -1 when the match must stop. */
static inline int pm_step(pat_state *ms, uint64_t n) {
  ms->steps += n;
  if (ms->steps < ms->next_check) return 0;
  return pm_check(ms);
}

int pat_flush(pat_state *ms) {
  if (ms->check == NULL || ms->steps <= ms->checked) return ms->status == PAT_ECHECK ? -1 : 0;
  uint64_t n = ms->steps - ms->checked;
  ms->checked = ms->steps;
  char why[128] = "stopped";
  if (ms->check(ms->check_ud, n, why, sizeof why) != 0) {
    pm_fail(ms, PAT_ECHECK, "pattern too complex: %s", why);
    return -1;
  }
  return 0;
}

void pat_prepare(pat_state *ms, const char *s, size_t ls, const char *p, size_t lp,
                 uint64_t max_steps, pat_check_fn check, void *check_ud) {
  ms->src_init = s;
  ms->src_end = s + ls;
  ms->p_end = p + lp;
  ms->max_steps = max_steps;
  ms->check = check;
  ms->check_ud = check_ud;
  ms->status = PAT_OK;
  ms->msg[0] = '\0';
  pat_reset_steps(ms);
  pat_reprepare(ms);
}

void pat_reprepare(pat_state *ms) {
  ms->level = 0;
  ms->matchdepth = PAT_MAXCCALLS;
}

void pat_reset_steps(pat_state *ms) {
  ms->steps = 0;
  ms->checked = 0;
  pm_arm(ms);
}

/* ---- pattern items ---------------------------------------------------------------------- */

int pat_check_capture(pat_state *ms, int l) {
  l -= '1';
  if (l < 0 || l >= ms->level || ms->capture[l].len == PAT_CAP_UNFINISHED) {
    pm_fail(ms, PAT_EPATTERN, "invalid capture index %%%d", l + 1);
    return -1;
  }
  return l;
}

static int pm_capture_to_close(pat_state *ms) {
  int level = ms->level;
  for (level--; level >= 0; level--)
    if (ms->capture[level].len == PAT_CAP_UNFINISHED) return level;
  pm_fail(ms, PAT_EPATTERN, "invalid pattern capture");
  return -1;
}

/* The end of the single-character class at p; NULL on a malformed pattern. */
static const char *pm_class_end(pat_state *ms, const char *p) {
  switch (*p++) {
  case L_ESC:
    if (p == ms->p_end) {
      pm_fail(ms, PAT_EPATTERN, "malformed pattern (ends with '%%')");
      return NULL;
    }
    return p + 1;
  case '[':
    if (PAT_AT(ms, p) == '^') p++;
    do { /* look for a ']' */
      if (p == ms->p_end) {
        pm_fail(ms, PAT_EPATTERN, "malformed pattern (missing ']')");
        return NULL;
      }
      if (*(p++) == L_ESC && p < ms->p_end) p++; /* skip escapes (e.g. '%]') */
    } while (PAT_AT(ms, p) != ']');
    return p + 1;
  default:
    return p;
  }
}

static int pm_match_class(int c, int cl) {
  int res;
  switch (tolower(cl)) {
  case 'a': res = isalpha(c); break;
  case 'c': res = iscntrl(c); break;
  case 'd': res = isdigit(c); break;
  case 'g': res = isgraph(c); break;
  case 'l': res = islower(c); break;
  case 'p': res = ispunct(c); break;
  case 's': res = isspace(c); break;
  case 'u': res = isupper(c); break;
  case 'w': res = isalnum(c); break;
  case 'x': res = isxdigit(c); break;
  case 'z': res = (c == 0); break; /* deprecated in Lua 5.2, still accepted by 5.4 */
  default: return cl == c;
  }
  if (isupper(cl)) res = !res;
  return res != 0;
}

/* p points at '[', ec at the closing ']'. */
static int pm_match_bracket(int c, const char *p, const char *ec) {
  int sig = 1;
  if (*(p + 1) == '^') {
    sig = 0;
    p++; /* skip the '^' */
  }
  while (++p < ec) {
    if (*p == L_ESC) {
      p++;
      if (pm_match_class(c, uchar(*p))) return sig;
    } else if (*(p + 1) == '-' && p + 2 < ec) {
      p += 2;
      if (uchar(*(p - 2)) <= c && c <= uchar(*p)) return sig;
    } else if (uchar(*p) == c) {
      return sig;
    }
  }
  return !sig;
}

static int pm_single(pat_state *ms, const char *s, const char *p, const char *ep) {
  if (s >= ms->src_end) return 0;
  int c = uchar(*s);
  switch (*p) {
  case '.': return 1; /* matches any char */
  case L_ESC: return pm_match_class(c, uchar(*(p + 1)));
  case '[': return pm_match_bracket(c, p, ep - 1);
  default: return uchar(*p) == c;
  }
}

static const char *pm_balance(pat_state *ms, const char *s, const char *p) {
  if (p >= ms->p_end - 1) {
    pm_fail(ms, PAT_EPATTERN, "malformed pattern (missing arguments to '%%b')");
    return NULL;
  }
  if (s >= ms->src_end || *s != *p) return NULL;
  int b = *p, e = *(p + 1), cont = 1;
  const char *start = s;
  while (++s < ms->src_end) {
    if (*s == e) {
      if (--cont == 0) {
        if (pm_step(ms, (uint64_t)(s - start))) return NULL;
        return s + 1;
      }
    } else if (*s == b) {
      cont++;
    }
  }
  pm_step(ms, (uint64_t)(s - start));
  return NULL; /* string ends out of balance */
}

static const char *pm_max_expand(pat_state *ms, const char *s, const char *p, const char *ep) {
  ptrdiff_t i = 0; /* counts maximum expand for item */
  while (pm_single(ms, s + i, p, ep)) {
    i++;
    if (pm_step(ms, 1)) return NULL;
  }
  /* keeps trying to match with the maximum repetitions */
  while (i >= 0) {
    const char *res = pm_match(ms, s + i, ep + 1);
    if (res) return res;
    if (ms->status) return NULL;
    i--; /* else didn't match; reduce 1 repetition to try again */
  }
  return NULL;
}

static const char *pm_min_expand(pat_state *ms, const char *s, const char *p, const char *ep) {
  for (;;) {
    const char *res = pm_match(ms, s, ep + 1);
    if (res != NULL) return res;
    if (ms->status) return NULL;
    if (pm_single(ms, s, p, ep))
      s++; /* try with one more repetition */
    else
      return NULL;
  }
}

static const char *pm_start_capture(pat_state *ms, const char *s, const char *p, ptrdiff_t what) {
  int level = ms->level;
  if (level >= PAT_MAXCAPTURES) {
    pm_fail(ms, PAT_EPATTERN, "too many captures");
    return NULL;
  }
  ms->capture[level].init = s;
  ms->capture[level].len = what;
  ms->level = level + 1;
  const char *res = pm_match(ms, s, p);
  if (res == NULL) ms->level--; /* undo capture */
  return res;
}

static const char *pm_end_capture(pat_state *ms, const char *s, const char *p) {
  int l = pm_capture_to_close(ms);
  if (l < 0) return NULL;
  ms->capture[l].len = s - ms->capture[l].init; /* close capture */
  const char *res = pm_match(ms, s, p);
  if (res == NULL) ms->capture[l].len = PAT_CAP_UNFINISHED; /* undo capture */
  return res;
}

static const char *pm_match_capture(pat_state *ms, const char *s, int l) {
  l = pat_check_capture(ms, l);
  if (l < 0) return NULL;
  size_t len = (size_t)ms->capture[l].len; /* a position capture is huge here: no match */
  if ((size_t)(ms->src_end - s) >= len && memcmp(ms->capture[l].init, s, len) == 0) {
    if (pm_step(ms, len)) return NULL;
    return s + len;
  }
  return NULL;
}

static const char *pm_match(pat_state *ms, const char *s, const char *p) {
  if (ms->status != PAT_OK) return NULL;
  if (ms->matchdepth-- == 0) {
    pm_fail(ms, PAT_EPATTERN, "pattern too complex");
    return NULL;
  }
init: /* using goto to optimize tail recursion */
  if (pm_step(ms, 1)) {
    s = NULL;
  } else if (p != ms->p_end) { /* end of pattern? */
    switch (*p) {
    case '(': /* start capture */
      if (PAT_AT(ms, p + 1) == ')') /* position capture? */
        s = pm_start_capture(ms, s, p + 2, PAT_CAP_POSITION);
      else
        s = pm_start_capture(ms, s, p + 1, PAT_CAP_UNFINISHED);
      break;
    case ')': /* end capture */
      s = pm_end_capture(ms, s, p + 1);
      break;
    case '$':
      if (p + 1 != ms->p_end) goto dflt; /* is the '$' the last char in pattern? */
      s = (s == ms->src_end) ? s : NULL;  /* check end of string */
      break;
    case L_ESC: /* escaped sequences not in the format class[*+?-]? */
      switch (PAT_AT(ms, p + 1)) {
      case 'b': /* balanced string? */
        s = pm_balance(ms, s, p + 2);
        if (s != NULL) {
          p += 4;
          goto init; /* return match(ms, s, p + 4); */
        }
        break;
      case 'f': { /* frontier? */
        p += 2;
        if (PAT_AT(ms, p) != '[') {
          pm_fail(ms, PAT_EPATTERN, "missing '[' after '%%f' in pattern");
          s = NULL;
          break;
        }
        const char *ep = pm_class_end(ms, p); /* points to what is next */
        if (ep == NULL) {
          s = NULL;
          break;
        }
        int previous = (s == ms->src_init) ? '\0' : *(s - 1);
        if (!pm_match_bracket(uchar(previous), p, ep - 1) &&
            pm_match_bracket(uchar(SRC_AT(ms, s)), p, ep - 1)) {
          p = ep;
          goto init; /* return match(ms, s, ep); */
        }
        s = NULL; /* match failed */
        break;
      }
      case '0': case '1': case '2': case '3': case '4':
      case '5': case '6': case '7': case '8': case '9': /* capture results (%0-%9)? */
        s = pm_match_capture(ms, s, uchar(*(p + 1)));
        if (s != NULL) {
          p += 2;
          goto init; /* return match(ms, s, p + 2) */
        }
        break;
      default:
        goto dflt;
      }
      break;
    default:
    dflt: { /* pattern class plus optional suffix */
      const char *ep = pm_class_end(ms, p); /* points to optional suffix */
      if (ep == NULL) {
        s = NULL;
        break;
      }
      int suffix = PAT_AT(ms, ep);
      if (!pm_single(ms, s, p, ep)) { /* does not match at least once? */
        if (suffix == '*' || suffix == '?' || suffix == '-') { /* accept empty? */
          p = ep + 1;
          goto init; /* return match(ms, s, ep + 1); */
        }
        s = NULL; /* '+' or no suffix: fail */
      } else { /* matched once */
        switch (suffix) {
        case '?': { /* optional */
          const char *res = pm_match(ms, s + 1, ep + 1);
          if (res != NULL) {
            s = res;
          } else if (ms->status) {
            s = NULL;
          } else {
            p = ep + 1;
            goto init; /* else return match(ms, s, ep + 1); */
          }
          break;
        }
        case '+': /* 1 or more repetitions */
          s++;    /* 1 match already done */
          /* fallthrough */
        case '*': /* 0 or more repetitions */
          s = pm_max_expand(ms, s, p, ep);
          break;
        case '-': /* 0 or more repetitions (minimum) */
          s = pm_min_expand(ms, s, p, ep);
          break;
        default: /* no suffix */
          s++;
          p = ep;
          goto init; /* return match(ms, s + 1, ep); */
        }
      }
      break;
    }
    }
  }
  ms->matchdepth++;
  return ms->status == PAT_OK ? s : NULL;
}

const char *pat_match(pat_state *ms, const char *s, const char *p) { return pm_match(ms, s, p); }

const char *pat_search(pat_state *ms, const char *s1, const char *p, int anchor,
                       const char **start) {
  do {
    pat_reprepare(ms);
    const char *res = pm_match(ms, s1, p);
    if (res != NULL) {
      *start = s1;
      return res;
    }
    if (ms->status != PAT_OK) return NULL;
  } while (s1++ < ms->src_end && !anchor);
  return NULL;
}

/* ---- captures and helpers --------------------------------------------------------------- */

int pat_ncaptures(const pat_state *ms, const char *s) {
  return (ms->level == 0 && s) ? 1 : ms->level;
}

ptrdiff_t pat_get_capture(pat_state *ms, int i, const char *s, const char *e,
                          const char **cap, size_t *pos) {
  if (i >= ms->level) {
    if (i != 0) {
      pm_fail(ms, PAT_EPATTERN, "invalid capture index %%%d", i + 1);
      return -1;
    }
    *cap = s; /* the whole match */
    return e - s;
  }
  ptrdiff_t capl = ms->capture[i].len;
  *cap = ms->capture[i].init;
  if (capl == PAT_CAP_UNFINISHED) {
    pm_fail(ms, PAT_EPATTERN, "unfinished capture");
    return -1;
  }
  if (capl == PAT_CAP_POSITION) *pos = (size_t)(ms->capture[i].init - ms->src_init) + 1;
  return capl;
}

int pat_nospecials(const char *p, size_t lp) {
  for (size_t i = 0; i < lp; i++)
    if (p[i] != '\0' && strchr(SPECIALS, p[i]) != NULL) return 0;
  return 1;
}

const char *pat_memfind(const char *s1, size_t l1, const char *s2, size_t l2) {
  if (l2 == 0) return s1; /* empty strings are everywhere */
  if (l2 > l1) return NULL; /* avoids a negative 'l1' */
  const char *init; /* to search for a '*s2' inside 's1' */
  l2--;             /* 1st char will be checked by 'memchr' */
  l1 = l1 - l2;     /* 's2' cannot be found after that */
  while (l1 > 0 && (init = memchr(s1, *s2, l1)) != NULL) {
    init++; /* 1st char is already checked */
    if (memcmp(init, s2 + 1, l2) == 0) return init - 1;
    l1 -= (size_t)(init - s1); /* correct 'l1' and 's1' to try again */
    s1 = init;
  }
  return NULL; /* not found */
}

size_t pat_posrelat(long long pos, size_t len) {
  if (pos > 0) return (size_t)pos;
  if (pos == 0) return 1;
  if (pos < -(long long)len) return 1; /* clip to 1 */
  return len + (size_t)pos + 1;
}
