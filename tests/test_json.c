/*
 * JSON escaping and bounded buffers: control characters, quotes, valid and
 * invalid UTF-8 (thread names are arbitrary bytes), truncation.
 */
#include <check.h>
#include <string.h>
#include "buf.h"
#include "support.h"

static char mem[1024];
static struct elmon_buf b;

static const char *esc(const char *s)
{
    elmon_buf_init(&b, mem, sizeof mem);
    elmon_buf_json_str(&b, s);
    return b.p;
}

START_TEST(plain_and_quotes)
{
    ck_assert_str_eq(esc("loop-0"), "\"loop-0\"");
    ck_assert_str_eq(esc("a\"b\\c"), "\"a\\\"b\\\\c\"");
    ck_assert_str_eq(esc(""), "\"\"");
    elmon_buf_init(&b, mem, sizeof mem);
    elmon_buf_json_str(&b, NULL);
    ck_assert_str_eq(b.p, "null");
}
END_TEST

START_TEST(control_characters)
{
    ck_assert_str_eq(esc("a\nb\tc\rd"), "\"a\\nb\\tc\\rd\"");
    ck_assert_str_eq(esc("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
}
END_TEST

START_TEST(utf8_valid_kept)
{
    ck_assert_str_eq(esc("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
}
END_TEST

START_TEST(utf8_invalid_replaced)
{
    /* lone continuation, truncated sequence, overlong, surrogate, > U+10FFFF */
    ck_assert_str_eq(esc("a\x80z"), "\"a\\ufffdz\"");
    ck_assert_str_eq(esc("a\xc3"), "\"a\\ufffd\"");
    ck_assert_str_eq(esc("\xc0\xaf"), "\"\\ufffd\\ufffd\"");
    ck_assert_str_eq(esc("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
    ck_assert_str_eq(esc("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    ck_assert_str_eq(esc("\xff\xfe"), "\"\\ufffd\\ufffd\"");
}
END_TEST

START_TEST(truncation_is_reported)
{
    char small[8];
    elmon_buf_init(&b, small, sizeof small);
    elmon_buf_json_str(&b, "0123456789");
    ck_assert_int_eq(b.truncated, 1);
    ck_assert_uint_lt(b.len, sizeof small);
    elmon_buf_puts(&b, "x");
    ck_assert_int_eq(b.truncated, 1);
}
END_TEST

START_TEST(keys_and_commas)
{
    elmon_buf_init(&b, mem, sizeof mem);
    elmon_buf_puts(&b, "{");
    elmon_buf_json_key(&b, "a");
    elmon_buf_puts(&b, "1");
    elmon_buf_json_key(&b, "b");
    elmon_buf_json_str(&b, "x");
    elmon_buf_puts(&b, "}");
    ck_assert_str_eq(b.p, "{\"a\":1,\"b\":\"x\"}");
}
END_TEST

START_TEST(quote_value_for_warnings)
{
    elmon_buf_init(&b, mem, sizeof mem);
    elmon_buf_quote_value(&b, "ab\x01'\xff", 64);
    ck_assert_str_eq(b.p, "'ab\\x01\\x27\\xff'");
    elmon_buf_init(&b, mem, sizeof mem);
    elmon_buf_quote_value(&b, "abcdef", 3);
    ck_assert_str_eq(b.p, "'abc...'");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, plain_and_quotes);
    tcase_add_test(tc, control_characters);
    tcase_add_test(tc, utf8_valid_kept);
    tcase_add_test(tc, utf8_invalid_replaced);
    tcase_add_test(tc, truncation_is_reported);
    tcase_add_test(tc, keys_and_commas);
    tcase_add_test(tc, quote_value_for_warnings);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
