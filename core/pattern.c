/* pattern.c: the Lua 5.4 pattern language as a compiler and a backtracking matcher (see
 * pattern.h). A pattern becomes an array of nodes, one per item; character classes and
 * sets become 256-bit tables. The matcher walks the nodes with a program counter and keeps
 * each point it may come back to on a fixed-size stack, so neither its depth nor its
 * memory depends on the subject. Uses only the C library. */
#include "pattern.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

enum node_op {
  OP_CHAR,     /* one character test, with a repetition (rep) */
  OP_OPEN,     /* capture `a` starts here */
  OP_POINT,    /* capture `a` is this position */
  OP_CLOSE,    /* capture `a` ends here */
  OP_BALANCE,  /* %bxy: a balanced run from a to b */
  OP_FRONTIER, /* %f[set]: the set does not hold the previous byte and holds the next */
  OP_BACKREF,  /* %1-%9: the text capture `a` matched, again */
  OP_EOS,      /* a final '$': the end of the subject */
  OP_ERROR,    /* a malformed piece: reaching it is an error (a: which, b: the index) */
  OP_DONE
};

enum char_kind { CK_BYTE, CK_ANY, CK_SET };
enum rep { REP_ONE, REP_OPT, REP_GREEDY, REP_GREEDY1, REP_LAZY };
enum compile_error {
  CE_TRAILING_ESCAPE, CE_OPEN_SET, CE_BALANCE_ARGS, CE_FRONTIER_SET,
  CE_NO_OPEN_CAPTURE, CE_TOO_MANY_CAPTURES, CE_BAD_BACKREF
};

typedef struct pat_node {
  uint8_t op, rep, kind;
  uint8_t a, b;    /* a byte, a capture index, or the two bytes of %b */
  uint8_t nested;  /* capture nodes before this one: they count toward PAT_MAXNEST */
  uint32_t set;    /* index into the program's sets (CK_SET, OP_FRONTIER) */
} pat_node;

typedef struct byteset {
  uint8_t bit[32];
} byteset;

struct pat_prog {
  uint32_t nnodes, nsets;
  uint8_t anchored, ncaps;
  pat_node *node;
  byteset *set;
};

/* ---- budget ------------------------------------------------------------------------------ */

static void run_error(pat_run *r, pat_status st, const char *text) {
  if (r->status != PAT_OK) return;
  r->status = st;
  snprintf(r->msg, sizeof r->msg, "%s", text);
}

static void run_arm(pat_run *r) {
  uint64_t stop = r->steps + PAT_CHECK_EVERY;
  if (r->max_steps && stop > r->max_steps + 1) stop = r->max_steps + 1;
  r->next_stop = stop;
}

void pat_run_init(pat_run *r, uint64_t max_steps, pat_check_fn check, void *ud) {
  r->max_steps = max_steps;
  r->check = check;
  r->check_ud = ud;
  r->status = PAT_OK;
  r->msg[0] = '\0';
  pat_run_restart(r);
}

void pat_run_restart(pat_run *r) {
  r->steps = 0;
  r->reported = 0;
  run_arm(r);
}

int pat_run_flush(pat_run *r) {
  if (r->status != PAT_OK) return -1;
  if (r->check == NULL || r->steps == r->reported) return 0;
  uint64_t n = r->steps - r->reported;
  r->reported = r->steps;
  char why[128] = "stopped";
  if (r->check(r->check_ud, n, why, sizeof why) == 0) return 0;
  char text[160];
  snprintf(text, sizeof text, "pattern too complex: %s", why);
  run_error(r, PAT_ECHECK, text);
  return -1;
}

/* The slow path of a step: the cap first, then the caller's check. */
static int run_stop(pat_run *r) {
  if (r->max_steps && r->steps > r->max_steps) {
    char text[160];
    snprintf(text, sizeof text, "pattern too complex: step budget exhausted (%llu steps)",
             (unsigned long long)r->max_steps);
    run_error(r, PAT_ESTEPS, text);
    return -1;
  }
  if (pat_run_flush(r) != 0) return -1;
  run_arm(r);
  return 0;
}

