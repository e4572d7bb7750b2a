/* statemachine.c: the transition tables and guards declared in statemachine.h.
 * Tables are data (one bitmask of targets per type and source status); sm_check applies
 * the guards in a fixed order so the first rule broken is the one reported. */
#include "statemachine.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const sm_type_names[SM_NTYPES] = {"rock", "epic", "issue"};
static const char *const sm_status_names[SM_NSTATUS] = {
    "ready",       "in_progress", "blocked", "waiting_for_developer", "ready_for_testing",
    "code_review", "done",        "canceled", "archived"};
static const char *const sm_reason_names[SM_NREASON] = {"resource", "dependency", "review",
                                                        "input", "system", "budget"};
static const char *const sm_by_names[SM_NBY] = {"agent", "engine", "person"};

const char *const sm_codes[] = {
    "ETYPE",           "ESTATUS",   "ESAME",       "ETERMINAL",        "ETRANSITION",
    "EREASON_REQUIRED", "EREASON_INVALID", "EREASON_UNEXPECTED", "EDEPENDENCY",
    "EREVIEWER",       "ESELF_REVIEW", "EPERSON",    "EREVIEW_DECISION", NULL};

/* What a model should do about each refusal, told with it so that every rule gets its own
 * advice (the gate passes it on as the denial's remedy). Same order as sm_codes. */
#define SM_REASONS "resource, dependency, review, input or system"
static const char *const sm_remedies[] = {
    "Use a card type the board knows: rock, epic or issue.",
    "Call again with one of the statuses the error lists.",
    "The card already has that status: do not set it again; go on with the work or end your turn.",
    "The card is final and stays so: file new work with create_issue instead of moving it.",
    "Choose one of the statuses the error says this card may move to from its current one.",
    "Call again with wait_reason set to why the card waits: " SM_REASONS ".",
    "Call again with wait_reason set to one of " SM_REASONS ".",
    "Call again without wait_reason: only blocked and waiting_for_developer take one.",
    "Finish the cards this one depends on first, or move it to blocked with wait_reason dependency.",
    "Only a reviewer seat (the integrity_guard role) moves an issue to done: set the status to "
    "code_review to hand your work in, and a reviewer will decide.",
    "You did the work on this issue, so you cannot approve it: leave it in code_review for another "
    "seat holding the integrity_guard role.",
    "Canceling and archiving are a person's decisions: if the work cannot be done, move the card to "
    "blocked with a wait_reason, or ask with request_input.",
    "Decide the review: set done to approve the work, or in_progress with a note saying what must "
    "change.",
};

const char *sm_remedy(const char *code) {
  for (size_t i = 0; code && sm_codes[i]; i++)
    if (strcmp(sm_codes[i], code) == 0) return sm_remedies[i];
  return NULL;
}

#define B(s) (1u << (s))
/* Archiving is allowed from every status but archived itself; it is added in sm_allowed
 * rather than repeated in every row. */
static const unsigned sm_table[SM_NTYPES][SM_NSTATUS] = {
    [SM_ISSUE] =
        {
            [SM_READY] = B(SM_IN_PROGRESS) | B(SM_CANCELED) | B(SM_BLOCKED),
            [SM_IN_PROGRESS] = B(SM_BLOCKED) | B(SM_WAITING_FOR_DEVELOPER) |
                               B(SM_READY_FOR_TESTING) | B(SM_CODE_REVIEW) | B(SM_CANCELED),
            [SM_BLOCKED] = B(SM_IN_PROGRESS) | B(SM_READY) | B(SM_CANCELED),
            /* waiting_for_developer <-> code_review: a review by a person on a forge
             * (docs/git.md); its decision then leaves code_review as a reviewer's does */
            [SM_WAITING_FOR_DEVELOPER] =
                B(SM_IN_PROGRESS) | B(SM_READY) | B(SM_CODE_REVIEW) | B(SM_CANCELED),
            [SM_READY_FOR_TESTING] = B(SM_CODE_REVIEW) | B(SM_IN_PROGRESS) | B(SM_CANCELED),
            [SM_CODE_REVIEW] = B(SM_DONE) | B(SM_IN_PROGRESS) | B(SM_READY_FOR_TESTING) |
                               B(SM_BLOCKED) | B(SM_WAITING_FOR_DEVELOPER) | B(SM_CANCELED),
        },
    [SM_EPIC] =
        {
            [SM_READY] = B(SM_IN_PROGRESS) | B(SM_CANCELED),
            [SM_IN_PROGRESS] = B(SM_CODE_REVIEW) | B(SM_DONE) | B(SM_CANCELED),
            [SM_CODE_REVIEW] = B(SM_DONE) | B(SM_IN_PROGRESS) | B(SM_CANCELED),
        },
    [SM_ROCK] =
        {
            [SM_READY] = B(SM_IN_PROGRESS) | B(SM_CANCELED),
            [SM_IN_PROGRESS] = B(SM_CODE_REVIEW) | B(SM_DONE) | B(SM_CANCELED),
            [SM_CODE_REVIEW] = B(SM_DONE) | B(SM_IN_PROGRESS) | B(SM_CANCELED),
        },
};

