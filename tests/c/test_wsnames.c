/* test_wsnames.c: names a Windows or macOS clone cannot check out (workspace.h,
 * ws_portable_name_refused, ws_name_fold): the rules one name at a time, and a write, an
 * append, a mkdir and a move's target refused with them, twins by case or NFC/NFD found
 * against what the folder holds, and all of it allowed with portable_names = 0. */
#define _GNU_SOURCE
#include "check.h"
#include "tests.h"
#include "workspace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the rule that refuses name, "" when none does */
static const char *tn_why(const char *name) {
  const char *why = ws_portable_name_refused(name, strlen(name));
  return why ? why : "";
}

TEST(test_ws_portable_name_rules) {
  static const char *const refused[] = {
      "CON", "con", "Con.txt", "aux.txt", "AUX", "nul", "NUL.tar.gz", "prn", "com1", "COM9.log", "lpt1", "LPT3.txt",
      "con .txt", "conin$", "CONOUT$.x", "com\xc2\xb9", "LPT\xc2\xb2.txt",
      "trail.", "space ", "dots..", "a:b.txt", "q?.txt", "a<b", "a>b", "a\"b", "a|b", "st*r", "back\\slash",
      "cr\r.txt", "nl\nx", "tab\t.txt", "\x1f", NULL};
  static const char *const allowed[] = {
      "README.md", "console", "con_x", "conx.txt", "com", "com0", "com10", "lpt", "lptx", "auxiliary.c", "nully",
      ".hidden", "a.b.c", "caf\xc3\xa9.txt", "x y.txt", "com\xc2\xb4", "a.git", "-dash", "~tilde", "[brackets]",
      NULL};
  for (const char *const *p = refused; *p; p++) {
    const char *why = ws_portable_name_refused(*p, strlen(*p));
    CHECK(t, why != NULL);
    if (why == NULL) fprintf(stderr, "    not refused: '%s'\n", *p);
  }
  for (const char *const *p = allowed; *p; p++) {
    const char *why = ws_portable_name_refused(*p, strlen(*p));
    CHECK(t, why == NULL);
    if (why) fprintf(stderr, "    refused: '%s': %s\n", *p, why);
  }
  CHECK(t, strstr(tn_why("CON"), "device") != NULL);
  CHECK(t, strstr(tn_why("a."), "ends in a dot or a space") != NULL);
  CHECK(t, strstr(tn_why("a:b"), "< > :") != NULL);
  CHECK(t, strstr(tn_why("a\rb"), "control character") != NULL);
  /* only the n bytes given: "CON" cut from "CONSOLE" is a device, "CONSOLE" is not */
  CHECK(t, ws_portable_name_refused("CONSOLE", 3) != NULL && ws_portable_name_refused("CONSOLE", 7) == NULL);
}

static int same_key(const char *a, const char *b) {
  char ka[2 * WS_NAME_MAX + 1], kb[2 * WS_NAME_MAX + 1];
  size_t na = ws_name_fold(a, strlen(a), ka, 0), nb = ws_name_fold(b, strlen(b), kb, 0);
  return na == nb && memcmp(ka, kb, na) == 0;
}

static void tn_name_twin(check_ctx *t);
static void tn_device_name(check_ctx *t);

/* (with ws_name_twin and ws_device_name, in the same test: tests.h lists this one) */
TEST(test_ws_name_fold) {
  CHECK(t, same_key("README.md", "readme.md"));
  CHECK(t, same_key("SRC", "src"));
  CHECK(t, same_key("caf\xc3\xa9.txt", "cafe\xcc\x81.txt"));         /* NFC, NFD */
  CHECK(t, same_key("CAF\xc3\x89.TXT", "cafe\xcc\x81.txt"));         /* upper NFC, lower NFD */
  CHECK(t, same_key("CAFE\xcc\x81", "caf\xc3\xa9"));                 /* upper NFD, lower NFC */
  CHECK(t, same_key("\xc3\x85ngstr\xc3\xb6m", "a\xcc\x8angstro\xcc\x88m")); /* Ångström */
  CHECK(t, same_key("\xc5\x81\xc3\xb3" "d\xc5\xba", "\xc5\x82o\xcc\x81" "dz\xcc\x81")); /* Łódź */
  CHECK(t, same_key("\xc3\x86", "\xc3\xa6"));                          /* Æ æ */
  CHECK(t, !same_key("caf\xc3\xa9", "cafe"));
  CHECK(t, !same_key("a.txt", "b.txt"));
  CHECK(t, !same_key("stra\xc3\x9f" "e", "strasse"));
  CHECK(t, !same_key("ab", "a"));
  char out[2 * WS_NAME_MAX + 1];
  CHECK_STR(t, (ws_name_fold("A\xc3\x89", 3, out, 0), out), "ae\xcc\x81");
  /* a lone lead byte at the end, or one without its continuation, is kept as it is */
  CHECK(t, ws_name_fold("a\xc3", 2, out, 0) == 2 && memcmp(out, "a\xc3", 2) == 0);
  CHECK(t, ws_name_fold("\xc3z", 2, out, 0) == 2 && memcmp(out, "\xc3z", 2) == 0);
  /* keep_case: decomposed only, each letter in its case; letters without a mark as they are */
  CHECK_STR(t, (ws_name_fold("\xc3\x89 \xc5\xb8 \xc5\xbe \xc3\x86 \xc4\xb0", 14, out, 1), out),
            "E\xcc\x81 Y\xcc\x88 z\xcc\x8c \xc3\x86 I\xcc\x87");
  tn_name_twin(t);
  tn_device_name(t);
}

