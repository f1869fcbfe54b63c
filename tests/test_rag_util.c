/* test_rag_util.c — rag/util.c, the helpers all of rag/ shares: the error
 * convention (message written, status returned, NULL buffer allowed), the
 * growable buffer with its limit, typed array growth (doubling, overflow
 * refused, the array kept on failure), UTF-8 sequences, the clock. */
#include "tests/test.h"

#include "rag/util_internal.h"

#include <stdint.h>
#include <stdlib.h>

TEST(errf_writes_the_message_and_returns_the_status) {
    char e[16];
    CHECK_EQ_INT(rag_errf(e, sizeof e, RAG_ERR_IO, "%s: %d", "file.md", 42), RAG_ERR_IO);
    CHECK_EQ_STR(e, "file.md: 42");
    CHECK_EQ_INT(rag_errf(e, sizeof e, RAG_ERR_LIMIT, "a message longer than the buffer"), RAG_ERR_LIMIT);
    CHECK_EQ_STR(e, "a message longe");        /* cut, still terminated */
    CHECK_EQ_INT(rag_errf(NULL, 0, RAG_ERR_ARG, "nowhere"), RAG_ERR_ARG);
}

TEST(buffer_grows_and_keeps_its_limit) {
    rag_buf b = {0};
    for (int i = 0; i < 1000; i++) REQUIRE(rag_buf_append(&b, "abc", 3) == RAG_OK);
    CHECK_EQ_INT(b.len, 3000);
    CHECK(b.data[2999] == 'c' && b.data[3000] == 0);
    rag_buf_release(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    b.limit = 4;
    CHECK_EQ_INT(rag_buf_append(&b, "abcd", 4), RAG_OK);
    CHECK_EQ_INT(rag_buf_putc(&b, 'e'), RAG_ERR_LIMIT);
    CHECK_EQ_STR(b.data, "abcd");
    rag_buf_release(&b);
}

TEST(arrays_grow_by_doubling_and_refuse_overflow) {
    int *a = NULL;
    size_t cap = 0;
    REQUIRE(rag_array_grow(&a, &cap, 1, sizeof *a, 4) == RAG_OK);
    CHECK_EQ_INT(cap, 4);
    for (int i = 0; i < 4; i++) a[i] = i;
    REQUIRE(rag_array_grow(&a, &cap, 5, sizeof *a, 4) == RAG_OK);
    CHECK_EQ_INT(cap, 8);
    CHECK(a[3] == 3);                          /* contents kept */
    REQUIRE(rag_array_grow(&a, &cap, 3, sizeof *a, 4) == RAG_OK);
    CHECK_EQ_INT(cap, 8);                      /* never shrinks */
    int *before = a;
    CHECK_EQ_INT(rag_array_grow(&a, &cap, SIZE_MAX / 2, sizeof *a, 4), RAG_ERR_LIMIT);
    CHECK(a == before && cap == 8);            /* unchanged on failure */
    free(a);
}

TEST(utf8_sequences) {
    CHECK_EQ_INT(rag_utf8_seq_len((const unsigned char *)"a", 1), 1);
    CHECK_EQ_INT(rag_utf8_seq_len((const unsigned char *)"\xc3\xbc", 2), 2);
    CHECK_EQ_INT(rag_utf8_seq_len((const unsigned char *)"\xc3", 1), 0);          /* cut */
    CHECK_EQ_INT(rag_utf8_seq_len((const unsigned char *)"\xc0\xaf", 2), 0);      /* overlong */
    CHECK_EQ_INT(rag_utf8_seq_len((const unsigned char *)"\xed\xa0\x80", 3), 0);  /* surrogate */
    CHECK(rag_utf8_valid((const unsigned char *)"Stra\xc3\x9f" "e \xf0\x9f\x8d\x8e", 12));
    CHECK(!rag_utf8_valid((const unsigned char *)"Stra\xc3\x9f" "e \xf0\x9f\x8d\x8e", 11));     /* the last one cut */
    char out[4];
    CHECK_EQ_INT(rag_utf8_encode(0x1F34E, out), 4);
    CHECK(memcmp(out, "\xf0\x9f\x8d\x8e", 4) == 0);
    double t0 = rag_now_ms(), t1 = rag_now_ms();
    CHECK(t1 >= t0 && t0 > 0);
}

TEST_MAIN(RUN(errf_writes_the_message_and_returns_the_status), RUN(buffer_grows_and_keeps_its_limit),
          RUN(arrays_grow_by_doubling_and_refuse_overflow), RUN(utf8_sequences))