static inline int run_steps(pat_run *r, uint64_t n) {
  r->steps += n;
  return r->steps < r->next_stop ? 0 : run_stop(r);
}

int pat_run_charge(pat_run *r, uint64_t n) {
  if (r->status != PAT_OK) return -1;
  return run_steps(r, n);
}

/* ---- byte sets --------------------------------------------------------------------------- */

static inline int set_has(const byteset *s, unsigned c) { return (s->bit[c >> 3] >> (c & 7)) & 1; }
static inline void set_add(byteset *s, unsigned c) { s->bit[c >> 3] |= (uint8_t)(1u << (c & 7)); }

static void set_add_range(byteset *s, unsigned lo, unsigned hi) {
  for (unsigned c = lo; c <= hi; c++) set_add(s, c);
}

/* Adds the members of class `lower` (a letter from "acdglpsuwxz"), as the C locale
 * defines them (the process never changes locale). Returns 0 when it names no class. */
static int class_add(byteset *s, unsigned lower) {
  switch (lower) {
  case 'a': set_add_range(s, 'A', 'Z'); set_add_range(s, 'a', 'z'); return 1;
  case 'c': set_add_range(s, 0, 31); set_add(s, 127); return 1;
  case 'd': set_add_range(s, '0', '9'); return 1;
  case 'g': set_add_range(s, 33, 126); return 1;
  case 'l': set_add_range(s, 'a', 'z'); return 1;
  case 'p':
    set_add_range(s, 33, 47); set_add_range(s, 58, 64);
    set_add_range(s, 91, 96); set_add_range(s, 123, 126);
    return 1;
  case 's': set_add_range(s, 9, 13); set_add(s, ' '); return 1;
  case 'u': set_add_range(s, 'A', 'Z'); return 1;
  case 'w': class_add(s, 'a'); class_add(s, 'd'); return 1;
  case 'x': set_add_range(s, '0', '9'); set_add_range(s, 'A', 'F'); set_add_range(s, 'a', 'f'); return 1;
  case 'z': set_add(s, 0); return 1; /* deprecated by Lua 5.2, still honoured by 5.4 */
  default: return 0;
  }
}

static int is_class_letter(unsigned letter) {
  return letter < 128 && strchr("acdglpsuwxz", tolower((int)letter)) != NULL && letter != 0;
}

/* Adds what "%letter" stands for: a class (an upper-case letter: its complement), or the
 * letter itself when it names none. */
static void set_add_escape(byteset *s, unsigned letter) {
  if (!is_class_letter(letter)) {
    set_add(s, letter);
    return;
  }
  byteset cls;
  memset(&cls, 0, sizeof cls);
  class_add(&cls, (unsigned)tolower((int)letter));
  int flip = letter >= 'A' && letter <= 'Z';
  for (int k = 0; k < 32; k++) s->bit[k] |= (uint8_t)(flip ? ~cls.bit[k] : cls.bit[k]);
}

/* The index just past the ']' closing the set whose '[' is at p[i], or 0 when it is not
 * closed. The first member is taken as it is, so "[]]" is the set of ']' alone, and a '%'
 * protects the byte after it. */
static size_t bracket_end(const char *p, size_t lp, size_t i) {
  size_t j = i + 1;
  if (j < lp && p[j] == '^') j++;
  for (;;) {
    if (j >= lp) return 0;
    j += (p[j] == '%' && j + 1 < lp) ? 2 : 1;
    if (j < lp && p[j] == ']') return j + 1;
  }
}

