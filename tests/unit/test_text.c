/* tok_utf8_clean: invalid UTF-8 becomes U+FFFD, valid text is untouched. */
#include <stdlib.h>
#include <string.h>

#include "common/model/tok.h"
#include "tests/harness.h"

static int clean_is(const char *in, size_t n, const char *want) {
    char *got = tok_utf8_clean(in, n);
    int ok = !strcmp(got, want);
    if (!ok) printf("    got \"%s\", want \"%s\"\n", got, want);
    free(got);
    return ok;
}

TEST(text_utf8_clean_replaces_only_invalid_bytes) {
    CHECK(clean_is("plain", 5, "plain"));
    CHECK(clean_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    CHECK(clean_is("a\xff" "b", 3, "a\xef\xbf\xbd" "b"));              /* stray byte */
    CHECK(clean_is("\xc3", 1, "\xef\xbf\xbd"));                        /* truncated sequence */
    CHECK(clean_is("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"));        /* overlong */
    CHECK(clean_is("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd")); /* surrogate */
    CHECK(clean_is("x\0y", 3, "x"));                                   /* NUL ends the C string */
}
