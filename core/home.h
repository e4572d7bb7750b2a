/* home.h: finding Orket's home (the directory holding lua/orket/init.lua) for the
 * executable, with or without /proc: the executable's directory from /proc/self/exe, else
 * from argv[0] (a path, or a name looked up on PATH), then rt_find_home's places beside it,
 * then the compiled-in install prefix. Plain C; used by main.c. */
#ifndef ORKET_HOME_H
#define ORKET_HOME_H

#include <stddef.h>

/* The real directory of the running executable: proc_link's target (readlink; normally
 * "/proc/self/exe", NULL to skip), else argv0 resolved: a name with a '/' as a path, a bare
 * name as the first executable file of that name in path_env's directories (an empty entry
 * is "."). Writes it into out, and the executable's own real path into exe (when not NULL);
 * returns 0, or -1 when none of them names a file. */
int home_exe_dir(const char *proc_link, const char *argv0, const char *path_env, char *out,
                 size_t outlen, char *exe, size_t exelen);

/* Orket's home for the executable: $ORKET_HOME when set (and only it), else rt_find_home
 * beside the directory home_exe_dir finds, else PREFIX/share/orket (prefix may be NULL).
 * Writes the real path into out, and the executable's path home_exe_dir found into exe
 * ("" unknown; exe may be NULL): where the confinement helper is looked for without /proc.
 * Returns 0, or -1 with a message naming the places tried in err. */
int home_locate(const char *proc_link, const char *argv0, const char *path_env, const char *prefix,
                char *out, size_t outlen, char *exe, size_t exelen, char *err, size_t errlen);

/* Why cand is or is not Orket's home, for a message: its real path and "not there", "no
 * lua/orket/init.lua", or that the library cannot be read (EACCES, with the chmod that
 * fixes it). */
void home_why(const char *cand, char *out, size_t outlen);

#endif
