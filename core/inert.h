/* inert.h: the character rules behind text made safe for a terminal (orket.inert) and the
 * JSON orket prints (orket.jsonout): strict UTF-8 decoding and the invisible characters a
 * terminal acts on or that hide or reorder text. Pure C, no state. */
#ifndef ORKET_INERT_H
#define ORKET_INERT_H

#include <stddef.h>
#include <stdint.h>

/* One strictly valid UTF-8 sequence at s (n bytes available): no overlongs, no
 * surrogates, at most U+10FFFF. -> its length (2-4) with *cp set, or 0 (ASCII is not
 * decoded here: a byte below 0x80 gives 0 too). */
int inert_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Whether the n bytes at p are all strictly valid UTF-8 (inert_decode's rules; ASCII and
 * NUL are characters): the text both stores keep as it is (orket.store.records escapes
 * anything else before it is stored). */
int inert_valid(const char *p, size_t n);

/* Whether cp is shown escaped: C1 controls, and the invisible format characters that hide
 * text or reorder it (bidi embeddings, overrides and isolates, marks, zero-width spaces,
 * word joiners, the BOM, interlinear annotations, tag characters). ZWJ/ZWNJ stay. */
int inert_invisible(uint32_t cp);

/* Characters as JSON Schema's length keywords count them (code points), in text that may
 * hold bytes that are not UTF-8 (a Lua caller's, a tool call's): each byte but a UTF-8
 * continuation byte starts one. The one count behind every character limit (the schema
 * checker's, the CLI's, import's, the accounts'). */
size_t inert_chars(const char *p, size_t n);

#endif