static int sm_parse(const char *const *names, int n, const char *name) {
  if (name == NULL) return -1;
  for (int i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0) return i;
  return -1;
}

const char *sm_type_name(int t) { return t >= 0 && t < SM_NTYPES ? sm_type_names[t] : NULL; }
const char *sm_status_name(int s) { return s >= 0 && s < SM_NSTATUS ? sm_status_names[s] : NULL; }
const char *sm_reason_name(int r) { return r >= 0 && r < SM_NREASON ? sm_reason_names[r] : NULL; }
const char *sm_by_name(int b) { return b >= 0 && b < SM_NBY ? sm_by_names[b] : NULL; }
int sm_type_parse(const char *n) { return sm_parse(sm_type_names, SM_NTYPES, n); }
int sm_status_parse(const char *n) { return sm_parse(sm_status_names, SM_NSTATUS, n); }
int sm_reason_parse(const char *n) { return sm_parse(sm_reason_names, SM_NREASON, n); }
int sm_by_parse(const char *n) { return sm_parse(sm_by_names, SM_NBY, n); }

int sm_needs_reason(sm_status s) { return s == SM_BLOCKED || s == SM_WAITING_FOR_DEVELOPER; }

int sm_allowed(sm_type type, sm_status from, sm_status to) {
  if ((unsigned)type >= SM_NTYPES || (unsigned)from >= SM_NSTATUS || (unsigned)to >= SM_NSTATUS)
    return 0;
  if (to == SM_ARCHIVED) return from != SM_ARCHIVED;
  return (sm_table[type][from] & B(to)) != 0;
}

static int sm_refuse(sm_verdict *v, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int sm_refuse(sm_verdict *v, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->message, sizeof v->message, fmt, ap);
  va_end(ap);
  v->ok = 0;
  v->code = code;
  return 0;
}

/* "in_progress, canceled or archived": the targets allowed from `from`. */
static void sm_targets(sm_type type, sm_status from, char *out, size_t outlen) {
  int n = 0, total = 0;
  for (int s = 0; s < SM_NSTATUS; s++) total += sm_allowed(type, from, (sm_status)s);
  out[0] = '\0';
  for (int s = 0; s < SM_NSTATUS; s++) {
    if (!sm_allowed(type, from, (sm_status)s)) continue;
    size_t len = strlen(out);
    snprintf(out + len, outlen - len, "%s%s", n == 0 ? "" : (n == total - 1 ? " or " : ", "),
             sm_status_names[s]);
    n++;
  }
  if (n == 0) snprintf(out, outlen, "nothing");
}

static int sm_has_role(const sm_request *rq, const char *role) {
  for (size_t i = 0; i < rq->nroles; i++)
    if (rq->roles[i] && strcmp(rq->roles[i], role) == 0) return 1;
  return 0;
}

