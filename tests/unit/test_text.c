/* tok_utf8_clean: invalid UTF-8 becomes U+FFFD, valid text is untouched. */
#include <jansson.h>
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
    /* F5..FF are never lead bytes, whatever follows */
    CHECK(clean_is("\xff\x80\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
    CHECK(clean_is("\xf8\x88\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
    CHECK(clean_is("\xf5\x80\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
    CHECK(clean_is("\xef\xbf\xbf", 3, "\xef\xbf\xbf")); /* U+FFFF: a valid 3-byte sequence still */
    for (int b = 0xf5; b <= 0xff; b++) { /* every such "clean" text is one jansson accepts */
        char in[4] = {(char)b, (char)0x80, (char)0x80, 0};
        char *got = tok_utf8_clean(in, 3);
        json_t *j = json_string(got);
        CHECKF(j != NULL, "lead byte %02x: not valid UTF-8 after cleaning", b);
        json_decref(j);
        free(got);
    }
}
