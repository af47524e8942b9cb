/*
 * elmon run [options] -- COMMAND [ARGS...]
 *
 * Runs COMMAND with libelmon preloaded, each option set as the one
 * environment variable libelmon reads for it, forwards the signals elmon
 * receives, and when COMMAND ends summarises the events files of every
 * process it started and gives the CI verdict.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "json.h"
#include "thresholds.h"

#ifndef ELMON_INSTALL_LIBDIR
#define ELMON_INSTALL_LIBDIR "lib"
#endif

static volatile pid_t run_child;

/* Signals a terminal sends to the whole foreground process group reach
 * COMMAND by themselves; forwarding them would deliver them twice.  Those
 * sent to elmon alone (kill, a CI runner stopping the job) are forwarded. */
static void forward(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if ((sig == SIGINT || sig == SIGQUIT) && si && si->si_code == SI_KERNEL)
        return;
    int saved = errno;
    if (run_child > 0)
        kill(run_child, sig);
    errno = saved;
}

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM};

/* libelmon.so: $ELMON_LIBRARY, else next to this program: the install
 * layout (bin/../LIBDIR) or the build tree's (bin/../lib). */
int find_library(char *out, size_t n)
{
    const char *env = getenv("ELMON_LIBRARY");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return access(out, R_OK) == 0 ? 0 : -1;
    }
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0)
        return -1;
    self[k] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    static const char *const rel[] = {"../" ELMON_INSTALL_LIBDIR, "../lib", "../lib64"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char cand[PATH_MAX + 64];
        snprintf(cand, sizeof cand, "%s/%s/libelmon.so", self, rel[i]);
        if (access(cand, R_OK) == 0 && realpath(cand, out))
            return 0;
    }
    char pattern[PATH_MAX + 64];
    snprintf(pattern, sizeof pattern, "%s/../lib*/*/libelmon.so", self);
    glob_t g;
    int rc = -1;
    if (glob(pattern, 0, NULL, &g) == 0) {
        if (g.gl_pathc && realpath(g.gl_pathv[0], out))
            rc = 0;
        globfree(&g);
    }
    return rc;
}

