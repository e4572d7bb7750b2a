/* dlapi.h: filling a table of function pointers from a library loaded with dlopen. The
 * libraries loaded on first use (curlapi.h, editapi.h, gitapi.h, mhdapi.h, pgapi.h) list
 * their entry points as {symbol, field offset} and share this one loop and its error
 * message. */
#ifndef ORKET_DLAPI_H
#define ORKET_DLAPI_H

#include <stddef.h>

typedef struct dlapi_sym {
  const char *name; /* the library's symbol, e.g. "git_index_add" */
  size_t offset;    /* offsetof the function pointer field it fills */
} dlapi_sym;

/* Looks up each of syms[0..n) in lib and stores it in the function pointer field at
 * (char *)table + offset. Returns 0, or -1 with err set to "LIBNAME has no SYMBOL: WHY"
 * (the fields filled so far are left as they are). */
int dlapi_bind(void *lib, void *table, const dlapi_sym *syms, size_t n, const char *libname, const char *why,
               char *err, size_t errlen);

/* After a dlopen of libname that failed: err set to why, from dlerror(). A library missing or
 * broken is "cannot load LIBNAME (install the PACKAGE package): ..."; one that could not be
 * mapped or opened for a limit of the process (its address space, its open files) says that
 * instead: installing it again would not help. */
void dlapi_open_failed(const char *libname, const char *package, char *err, size_t errlen);

#endif