/* Fills s with the set p[i] .. p[end-1] ("[...]", end from bracket_end). */
static void bracket_fill(byteset *s, const char *p, size_t i, size_t end) {
  size_t j = i + 1, close = end - 1;
  int negate = p[j] == '^';
  if (negate) j++;
  memset(s, 0, sizeof *s);
  while (j < close) {
    unsigned c = (unsigned char)p[j];
    if (c == '%') {
      set_add_escape(s, (unsigned char)p[j + 1]);
      j += 2;
    } else if (j + 2 < close && p[j + 1] == '-') {
      for (unsigned x = c; x <= (unsigned char)p[j + 2]; x++) set_add(s, x);
      j += 3;
    } else {
      set_add(s, c);
      j++;
    }
  }
  if (negate)
    for (int k = 0; k < 32; k++) s->bit[k] = (uint8_t)~s->bit[k];
}

/* ---- compiling --------------------------------------------------------------------------- */

size_t pat_prog_size(size_t lp) {
  /* every node but the last consumes at least one pattern byte, every set at least two */
  size_t head = (sizeof(pat_prog) + 15) & ~(size_t)15;
  size_t nodes = ((lp + 2) * sizeof(pat_node) + 15) & ~(size_t)15;
  return head + nodes + (lp / 2 + 1) * sizeof(byteset);
}

typedef struct compiler {
  pat_prog *g;
  uint8_t nested;
  uint8_t state[PAT_MAXCAPTURES]; /* per capture: 0 open, 1 closed, 2 a position */
} compiler;

static pat_node *emit(compiler *c, uint8_t op) {
  pat_node *n = &c->g->node[c->g->nnodes++];
  memset(n, 0, sizeof *n);
  n->op = op;
  n->nested = c->nested;
  return n;
}

static byteset *new_set(compiler *c, uint32_t *index) {
  *index = c->g->nsets;
  return &c->g->set[c->g->nsets++];
}

static void emit_error(compiler *c, int which, int index) {
  pat_node *n = emit(c, OP_ERROR);
  n->a = (uint8_t)which;
  n->b = (uint8_t)index;
}

/* One character test at p[i] ('.', %x, [set] or a byte). Returns the index after it, or
 * 0 after emitting an error node. */
static size_t compile_char(compiler *c, const char *p, size_t lp, size_t i) {
  unsigned ch = (unsigned char)p[i];
  size_t next;
  uint8_t kind = CK_BYTE, byte = (uint8_t)ch;
  uint32_t set = 0;
  if (ch == '.') {
    kind = CK_ANY;
    next = i + 1;
  } else if (ch == '%') {
    if (i + 1 >= lp) {
      emit_error(c, CE_TRAILING_ESCAPE, 0);
      return 0;
    }
    unsigned letter = (unsigned char)p[i + 1];
    if (is_class_letter(letter)) {
      kind = CK_SET;
      byteset *s = new_set(c, &set);
      memset(s, 0, sizeof *s);
      set_add_escape(s, letter);
    } else {
      byte = (uint8_t)letter;
    }
    next = i + 2;
  } else if (ch == '[') {
    next = bracket_end(p, lp, i);
    if (next == 0) {
      emit_error(c, CE_OPEN_SET, 0);
      return 0;
    }
    kind = CK_SET;
    bracket_fill(new_set(c, &set), p, i, next);
  } else {
    next = i + 1;
  }
  pat_node *n = emit(c, OP_CHAR);
  n->kind = kind;
  n->a = byte;
  n->set = set;
  n->rep = REP_ONE;
  if (next < lp) {
    switch (p[next]) {
    case '?': n->rep = REP_OPT; next++; break;
    case '*': n->rep = REP_GREEDY; next++; break;
    case '+': n->rep = REP_GREEDY1; next++; break;
    case '-': n->rep = REP_LAZY; next++; break;
    default: break;
    }
  }
  return next;
}