int make_out_dir(const char *want, char *out, size_t n)
{
    if (want) {
        snprintf(out, n, "%s", want);
        if (mkdir(out, 0755) < 0 && errno != EEXIST)
            return -errno;
        struct stat st;
        if (stat(out, &st) < 0)
            return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    }
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
    for (int i = 1; i < 1000; i++) {
        if (i == 1)
            snprintf(out, n, "elmon-%s", stamp);
        else
            snprintf(out, n, "elmon-%s-%d", stamp, i);
        if (mkdir(out, 0755) == 0)
            return 0;
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

/* Names of the events files already in dir, so that a reused --out DIR
 * summarises this run only. */
static char **list_events(const char *dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t k = strlen(e->d_name);
        if (k < 7 || strcmp(e->d_name + k - 6, ".jsonl") != 0)
            continue;
        char **nv = realloc(v, (*n + 1) * sizeof *v);
        if (!nv)
            break;
        v = nv;
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    return v;
}

static int listed(char **v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && strcmp(v[i], name) == 0)
            return 1;
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int set_env(const char *name, const char *value)
{
    if (setenv(name, value, 1) < 0) {
        fprintf(stderr, "elmon run: cannot set %s: %s\n", name, strerror(errno));
        return -1;
    }
    return 0;
}

/* ELMON_EVENTS is a pattern: a '%' of the directory name is written %%. */
int events_pattern(const char *dir, char *out, size_t n)
{
    size_t k = 0;
    for (const char *p = dir; *p; p++) {
        if (k + 3 >= n)
            return -1;
        if (*p == '%')
            out[k++] = '%';
        out[k++] = *p;
    }
    int w = snprintf(out + k, n - k, "/events.%%p.jsonl");
    return w < 0 || (size_t)w >= n - k ? -1 : 0;
}

static int prepend_preload(const char *lib)
{
    if (strpbrk(lib, ": \t")) {
        fprintf(stderr, "elmon run: %s: LD_PRELOAD cannot carry a path with ':' or blanks; set ELMON_LIBRARY to another path\n", esc(lib));
        return -1;
    }
    const char *old = getenv("LD_PRELOAD");
    char *v;
    if (asprintf(&v, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "") < 0)
        return -1;
    int rc = set_env("LD_PRELOAD", v);
    free(v);
    return rc;
}

/* Runs argv; returns its status as a shell reports it, or an ELMON_EXIT_*
 * when it could not start. */
static int spawn_and_wait(char **argv, double *wall_s)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        fprintf(stderr, "elmon run: pipe: %s\n", strerror(errno));
        return ELMON_EXIT_RUN_ERROR;
    }
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    struct sigaction sa = {0};
    sa.sa_sigaction = forward;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &sa, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction dfl = {0};
        dfl.sa_handler = SIG_DFL;
        for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
            sigaction(forwarded[i], &dfl, NULL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(pfd[0]);
        execvp(argv[0], argv);
        int e = errno;
        ssize_t w = write(pfd[1], &e, sizeof e);
        (void)w;
        _exit(ELMON_EXIT_CANNOT_EXEC);
    }
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        fprintf(stderr, "elmon run: fork: %s\n", strerror(errno));
        return ELMON_EXIT_RUN_ERROR;
    }
    run_child = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(pfd[1]);
    int exec_errno = 0;
    ssize_t k;
    while ((k = read(pfd[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR)
        ;
    close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    run_child = 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *wall_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (k == (ssize_t)sizeof exec_errno) {
        fprintf(stderr, "elmon run: %s: %s\n", esc(argv[0]), strerror(exec_errno));
        return exec_errno == ENOENT ? ELMON_EXIT_NOT_FOUND : ELMON_EXIT_CANNOT_EXEC;
    }
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

enum {
    OPT_BLOCK = 256, OPT_CRITICAL, OPT_STACKS, OPT_LOG, OPT_OTLP, OPT_SERVICE, OPT_NO_CHILDREN,
    OPT_VERBOSE, OPT_CLOCK, OPT_OUT, OPT_FAIL_OVER, OPT_FAIL_ON, OPT_JUNIT, OPT_JSON, OPT_QUIET, OPT_SET,
    OPT_HTML, OPT_SPEEDSCOPE,
};

static const struct option run_options[] = {
    {"block-ms", required_argument, 0, OPT_BLOCK},
    {"critical-ms", required_argument, 0, OPT_CRITICAL},
    {"stacks", required_argument, 0, OPT_STACKS},
    {"log", required_argument, 0, OPT_LOG},
    {"otlp", required_argument, 0, OPT_OTLP},
    {"service", required_argument, 0, OPT_SERVICE},
    {"no-children", no_argument, 0, OPT_NO_CHILDREN},
    {"verbose", no_argument, 0, OPT_VERBOSE},
    {"clock", required_argument, 0, OPT_CLOCK},
    {"out", required_argument, 0, OPT_OUT},
    {"fail-over", required_argument, 0, OPT_FAIL_OVER},
    {"fail-on", required_argument, 0, OPT_FAIL_ON},
    {"junit", required_argument, 0, OPT_JUNIT},
    {"json", required_argument, 0, OPT_JSON},
    {"html", required_argument, 0, OPT_HTML},
    {"speedscope", required_argument, 0, OPT_SPEEDSCOPE},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"set", required_argument, 0, OPT_SET},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

int cmd_run(int argc, char **argv)
{
    const char *out_want = NULL, *junit = NULL, *json = NULL, *html = NULL, *speedscope = NULL;
    double block_ms = -1;
    int quiet = 0;
    struct summary_info si = {.budget = {.fail_over_ms = -1}, .exit_status = 0};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "+h", run_options, NULL)) != -1) {
        double ms;
        const char *name = NULL, *value = optarg;
        char num[32];
        switch (c) {
        case OPT_BLOCK:
        case OPT_CRITICAL:
            if (parse_ms(c == OPT_BLOCK ? "--block-ms" : "--critical-ms", optarg, &ms) < 0)
                return ELMON_EXIT_USAGE;
            if (ms < 1) {
                fprintf(stderr, "elmon run: %s: at least 1 ms\n", c == OPT_BLOCK ? "--block-ms" : "--critical-ms");
                return ELMON_EXIT_USAGE;
            }
            snprintf(num, sizeof num, "%.0f", ms);
            value = num;
            name = c == OPT_BLOCK ? "ELMON_BLOCK_MS" : "ELMON_CRITICAL_MS";
            if (c == OPT_BLOCK)
                block_ms = ms;
            break;
        case OPT_STACKS: name = "ELMON_STACKS"; break;
        case OPT_LOG: name = "ELMON_LOG"; break;
        case OPT_OTLP: name = "OTEL_EXPORTER_OTLP_ENDPOINT"; break;
        case OPT_SERVICE: name = "OTEL_SERVICE_NAME"; break;
        case OPT_NO_CHILDREN: name = "ELMON_CHILDREN"; value = "0"; break;
        case OPT_VERBOSE: name = "ELMON_VERBOSE"; value = "1"; break;
        case OPT_CLOCK: name = "ELMON_CLOCK"; break;
        case OPT_OUT: out_want = optarg; break;
        case OPT_FAIL_OVER:
            if (parse_ms("--fail-over", optarg, &si.budget.fail_over_ms) < 0)
                return ELMON_EXIT_USAGE;
            if (si.budget.fail_over_ms < 1) {
                fprintf(stderr, "elmon run: --fail-over: at least 1 ms\n");
                return ELMON_EXIT_USAGE;
            }
            break;
        case OPT_FAIL_ON:
            if (strcmp(optarg, "warning") == 0)
                si.budget.fail_on = 1;
            else if (strcmp(optarg, "critical") == 0)
                si.budget.fail_on = 2;
            else {
                fprintf(stderr, "elmon run: --fail-on: 'warning' or 'critical', not '%s'\n", optarg);
                return ELMON_EXIT_USAGE;
            }
            break;
        case OPT_JUNIT: junit = optarg; break;
        case OPT_JSON: json = optarg; break;
        case OPT_HTML: html = optarg; break;
        case OPT_SPEEDSCOPE: speedscope = optarg; break;
        case OPT_QUIET: quiet = 1; break;
        case OPT_SET: {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "elmon run: --set: NAME=VALUE, not '%s'\n", optarg);
                return ELMON_EXIT_USAGE;
            }
            *eq = 0;
            if (set_env(optarg, eq + 1) < 0)
                return ELMON_EXIT_RUN_ERROR;
            break;
        }
        case 'h':
            usage("run");
            return ELMON_EXIT_OK;
        default:
            fprintf(stderr, "Try 'elmon run --help'.\n");
            return ELMON_EXIT_USAGE;
        }
        if (name && set_env(name, value) < 0)
            return ELMON_EXIT_RUN_ERROR;
    }
    char **command = argv + optind;
    if (!command[0]) {
        fprintf(stderr, "elmon run: no COMMAND given\nTry 'elmon run --help'.\n");
        return ELMON_EXIT_USAGE;
    }
    si.command = command;

    /* A span must be recorded to be judged: the threshold may not stay
     * above the budget. */
    if (si.budget.fail_over_ms >= 0) {
        double limit = (double)(long)si.budget.fail_over_ms;
        if (block_ms > limit) {
            fprintf(stderr, "elmon run: --block-ms %g is above --fail-over %g: spans between them would go unseen\n",
                    block_ms, si.budget.fail_over_ms);
            return ELMON_EXIT_USAGE;
        }
        const char *env = getenv("ELMON_BLOCK_MS");
        double current = block_ms >= 0 ? block_ms : env && *env ? atof(env) : ELMON_DEFAULT_BLOCK_MS;
        if (current <= 0 || current > limit) {
            char num[32];
            snprintf(num, sizeof num, "%.0f", limit);
            if (set_env("ELMON_BLOCK_MS", num) < 0)
                return ELMON_EXIT_RUN_ERROR;
        }
    }

    /* The thresholds COMMAND runs with, for the page's lines (a process
     * that changes its own environment still reports its own in its
     * summary records). */
    const char *bms = getenv("ELMON_BLOCK_MS"), *cms = getenv("ELMON_CRITICAL_MS");
    si.block_ms = bms && atof(bms) >= 1 ? atof(bms) : ELMON_DEFAULT_BLOCK_MS;
    si.critical_ms = cms && atof(cms) >= 1 ? atof(cms) : ELMON_DEFAULT_CRITICAL_MS;

    char lib[PATH_MAX];
    if (find_library(lib, sizeof lib) < 0) {
        const char *env = getenv("ELMON_LIBRARY");
        if (env && *env)
            fprintf(stderr, "elmon run: ELMON_LIBRARY=%s cannot be read\n", esc(env));
        else
            fprintf(stderr, "elmon run: libelmon.so not found next to elmon (set ELMON_LIBRARY)\n");
        return ELMON_EXIT_RUN_ERROR;
    }
    char dir[PATH_MAX], pattern[PATH_MAX * 2];
    int rc = make_out_dir(out_want, dir, sizeof dir);
    if (rc < 0) {
        fprintf(stderr, "elmon run: cannot create the events directory %s: %s\n", esc(out_want ? out_want : dir),
                strerror(-rc));
        return ELMON_EXIT_RUN_ERROR;
    }
    if (events_pattern(dir, pattern, sizeof pattern) < 0 || set_env("ELMON_EVENTS", pattern) < 0 ||
        prepend_preload(lib) < 0)
        return ELMON_EXIT_RUN_ERROR;
    size_t n_before;
    char **before = list_events(dir, &n_before);
    si.events_dir = dir;
    if (!quiet)
        fprintf(stderr, "elmon: events in %s/\n", esc(dir));
    fflush(NULL);

    int status = spawn_and_wait(command, &si.wall_s);
    si.exit_status = status;

    struct ev_set set = {0};
    size_t n_now;
    char **now = list_events(dir, &n_now);
    for (size_t i = 0; i < n_now; i++) {
        if (listed(before, n_before, now[i]))
            continue;
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s", dir, now[i]);
        int r = ev_load_path(&set, path);
        if (r < 0)
            fprintf(stderr, "elmon run: %s: %s\n", esc(path), strerror(-r));
    }
    free_list(before, n_before);
    free_list(now, n_now);
    if (set.newer) {
        fprintf(stderr, "elmon run: %s is newer than this elmon reads (%d); summary skipped\n", esc(set.newer_where),
                ELMON_EVENTS_SCHEMA);
        ev_free(&set);
        return ELMON_EXIT_RUN_ERROR;
    }
    ev_finish(&set);
    if (!quiet) {
        fputc('\n', stderr);
        summary_text(stderr, &set, &si);
        if (status > 128 && status < 128 + NSIG)
            fprintf(stderr, "elmon: %s was killed by signal %d (%s)\n", esc(command[0]), status - 128,
                    strsignal(status - 128));
        else
            fprintf(stderr, "elmon: %s exited with status %d\n", esc(command[0]), status);
    }
    int failed = 0;
    if (junit && summary_to_file(junit, &set, &si, summary_junit) < 0)
        failed = 1;
    if (json && summary_to_file(json, &set, &si, summary_json) < 0)
        failed = 1;
    if (html && summary_to_file(html, &set, &si, summary_html) < 0)
        failed = 1;
    if (speedscope && summary_to_file(speedscope, &set, &si, summary_speedscope) < 0)
        failed = 1;
    size_t over = summary_over_budget(&set, &si.budget);
    ev_free(&set);
    if (over)
        return ELMON_EXIT_OVER_BUDGET;
    if (failed)
        return ELMON_EXIT_RUN_ERROR;
    return status;
}