/* ws_name_twin names how two names are one file: by case letter for letter, by composition
 * alone, or by both (an NFC letter against an NFD pair in another case) */
static int tn_twin(const char *a, const char *b) { return ws_name_twin(a, strlen(a), b, strlen(b)); }

static void tn_name_twin(check_ctx *t) {
  CHECK(t, tn_twin("README.md", "readme.md") == WS_TWIN_CASE);
  CHECK(t, tn_twin("\xc3\x86", "\xc3\xa6") == WS_TWIN_CASE);                       /* Æ æ */
  CHECK(t, tn_twin("CAF\xc3\x89", "caf\xc3\xa9") == WS_TWIN_CASE);                 /* CAFÉ café */
  CHECK(t, tn_twin("caf\xc3\xa9", "cafe\xcc\x81") == WS_TWIN_COMPOSED);
  CHECK(t, tn_twin("Caf\xc3\xa9", "cafe\xcc\x81") == (WS_TWIN_CASE | WS_TWIN_COMPOSED));
  /* as many bytes, yet composition: NFC then NFD against NFD then NFC */
  CHECK(t, tn_twin("\xc3\xa9" "e\xcc\x81", "e\xcc\x81\xc3\xa9") == WS_TWIN_COMPOSED);
  CHECK(t, tn_twin("\xc4\xb0", "I\xcc\x87") == WS_TWIN_COMPOSED);                 /* İ, I and U+0307 */
  CHECK(t, tn_twin("\xc4\xb0", "i\xcc\x87") == (WS_TWIN_CASE | WS_TWIN_COMPOSED));
  CHECK(t, tn_twin("a.txt", "a.txt") == 0 && tn_twin("cafe", "caf\xc3\xa9") == 0 && tn_twin("ab", "a") == 0);
  CHECK(t, tn_twin("", "") == 0 && tn_twin("a", "") == 0);
}

/* the device's stem, or 0: the one rule card ids use too (orket.board's device_name) */
static void tn_device_name(check_ctx *t) {
  CHECK(t, ws_device_name("aux.tar.gz", 10) == 3 && ws_device_name("Con .txt", 8) == 3);
  CHECK(t, ws_device_name("COM\xc2\xb9", 5) == 5 && ws_device_name("conout$", 7) == 7 && ws_device_name("LPT9", 4) == 4);
  CHECK(t, ws_device_name("com0", 4) == 0 && ws_device_name("a.aux", 5) == 0 && ws_device_name("CON-1", 5) == 0);
}

static int tn_exists(const char *base, const char *rel) {
  char p[WS_PATH_MAX];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", base, rel);
  return lstat(p, &st) == 0;
}

/* Each operation that makes a name refuses the Windows names and the twins, naming the rule,
 * and makes nothing; writing to a file that is there, a case-only rename and names beside
 * them are fine; portable_names = 0 allows every one. Both resolution modes. */