pat_prog *pat_compile(void *mem, const char *p, size_t lp, int anchor) {
  pat_prog *g = mem;
  size_t head = (sizeof(pat_prog) + 15) & ~(size_t)15;
  size_t nodes = ((lp + 2) * sizeof(pat_node) + 15) & ~(size_t)15;
  g->node = (pat_node *)((char *)mem + head);
  g->set = (byteset *)((char *)mem + head + nodes);
  g->nnodes = g->nsets = 0;
  g->ncaps = 0;
  g->anchored = 0;
  compiler c = {.g = g, .nested = 0};
  size_t i = 0;
  if (anchor && lp > 0 && p[0] == '^') {
    g->anchored = 1;
    i = 1;
  }
  while (i < lp) {
    char ch = p[i];
    if (ch == '(') {
      if (g->ncaps == PAT_MAXCAPTURES) {
        emit_error(&c, CE_TOO_MANY_CAPTURES, 0);
        return g;
      }
      int point = i + 1 < lp && p[i + 1] == ')';
      pat_node *n = emit(&c, point ? OP_POINT : OP_OPEN);
      n->a = g->ncaps;
      c.state[g->ncaps++] = point ? 2 : 0;
      c.nested++;
      i += point ? 2 : 1;
      continue;
    }
    if (ch == ')') {
      int k = g->ncaps - 1;
      while (k >= 0 && c.state[k] != 0) k--;
      if (k < 0) {
        emit_error(&c, CE_NO_OPEN_CAPTURE, 0);
        return g;
      }
      emit(&c, OP_CLOSE)->a = (uint8_t)k;
      c.state[k] = 1;
      c.nested++;
      i++;
      continue;
    }
    if (ch == '$' && i + 1 == lp) {
      emit(&c, OP_EOS);
      i++;
      continue;
    }
    if (ch == '%' && i + 1 < lp) {
      char d = p[i + 1];
      if (d == 'b') {
        if (i + 4 > lp) {
          emit_error(&c, CE_BALANCE_ARGS, 0);
          return g;
        }
        pat_node *n = emit(&c, OP_BALANCE);
        n->a = (uint8_t)p[i + 2];
        n->b = (uint8_t)p[i + 3];
        i += 4;
        continue;
      }
      if (d == 'f') {
        size_t at = i + 2, end;
        if (at >= lp || p[at] != '[') {
          emit_error(&c, CE_FRONTIER_SET, 0);
          return g;
        }
        if ((end = bracket_end(p, lp, at)) == 0) {
          emit_error(&c, CE_OPEN_SET, 0);
          return g;
        }
        uint32_t set;
        bracket_fill(new_set(&c, &set), p, at, end);
        emit(&c, OP_FRONTIER)->set = set;
        i = end;
        continue;
      }
      if (d >= '0' && d <= '9') {
        int k = d - '1';
        if (k < 0 || k >= g->ncaps || c.state[k] == 0) {
          emit_error(&c, CE_BAD_BACKREF, k + 1);
          return g;
        }
        pat_node *n = emit(&c, OP_BACKREF);
        n->a = (uint8_t)k;
        n->b = c.state[k] == 2; /* a position is no text: never matches */
        i += 2;
        continue;
      }
    }
    if ((i = compile_char(&c, p, lp, i)) == 0) return g;
  }
  emit(&c, OP_DONE);
  return g;
}

int pat_anchored(const pat_prog *g) { return g->anchored; }

static const char *compile_error_text(int which) {
  switch (which) {
  case CE_TRAILING_ESCAPE: return "malformed pattern (ends with '%')";
  case CE_OPEN_SET: return "malformed pattern (missing ']')";
  case CE_BALANCE_ARGS: return "malformed pattern (missing arguments to '%b')";
  case CE_FRONTIER_SET: return "missing '[' after '%f' in pattern";
  case CE_NO_OPEN_CAPTURE: return "invalid pattern capture";
  case CE_TOO_MANY_CAPTURES: return "too many captures";
  default: return "invalid capture index";
  }
}

/* ---- matching ---------------------------------------------------------------------------- */

