/*
 * elmon report [--folded | --json] [--html FILE] [--speedscope FILE] FILES|DIR...
 *
 * The summary of `elmon run` for events files already written (by
 * ELMON_EVENTS or an earlier run), or their blocking as folded stacks;
 * and the same run as an HTML page (html.c) or a speedscope file
 * (speedscope.c).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <string.h>
#include "cli.h"
#include "json.h"

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"folded", no_argument, 0, 'f'},
        {"json", no_argument, 0, 'j'},
        {"html", required_argument, 0, 'H'},
        {"speedscope", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int folded = 0, json = 0, c;
    const char *html = NULL, *speedscope = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': folded = 1; break;
        case 'j': json = 1; break;
        case 'H': html = optarg; break;
        case 'S': speedscope = optarg; break;
        case 'h': usage("report"); return ELMON_EXIT_OK;
        default:
            fprintf(stderr, "Try 'elmon report --help'.\n");
            return ELMON_EXIT_USAGE;
        }
    }
    if (folded && json) {
        fprintf(stderr, "elmon report: --folded and --json exclude each other\n");
        return ELMON_EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "elmon report: no FILES or DIR given\nTry 'elmon report --help'.\n");
        return ELMON_EXIT_USAGE;
    }
    struct ev_set set = {0};
    int read_any = 0;
    for (int i = optind; i < argc; i++) {
        size_t before = set.n_files;
        int rc = ev_load_path(&set, argv[i]);
        if (rc < 0)
            fprintf(stderr, "elmon report: %s: %s\n", esc(argv[i]), strerror(-rc));
        else if (set.n_files == before)
            fprintf(stderr, "elmon report: %s: no events files (*.jsonl) in it\n", esc(argv[i]));
        else
            read_any = 1;
    }
    if (set.newer) {
        fprintf(stderr, "elmon report: %s is newer than this elmon reads (version %d); upgrade elmon to read it\n",
                esc(set.newer_where), ELMON_EVENTS_SCHEMA);
        ev_free(&set);
        return ELMON_EXIT_FAILURE;
    }
    if (!read_any) {
        ev_free(&set);
        return ELMON_EXIT_FAILURE;
    }
    ev_finish(&set);
    struct summary_info si = {.exit_status = -1, .budget = {.fail_over_ms = -1}};
    int failed = 0;
    if (html && summary_to_file(html, &set, &si, summary_html) < 0)
        failed = 1;
    if (speedscope && summary_to_file(speedscope, &set, &si, summary_speedscope) < 0)
        failed = 1;
    if (folded)
        summary_folded(stdout, &set);
    else if (json)
        summary_json(stdout, &set, &si);
    else
        summary_text(stdout, &set, &si);
    ev_free(&set);
    return fflush(stdout) == 0 && !failed ? ELMON_EXIT_OK : ELMON_EXIT_FAILURE;
}