int sm_check(const sm_request *rq, sm_verdict *v) {
  v->ok = 1;
  v->code = NULL;
  v->message[0] = '\0';
  int type = sm_type_parse(rq->type);
  if (type < 0)
    return sm_refuse(v, "ETYPE", "unknown card type \"%s\"; use rock, epic or issue",
                     rq->type ? rq->type : "(none)");
  int from = sm_status_parse(rq->from), to = sm_status_parse(rq->to);
  if (from < 0 || to < 0)
    return sm_refuse(v, "ESTATUS",
                     "unknown status \"%s\"; use ready, in_progress, blocked, "
                     "waiting_for_developer, ready_for_testing, code_review, done, canceled "
                     "or archived",
                     from < 0 ? (rq->from ? rq->from : "(none)") : rq->to ? rq->to : "(none)");
  const char *tn = sm_type_names[type];
  if (from == to)
    return sm_refuse(v, "ESAME", "the %s is already %s; nothing to change", tn, rq->to);
  /* the targets are only told in a refusal: an allowed move (nearly every check) does not
   * format them */
  char targets[200];
  if (from == SM_ARCHIVED || ((from == SM_DONE || from == SM_CANCELED) && to != SM_ARCHIVED)) {
    sm_targets((sm_type)type, (sm_status)from, targets, sizeof targets);
    return sm_refuse(v, "ETERMINAL",
                     "the %s is %s, which is final; it may only go to %s (file a new card to "
                     "reopen the work)",
                     tn, rq->from, targets);
  }
  if (!sm_allowed((sm_type)type, (sm_status)from, (sm_status)to)) {
    sm_targets((sm_type)type, (sm_status)from, targets, sizeof targets);
    return sm_refuse(v, "ETRANSITION", "a%s %s cannot go from %s to %s; from %s it may go to %s",
                     type == SM_EPIC || type == SM_ISSUE ? "n" : "", tn, rq->from, rq->to,
                     rq->from, targets);
  }
  if (rq->reason != NULL && sm_reason_parse(rq->reason) < 0)
    return sm_refuse(v, "EREASON_INVALID",
                     "unknown wait reason \"%s\"; use resource, dependency, review, input or "
                     "system",
                     rq->reason);
  if (sm_needs_reason((sm_status)to) && rq->reason == NULL)
    return sm_refuse(v, "EREASON_REQUIRED",
                     "moving to %s needs a wait reason: resource, dependency, review, input or "
                     "system",
                     rq->to);
  if (!sm_needs_reason((sm_status)to) && rq->reason != NULL)
    return sm_refuse(v, "EREASON_UNEXPECTED",
                     "a wait reason is only given when moving to blocked or "
                     "waiting_for_developer, not to %s; leave the reason out",
                     rq->to);
  /* Ending a card's work without a review is a person's decision: an agent that cannot
   * finish blocks the card with a reason or asks. Anything but a known engine or person is
   * judged as an agent. */
  int agent = rq->by != SM_BY_ENGINE && rq->by != SM_BY_PERSON;
  /* A card waits on money only when the engine measured the spend; a model claiming it
   * would hold the card for a person's approval that no amount explains. */
  if (agent && rq->reason != NULL && sm_reason_parse(rq->reason) == SM_REASON_BUDGET)
    return sm_refuse(v, "EREASON_INVALID",
                     "the wait reason budget is the engine's, set when a money budget would be "
                     "passed; use resource, dependency, review, input or system");
  if (agent && (to == SM_CANCELED || to == SM_ARCHIVED))
    return sm_refuse(v, "EPERSON",
                     "only a person cancels or archives a card ('orket cancel ID \"reason\"'); "
                     "if the work cannot be done, move the %s to blocked with a reason, or ask "
                     "with request_input",
                     tn);
  if (agent && type == SM_ISSUE && from == SM_CODE_REVIEW && to != SM_DONE &&
      to != SM_IN_PROGRESS)
    return sm_refuse(v, "EREVIEW_DECISION",
                     "an issue in code_review is approved (done) or sent back (in_progress), "
                     "nothing else; decide one of the two and say why in the note");
  if (to == SM_IN_PROGRESS && !rq->deps_done)
    return sm_refuse(v, "EDEPENDENCY",
                     "the %s cannot start while a card it depends on is not done; finish the "
                     "dependencies first, or move it to blocked with reason dependency",
                     tn);
  if (type == SM_ISSUE && to == SM_DONE) {
    if (!sm_has_role(rq, SM_REVIEWER_ROLE))
      return sm_refuse(v, "EREVIEWER",
                       "only a seat holding the %s role may move an issue to done; ask the "
                       "reviewer to approve it",
                       SM_REVIEWER_ROLE);
    if (rq->worked_by != NULL && rq->seat != NULL && strcmp(rq->worked_by, rq->seat) == 0)
      return sm_refuse(v, "ESELF_REVIEW",
                       "seat %s did the work on this issue, so it cannot approve it; another "
                       "seat holding the %s role must review it",
                       rq->seat, SM_REVIEWER_ROLE);
  }
  return 1;
}