/* A point to come back to when what follows fails. */
enum alt_kind {
  ALT_SKIP,    /* '?' took its byte: try again from `pos` without it */
  ALT_SHORTER, /* '*' '+' took bytes up to pos: give one back, down to `low` */
  ALT_LONGER   /* '-' took none more: take the byte at pos and try again */
};

typedef struct alt {
  uint32_t pc; /* the node to resume at (ALT_LONGER: the repeated item) */
  uint8_t kind;
  size_t pos, low;
} alt;

static inline int char_ok(const pat_prog *g, const pat_node *n, unsigned c) {
  switch (n->kind) {
  case CK_BYTE: return c == n->a;
  case CK_ANY: return 1;
  default: return set_has(&g->set[n->set], c);
  }
}

static int too_complex(pat_run *r) {
  run_error(r, PAT_EPATTERN, "pattern too complex");
  return -1;
}

int pat_match_at(const pat_prog *g, const char *s, size_t ls, size_t at, pat_run *r,
                 pat_match *m) {
  alt stack[PAT_MAXNEST];
  int depth = 0;
  uint32_t pc = 0;
  size_t pos = at;
  const unsigned char *u = (const unsigned char *)s;
  if (r->status != PAT_OK) return -1;
  for (;;) {
    if (run_steps(r, 1)) return -1;
    const pat_node *n = &g->node[pc];
    switch (n->op) {
    case OP_DONE:
      m->start = at;
      m->end = pos;
      m->ncaps = g->ncaps;
      return 1;
    case OP_CHAR: {
      int here = pos < ls && char_ok(g, n, u[pos]);
      if (n->rep == REP_ONE) {
        if (!here) goto fail;
        pos++;
        pc++;
        continue;
      }
      if (!here) { /* '?', '*', '-' accept nothing; '+' needs one */
        if (n->rep == REP_GREEDY1) goto fail;
        pc++;
        continue;
      }
      /* Nesting counts like the caller's recursion in stock Lua: captures passed plus
       * open alternatives, and the match itself. */
      if (depth + n->nested + 2 > PAT_MAXNEST) return too_complex(r);
      alt *a = &stack[depth++];
      a->pc = pc + 1;
      if (n->rep == REP_OPT) {
        a->kind = ALT_SKIP;
        a->pos = pos++;
      } else if (n->rep == REP_LAZY) {
        a->kind = ALT_LONGER;
        a->pc = pc;
        a->pos = pos;
      } else {
        size_t end = pos + 1;
        while (end < ls && char_ok(g, n, u[end])) end++;
        if (run_steps(r, end - pos)) return -1;
        a->kind = ALT_SHORTER;
        a->low = n->rep == REP_GREEDY1 ? pos + 1 : pos;
        a->pos = pos = end;
      }
      pc++;
      continue;
    }
    case OP_OPEN:
    case OP_POINT:
    case OP_CLOSE:
      if (depth + n->nested + 2 > PAT_MAXNEST) return too_complex(r);
      if (n->op == OP_CLOSE) {
        m->cap[n->a].len = (ptrdiff_t)(pos - m->cap[n->a].at);
      } else {
        m->cap[n->a].at = pos;
        m->cap[n->a].len = n->op == OP_POINT ? PAT_CAP_POSITION : PAT_CAP_UNFINISHED;
      }
      pc++;
      continue;
    case OP_BALANCE: {
      if (pos >= ls || u[pos] != n->a) goto fail;
      size_t q = pos + 1;
      int open = 1;
      for (; q < ls; q++) {
        if (u[q] == n->b) {
          if (--open == 0) break;
        } else if (u[q] == n->a) {
          open++;
        }
      }
      if (run_steps(r, q - pos)) return -1;
      if (q >= ls) goto fail;
      pos = q + 1;
      pc++;
      continue;
    }
    case OP_FRONTIER: {
      unsigned before = pos > 0 ? u[pos - 1] : 0, after = pos < ls ? u[pos] : 0;
      const byteset *fs = &g->set[n->set];
      if (set_has(fs, before) || !set_has(fs, after)) goto fail;
      pc++;
      continue;
    }
    case OP_BACKREF: {
      const pat_capture *c = &m->cap[n->a];
      if (n->b) goto fail;
      size_t len = (size_t)c->len;
      if (ls - pos < len || memcmp(s + c->at, s + pos, len) != 0) goto fail;
      if (run_steps(r, len)) return -1;
      pos += len;
      pc++;
      continue;
    }
    case OP_EOS:
      if (pos != ls) goto fail;
      pc++;
      continue;
    default: { /* OP_ERROR */
      char text[96];
      if (n->a == CE_BAD_BACKREF)
        snprintf(text, sizeof text, "invalid capture index %%%d", (int)(signed char)n->b);
      else
        snprintf(text, sizeof text, "%s", compile_error_text(n->a));
      run_error(r, PAT_EPATTERN, text);
      return -1;
    }
    }
  fail:
    /* Resume at the most recent alternative that still has something to try. */
    for (;;) {
      if (depth == 0) return 0;
      if (run_steps(r, 1)) return -1;
      alt *a = &stack[depth - 1];
      if (a->kind == ALT_SKIP) {
        pos = a->pos;
        pc = a->pc;
        depth--;
        break;
      }
      if (a->kind == ALT_SHORTER) {
        if (a->pos == a->low) {
          depth--;
          continue;
        }
        pos = --a->pos;
        pc = a->pc;
        break;
      }
      /* ALT_LONGER: the item must take the byte at pos to go on */
      if (a->pos < ls && char_ok(g, &g->node[a->pc], u[a->pos])) {
        pos = ++a->pos;
        pc = a->pc + 1;
        break;
      }
      depth--;
    }
  }
}

