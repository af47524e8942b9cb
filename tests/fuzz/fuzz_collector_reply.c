/*
 * What a collector sends back: the Export*ServiceResponse body
 * (exporter/encode.c otlp_partial_success) and the Retry-After header
 * (exporter/transport.c otlp_parse_retry_after).  Both come from the
 * network, so a hostile or broken collector chooses every byte.
 *
 * Checked: the body decodes to -EINVAL, 0 or 1; 0 means nothing rejected
 * and no message; the message is always NUL-terminated inside its buffer,
 * whatever the buffer's size; a Retry-After is -1 or a wait in whole
 * seconds of at most a year, and a past date is 0.
 *
 * Input: one byte (bit 0: logs rather than metrics; bits 1-6: message
 * buffer size; bit 7: Retry-After instead of a body), then the bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "encode.h"
#include "fuzz.h"
#include "transport.h"

#define YEAR_MS (86400LL * 365 * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++, size--;
    if (sel & 0x80) {
        char *v = fuzz_strndup(data, size);
        time_t now = 1700000000;
        int64_t ms = otlp_parse_retry_after(v, now);
        FUZZ_CHECK(ms == -1 || (ms >= 0 && ms <= YEAR_MS && ms % 1000 == 0));
        free(v);
        return 0;
    }
    size_t msg_n = (sel >> 1) & 0x3f;
    char *msg = malloc(msg_n ? msg_n : 1);
    FUZZ_CHECK(msg);
    memset(msg, 'x', msg_n ? msg_n : 1);
    int64_t rejected = -7;
    int rc = otlp_partial_success(sel & 1, data, size, &rejected, msg, msg_n);
    FUZZ_CHECK(rc == -EINVAL || rc == 0 || rc == 1);
    if (msg_n)
        FUZZ_CHECK(memchr(msg, 0, msg_n) != NULL);
    if (rc == 0) {
        FUZZ_CHECK(rejected == 0);
        FUZZ_CHECK(!msg_n || msg[0] == 0);
    }
    if (!size)
        FUZZ_CHECK(rc == 0);
    free(msg);
    return 0;
}