TEST(test_ws_portable_ops) {
  for (int mode = WS_RESOLVE_OPENAT2; mode <= WS_RESOLVE_WALK; mode++) {
    char base[] = "/tmp/orket-wsnames-XXXXXX";
    CHECK(t, mkdtemp(base) != NULL);
    ws w;
    ws_err e;
    if (ws_open(&w, base, (ws_resolve_mode)mode, &e) != 0) {
      CHECK(t, mode == WS_RESOLVE_OPENAT2); /* no openat2 here: the walk covers it */
      rmdir(base);
      continue;
    }
    CHECK(t, w.portable_names == 1);
    CHECK(t, ws_write(&w, "README.md", 9, "a", 1, &e) == 0);
    CHECK(t, ws_mkdir(&w, "src", 3, &e) == 0);
    CHECK(t, ws_write(&w, "src/Main.lua", 12, "a", 1, &e) == 0);
    CHECK(t, ws_write(&w, "caf\xc3\xa9.txt", 9, "a", 1, &e) == 0);
    CHECK(t, ws_write(&w, "x.txt", 5, "a", 1, &e) == 0);

    CHECK(t, ws_write(&w, "aux.txt", 7, "a", 1, &e) == -1 && strcmp(e.code, "EINVAL") == 0);
    CHECK(t, strstr(e.msg, "workspace: write: the name 'aux.txt' in aux.txt cannot be checked out on Windows: "
                           "Windows reads it as a device") != NULL);
    CHECK(t, strstr(e.msg, "portable_names = false") != NULL);
    CHECK(t, ws_append(&w, "d/nul", 5, "a", 1, &e) == -1 && strcmp(e.code, "EINVAL") == 0);
    CHECK(t, strstr(e.msg, "append: the name 'nul' in d/nul") != NULL);
    CHECK(t, ws_mkdir(&w, "new/trail./x", 12, &e) == -1 && strcmp(e.code, "EINVAL") == 0);
    CHECK(t, strstr(e.msg, "mkdir: the name 'trail.' in new/trail./x") != NULL && !tn_exists(base, "new"));
    CHECK(t, ws_move(&w, "x.txt", 5, "cr\r.txt", 7, &e) == -1 && strcmp(e.code, "EINVAL") == 0);
    CHECK(t, strstr(e.msg, "move: the name 'cr\\x0d.txt' in cr\\x0d.txt") != NULL && tn_exists(base, "x.txt"));

    CHECK(t, ws_write(&w, "readme.md", 9, "b", 1, &e) == -1 && strcmp(e.code, "EINVAL") == 0);
    CHECK(t, strstr(e.msg, "write: 'readme.md' differs from 'README.md', already in the top folder, only in letter "
                           "case") != NULL);
    CHECK(t, ws_append(&w, "src/main.lua", 12, "b", 1, &e) == -1 && strcmp(e.code, "EINVAL") == 0);
    CHECK(t, strstr(e.msg, "append: 'main.lua' differs from 'Main.lua', already in the folder src, only in letter "
                           "case") != NULL);
    CHECK(t, ws_mkdir(&w, "SRC/other", 9, &e) == -1 && strcmp(e.code, "EINVAL") == 0);
    CHECK(t, strstr(e.msg, "mkdir: 'SRC' differs from 'src'") != NULL && !tn_exists(base, "SRC"));
    CHECK(t, ws_write(&w, "cafe\xcc\x81.txt", 10, "b", 1, &e) == -1 && strcmp(e.code, "EINVAL") == 0);
    CHECK(t, strstr(e.msg, "'cafe\\xcc\\x81.txt' differs from 'caf\\xc3\\xa9.txt'") != NULL);
    CHECK(t, strstr(e.msg, "only in how accented letters are composed (NFC or NFD): a macOS clone") != NULL);
    /* as many bytes as the name there, and still composition alone, not case */
    CHECK(t, ws_write(&w, "\xc3\xa9" "e\xcc\x81", 5, "a", 1, &e) == 0);
    CHECK(t, ws_write(&w, "e\xcc\x81\xc3\xa9", 5, "b", 1, &e) == -1 && strcmp(e.code, "EINVAL") == 0);
    CHECK(t, strstr(e.msg, "only in how accented letters are composed (NFC or NFD): a macOS clone") != NULL);
    CHECK(t, ws_write(&w, "Cafe\xcc\x81.txt", 10, "b", 1, &e) == -1);
    CHECK(t, strstr(e.msg, "only in letter case and in how accented letters are composed") != NULL);
    CHECK(t, ws_move(&w, "x.txt", 5, "src/MAIN.lua", 12, &e) == -1 && strcmp(e.code, "EINVAL") == 0);
    CHECK(t, strstr(e.msg, "move: 'MAIN.lua' differs from 'Main.lua'") != NULL && tn_exists(base, "x.txt"));
    CHECK(t, !tn_exists(base, "readme.md") && !tn_exists(base, "src/main.lua") && !tn_exists(base, "src/MAIN.lua"));

    /* what is there may be written again; a case-only rename leaves one name; others are fine */
    CHECK(t, ws_write(&w, "README.md", 9, "c", 1, &e) == 0);
    CHECK(t, ws_append(&w, "src/Main.lua", 12, "c", 1, &e) == 0);
    CHECK(t, ws_move(&w, "README.md", 9, "Readme.md", 9, &e) == 0);
    CHECK(t, ws_move(&w, "Readme.md", 9, "src/readme.md", 13, &e) == 0);
    CHECK(t, ws_mkdir(&w, "src/sub", 7, &e) == 0 && ws_mkdir(&w, "src", 3, &e) == 0);
    CHECK(t, ws_write(&w, "console.txt", 11, "c", 1, &e) == 0);

    /* a team on Linux only: all of it allowed */
    w.portable_names = 0;
    CHECK(t, ws_write(&w, "aux.txt", 7, "a", 1, &e) == 0);
    CHECK(t, ws_append(&w, "SRC.", 4, "a", 1, &e) == 0);
    CHECK(t, ws_mkdir(&w, "SRC/other", 9, &e) == 0);
    CHECK(t, ws_write(&w, "src/Readme.md", 13, "a", 1, &e) == 0);
    CHECK(t, ws_write(&w, "cafe\xcc\x81.txt", 10, "b", 1, &e) == 0);
    CHECK(t, ws_move(&w, "x.txt", 5, "q?.txt", 6, &e) == 0);
    ws_close(&w);
    char cmd[sizeof base + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    CHECK(t, system(cmd) == 0);
  }
}
