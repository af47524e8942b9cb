/*
 * elmon: the command users type.  Dispatches to the subcommands (run.c,
 * report.c, live.c) and holds the help texts, which docs/CLI.md expands.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "version.h"

static const struct {
    const char *name, *text;
} help[] = {
    {"elmon",
     "Usage: elmon COMMAND [ARGS...]\n"
     "Measure every event-loop turn of a program and report the turns that block.\n"
     "\n"
     "Commands:\n"
     "  run [options] -- PROGRAM [ARGS...]  run PROGRAM under libelmon, summarise, give a CI verdict\n"
     "  stat [--json] [--watch N] PID       live figures of one monitored process\n"
     "  top [PID...]                        every monitored process of yours, refreshed like top\n"
     "  report [options] FILES|DIR          events files written earlier: summary, page, stacks\n"
     "  serve [--listen ADDR]               Prometheus metrics of every monitored process of yours\n"
     "  attach [options] PID                load libelmon into PID, already running, and monitor it\n"
     "  detach PID                          end what attach started: calls put back, summaries written\n"
     "\n"
     "Options:\n"
     "  -h, --help            this text ('elmon help COMMAND': a command's)\n"
     "  --version             elmon's version and the events schema it reads\n"
     "\n"
     "'elmon COMMAND --help' describes each; the manual is docs/CLI.md.\n"},
    {"run",
     "Usage: elmon run [options] -- COMMAND [ARGS...]\n"
     "Run COMMAND with libelmon preloaded (children too), then summarise every loop thread.\n"
     "\n"
     "libelmon settings (each sets one environment variable):\n"
     "  --block-ms MS         a turn busy this long is a blocking span (ELMON_BLOCK_MS, 50)\n"
     "  --critical-ms MS      from this long a span is critical (ELMON_CRITICAL_MS, 500)\n"
     "  --stacks MODE         stack capture: off, native or all (ELMON_STACKS)\n"
     "  --log DEST            human lines: stderr, off or a file, %p = pid (ELMON_LOG)\n"
     "  --otlp ENDPOINT       export OTLP to ENDPOINT (OTEL_EXPORTER_OTLP_ENDPOINT)\n"
     "  --service NAME        service.name of the exported data (OTEL_SERVICE_NAME)\n"
     "  --clock MODE          auto, tsc or monotonic (ELMON_CLOCK)\n"
     "  --verbose             one summary line per loop in the log too (ELMON_VERBOSE)\n"
     "  --no-children         do not monitor programs COMMAND executes (ELMON_CHILDREN=0)\n"
     "  --set NAME=VALUE      any other variable\n"
     "Output:\n"
     "  --out DIR             events files go to DIR/events.PID.jsonl (default: a new\n"
     "                        ./elmon-DATE-TIME directory, printed)\n"
     "  --junit FILE          JUnit XML: a test case per process and loop thread\n"
     "  --json FILE           the summary as JSON ('-' for stdout)\n"
     "  --html FILE           the run as one self-contained page: lag timeline, flame\n"
     "                        graph of blocked time, table of spans\n"
     "  --speedscope FILE     the spans as a speedscope file (one profile per loop thread)\n"
     "  --quiet               print no summary\n"
     "CI verdict:\n"
     "  --fail-over MS        fail when a blocking span lasts longer than MS\n"
     "  --fail-on SEVERITY    fail on any span of SEVERITY (warning or critical) or worse\n"
     "  -h, --help            this text\n"
     "\n"
     "Exit status: 123 when over budget, else COMMAND's own (128+N when killed by\n"
     "signal N); 125 elmon failed, 126 COMMAND cannot run, 127 COMMAND not found,\n"
     "2 bad options.  Signals sent to elmon are forwarded to COMMAND.\n"},
    {"stat",
     "Usage: elmon stat [--json] [--watch SECONDS] PID\n"
     "Live figures of each loop thread of PID, a process of yours monitored by libelmon:\n"
     "status (healthy < 10 ms <= ok < 50 ms <= degraded < 500 ms <= critical, from the\n"
     "largest lag of the last 10 s), current and max lag, utilization, turns per second,\n"
     "blocking spans, and the last span's culprit.\n"
     "\n"
     "  -j, --json            one JSON object per look\n"
     "  -w, --watch SECONDS   look again every SECONDS until interrupted or PID exits\n"
     "  -h, --help            this text\n"
     "\n"
     "Exit status: 0; 1 when PID is gone, not yours or not monitored; 2 bad options.\n"},
    {"top",
     "Usage: elmon top [-d SECONDS] [-n COUNT] [PID...]\n"
     "Every monitored process of yours (or the PIDs given), one row per loop thread,\n"
     "sorted by current lag, refreshed every SECONDS (default 1).  q quits.\n"
     "\n"
     "  -d, --delay SECONDS   time between refreshes\n"
     "  -n, --iterations N    stop after N refreshes (batch mode when not on a terminal)\n"
     "  -h, --help            this text\n"
     "\n"
     "Exit status: 0; 1 when the stats directory is unusable; 2 bad options.\n"},
    {"report",
     "Usage: elmon report [--folded | --json] [--html FILE] [--speedscope FILE] FILES|DIR...\n"
     "The summary of `elmon run` for events files (ELMON_EVENTS) written earlier: one\n"
     "row per process and loop thread, then the top culprits by total blocked time.\n"
     "A directory means every *.jsonl file in it.  Malformed, truncated or foreign\n"
     "lines are counted and skipped with a warning.\n"
     "\n"
     "  --folded              blocked time as folded stacks (flamegraph.pl, inferno)\n"
     "  --json                the summary as JSON\n"
     "  --html FILE           also the run as one self-contained page: lag timeline,\n"
     "                        flame graph of blocked time, table of spans\n"
     "  --speedscope FILE     also the spans as a speedscope file ('-' for stdout)\n"
     "  -h, --help            this text\n"
     "\n"
     "Exit status: 0; 1 when nothing could be read, a file has a newer schema or an\n"
     "output file could not be written;\n"
     "2 bad options.\n"},
    {"serve",
     "Usage: elmon serve [--listen HOST:PORT] [--all-users]\n"
     "Serve /metrics in the Prometheus text format (OpenMetrics when the scraper asks\n"
     "for it) for every process of yours that runs libelmon, from the live stats files\n"
     "elmon stat reads: one series set per process and loop thread. No socket is opened\n"
     "in any host; figures are kept fresh only while someone scrapes.\n"
     "\n"
     "  -l, --listen HOST:PORT  where to listen (default 127.0.0.1:9464; port 0: any)\n"
     "  --all-users             every user's monitored processes (root only)\n"
     "  -h, --help              this text\n"
     "\n"
     "Exit status: 0 when stopped by SIGTERM or SIGINT; 1 when it cannot listen, the\n"
     "stats directory is unusable or --all-users is asked for without root; 2 bad\n"
     "options.\n"},
    {"attach",
     "Usage: elmon attach [--out DIR] [--block-ms MS] [--critical-ms MS] [--log DEST] PID\n"
     "Load libelmon into PID, a process already running that was started without it;\n"
     "from then on it is monitored as under `elmon run` (docs/ATTACH.md).  One thread\n"
     "parked in a wait is traced for a moment (ptrace) and let go; nothing stays traced.\n"
     "\n"
     "  --out DIR             events files go to DIR/events.PID.jsonl (default: a new\n"
     "                        ./elmon-DATE-TIME directory, printed)\n"
     "  --block-ms MS         a turn busy this long is a blocking span (ELMON_BLOCK_MS, 50)\n"
     "  --critical-ms MS      from this long a span is critical (ELMON_CRITICAL_MS, 500)\n"
     "  --log DEST            human lines: stderr (PID's), off or a file, %p = pid (ELMON_LOG)\n"
     "  -h, --help            this text\n"
     "\n"
     "Exit status: 0 attached, or libelmon was already there; 3 no such process; 4 not\n"
     "permitted (ptrace_scope, another user's process); 5 already traced; 6 no C library\n"
     "(static); 7 no dlopen in its C library; 8 loading failed (PID left as it was);\n"
     "1 libelmon.so or the events directory missing; 2 bad options.\n"},
    {"detach",
     "Usage: elmon detach PID\n"
     "End what `elmon attach` started in PID: the calls it redirected are put back, and\n"
     "the measurement ends as at exit (open spans closed, summaries written).  libelmon\n"
     "stays mapped, idle; PID cannot be attached again before it restarts.\n"
     "\n"
     "  -h, --help            this text\n"
     "\n"
     "Exit status: 0 detached, or already; 1 libelmon not in PID or preloaded (not\n"
     "attached); 3 no such process; 4 not permitted; 5 already traced; 8 failed.\n"},
};

void usage(const char *subcommand)
{
    for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
        if (strcmp(help[i].name, subcommand) == 0)
            fputs(help[i].text, stdout);
}

int parse_ms(const char *opt, const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0 && v <= 3600000)) {
        fprintf(stderr, "elmon: %s: milliseconds between 0 and 3600000, not '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"run", cmd_run}, {"stat", cmd_stat}, {"top", cmd_top}, {"report", cmd_report}, {"serve", cmd_serve},
                {"attach", cmd_attach}, {"detach", cmd_detach}};
    if (argc < 2) {
        usage("elmon");
        return ELMON_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc > 2 && strcmp(argv[1], "help") == 0 ? argv[2] : "elmon");
        return ELMON_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("elmon %s (events schema %d)\n", ELMON_VERSION, ELMON_EVENTS_SCHEMA);
        return ELMON_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "elmon: unknown command '%s'\nTry 'elmon --help'.\n", argv[1]);
    return ELMON_EXIT_USAGE;
}
