/* statemachine.h: the board's card lifecycle: card types, statuses, wait reasons, the
 * transition table per type and the guards on it. Pure C, no Lua types; the binding is
 * lstatemachine.c (`orket.c.statemachine`). docs/board.md documents the same table and a
 * spec compares the two, so edit both together. */
#ifndef ORKET_STATEMACHINE_H
#define ORKET_STATEMACHINE_H

#include <stddef.h>

typedef enum { SM_ROCK, SM_EPIC, SM_ISSUE, SM_NTYPES } sm_type;

typedef enum {
  SM_READY,
  SM_IN_PROGRESS,
  SM_BLOCKED,
  SM_WAITING_FOR_DEVELOPER,
  SM_READY_FOR_TESTING,
  SM_CODE_REVIEW,
  SM_DONE,
  SM_CANCELED,
  SM_ARCHIVED,
  SM_NSTATUS
} sm_status;

typedef enum {
  SM_REASON_RESOURCE,
  SM_REASON_DEPENDENCY,
  SM_REASON_REVIEW,
  SM_REASON_INPUT,
  SM_REASON_SYSTEM,
  SM_REASON_BUDGET, /* a money budget would be passed: the engine's alone (docs/cost.md) */
  SM_NREASON
} sm_reason;

/* Who asks for a move. Zero is an agent, the most restricted, so a request built with a
 * designated initializer that leaves the field out is judged as an agent's. */
typedef enum {
  SM_BY_AGENT = 0, /* a seat's model, through its tools */
  SM_BY_ENGINE,    /* the runtime itself: blocks a card, moves a parent after its children */
  SM_BY_PERSON,    /* a developer at the CLI (orket cancel, retry, answer) */
  SM_NBY
} sm_by;

/* The role an actor must hold to move an issue to done. */
#define SM_REVIEWER_ROLE "integrity_guard"

/* Names of the enum values (NULL when out of range) and their inverse (-1 when unknown). */
const char *sm_type_name(int type);
const char *sm_status_name(int status);
const char *sm_reason_name(int reason);
const char *sm_by_name(int by);
int sm_type_parse(const char *name);
int sm_status_parse(const char *name);
int sm_reason_parse(const char *name);
int sm_by_parse(const char *name);

/* 1 when the table lets a card of `type` move from `from` to `to` (guards aside). */
int sm_allowed(sm_type type, sm_status from, sm_status to);

/* 1 for statuses that need a wait reason (blocked, waiting_for_developer). */
int sm_needs_reason(sm_status status);

/* Everything a decision depends on. Strings may be NULL where they are optional:
 * reason (only for blocked / waiting_for_developer), seat, worked_by. */
typedef struct sm_request {
  const char *type;            /* "rock" | "epic" | "issue" */
  const char *from;            /* current status */
  const char *to;              /* requested status */
  const char *seat;            /* the actor's seat */
  const char *const *roles;    /* the actor's roles */
  size_t nroles;
  const char *reason;          /* wait reason */
  const char *worked_by;       /* seat that did the work on the card */
  int deps_done;               /* every dependency of the card (and of an issue's epic) is done */
  sm_by by;                    /* who asks; zero (an agent) unless a person or the engine */
} sm_request;

typedef struct sm_verdict {
  int ok;                /* 1 allowed, 0 refused */
  const char *code;      /* refused: the rule, e.g. "EREVIEWER"; NULL when ok */
  char message[320];     /* refused: what was refused and how to fix it */
} sm_verdict;

/* Decides one transition. Returns v->ok. Never fails otherwise: unknown names are refusals
 * (ETYPE, ESTATUS, EREASON_INVALID). The refusal codes are listed in sm_codes. */
int sm_check(const sm_request *rq, sm_verdict *v);

/* Every refusal code sm_check can return, NULL-terminated (docs/board.md lists them). */
extern const char *const sm_codes[];

/* What to do about a refusal with that code (one sentence for the model that was refused),
 * or NULL for a code sm_check never returns. */
const char *sm_remedy(const char *code);

#endif