int pat_search(const pat_prog *g, const char *s, size_t ls, size_t from, pat_run *r,
               pat_match *m) {
  const pat_node *first = &g->node[0];
  /* A pattern that must start with one known byte can skip to where that byte is. */
  int skip = !g->anchored && first->op == OP_CHAR && first->kind == CK_BYTE &&
             (first->rep == REP_ONE || first->rep == REP_GREEDY1);
  for (size_t at = from; at <= ls; at++) {
    if (skip) {
      const char *hit = at < ls ? memchr(s + at, first->a, ls - at) : NULL;
      if (hit == NULL) return 0;
      at = (size_t)(hit - s);
    }
    int res = pat_match_at(g, s, ls, at, r, m);
    if (res != 0 || g->anchored) return res;
  }
  return 0;
}

/* ---- captures ---------------------------------------------------------------------------- */

int pat_nvalues(const pat_match *m) { return m->ncaps > 0 ? m->ncaps : 1; }

int pat_capture_get(const pat_match *m, int i, size_t *at, size_t *len, char *err,
                    size_t errlen) {
  if (i >= m->ncaps) {
    if (i != 0) {
      snprintf(err, errlen, "invalid capture index %%%d", i + 1);
      return PAT_CAP_BAD;
    }
    *at = m->start;
    *len = m->end - m->start;
    return PAT_CAP_TEXT;
  }
  const pat_capture *c = &m->cap[i];
  if (c->len == PAT_CAP_UNFINISHED) {
    snprintf(err, errlen, "unfinished capture");
    return PAT_CAP_BAD;
  }
  *at = c->at;
  if (c->len == PAT_CAP_POSITION) {
    *at = c->at + 1;
    return PAT_CAP_AT;
  }
  *len = (size_t)c->len;
  return PAT_CAP_TEXT;
}

int pat_is_plain(const char *p, size_t lp) {
  for (size_t i = 0; i < lp; i++) {
    switch (p[i]) {
    case '^': case '$': case '*': case '+': case '?': case '.':
    case '(': case '[': case '%': case '-':
      return 0;
    default: break;
    }
  }
  return 1;
}
