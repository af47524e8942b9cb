/*
 * `elmon report` end to end on one events file (cli/events.c, then every
 * output of cli/summary.c), as a crash, a full disk or another program may
 * leave it: cut lines, foreign JSON, newer schemas, huge numbers.
 *
 * Checked: counted lines add up; loops come out ordered by (pid, tid);
 * every span has a culprit and the culprit ranking adds up to the spans,
 * best first; the JSON summary is valid JSON (read back with the same
 * reader); the JUnit report carries no control character XML 1.0 forbids;
 * the --html page's data element parses and every index in it is in range,
 * and the --speedscope file is JSON whose events nest, sorted, with frame
 * indices in range, one profile per loop thread that blocked
 * (tests/report_check.h, the checks test_cli_report makes on real files).
 *
 * Input: the file; its first byte also picks the budget.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "fuzz.h"
#include "json.h"
#include "report_check.h"

static char path[64];
static int fd = -1;

static void cleanup(void)
{
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(path, sizeof path, "/tmp/elmon-fuzz-events-%d.jsonl", (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    atexit(cleanup);
    return 0;
}

static char *render(void (*fn)(FILE *, const struct ev_set *, const struct summary_info *),
                    const struct ev_set *set, const struct summary_info *si, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    FUZZ_CHECK(f);
    fn(f, set, si);
    fclose(f);
    return text;
}

static void folded(FILE *f, const struct ev_set *set, const struct summary_info *si)
{
    (void)si;
    summary_folded(f, set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    FUZZ_CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
    size_t lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    lines += size && data[size - 1] != '\n';

    struct ev_set set = {0};
    FUZZ_CHECK(ev_load_path(&set, path) == 0);
    FUZZ_CHECK(set.n_files == 1);
    FUZZ_CHECK(set.n_records + set.n_malformed + set.n_foreign <= lines);
    ev_finish(&set);

    size_t spans = 0, counted = 0;
    for (size_t i = 0; i < set.n_loops; i++) {
        const struct ev_loop *l = &set.loops[i];
        if (i) {
            const struct ev_loop *p = &set.loops[i - 1];
            FUZZ_CHECK(p->pid < l->pid || (p->pid == l->pid && p->tid < l->tid));
        }
        for (size_t j = 0; j < l->n_spans; j++)
            FUZZ_CHECK(l->spans[j].culprit && l->spans[j].culprit[0]);
        spans += l->n_spans;
    }
    for (size_t i = 0; i < set.n_culprits; i++) {
        counted += set.culprits[i].count;
        FUZZ_CHECK(set.culprits[i].max_ms <= set.culprits[i].total_ms);
        if (i)
            FUZZ_CHECK(set.culprits[i - 1].total_ms >= set.culprits[i].total_ms);
    }
    FUZZ_CHECK(counted == spans);

    unsigned sel = size ? data[0] : 0;
    struct summary_info si = {
        .exit_status = -1,
        .wall_s = 1.5,
        .budget = {.fail_over_ms = sel & 1 ? (double)(sel % 50) : -1, .fail_on = (int)(sel >> 1) % 3},
    };
    size_t len;
    char *text = render(summary_json, &set, &si, &len);
    struct jval *v = jv_parse(text, len);
    FUZZ_CHECK(v && v->type == J_OBJ);
    jv_free(v);
    free(text);

    text = render(summary_junit, &set, &si, &len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        FUZZ_CHECK(c >= 0x20 || c == '\n' || c == '\t' || c == '\r');
    }
    free(text);
    free(render(summary_text, &set, &si, &len));
    free(render(folded, &set, &si, &len));

    size_t blocked = 0, profiles = 0;
    for (size_t i = 0; i < set.n_loops; i++)
        blocked += set.loops[i].n_spans > 0;
    text = render(summary_html, &set, &si, &len);
    const char *why = report_check_html(text, len);
    if (why)
        fuzz_fail(__FILE__, __LINE__, why);
    free(text);
    text = render(summary_speedscope, &set, &si, &len);
    why = report_check_speedscope(text, len, &profiles);
    if (why)
        fuzz_fail(__FILE__, __LINE__, why);
    FUZZ_CHECK(profiles == blocked);
    free(text);
    summary_over_budget(&set, &si.budget);
    ev_free(&set);
    return 0;
}
