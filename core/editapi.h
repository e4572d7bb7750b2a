/* editapi.h: libedit's readline entry points, loaded with dlopen when `orket repl` first
 * reads a line from a terminal or touches its history. libedit brings libtinfo, libbsd and
 * libmd with it: four libraries that every other command loaded at start for nothing.
 * <editline/readline.h> is used for its declarations alone. */
#ifndef ORKET_EDITAPI_H
#define ORKET_EDITAPI_H

#include <stddef.h>
#include <stdio.h>

#include <editline/readline.h>

/* The functions used, and the variables completion is set up through (a field holds the
 * variable's address). One list makes both the table and its loader, and each field takes
 * its type from libedit's own declaration, so the two cannot disagree. */
#define EDITAPI_FUNCS(X)                                                                                      \
  X(readline) X(add_history) X(using_history) X(read_history) X(write_history) X(stifle_history)              \
  X(rl_attempted_completion_function) X(rl_attempted_completion_over) X(rl_basic_word_break_characters)        \
  X(rl_completion_append_character)

typedef struct editapi {
  void *lib;
#define EDITAPI_FIELD(name) __typeof__(name) *name;
  EDITAPI_FUNCS(EDITAPI_FIELD)
#undef EDITAPI_FIELD
} editapi;

/* Loads libedit (libedit.so.2) and every entry point above. Returns 0, or -1 with a message
 * naming what is missing. Once loaded it stays loaded until the process ends: its history
 * is process-wide state. */
int editapi_open(editapi *api, char *err, size_t errlen);

#endif
