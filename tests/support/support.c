/*
 * Test helpers (see support.h).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "support.h"

extern char **environ;

double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

char *strf(const char *fmt, ...)
{
    char *s;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t k = read(fd, buf + len, cap - len - 1);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    buf[len] = 0;
    return buf;
}

static void apply_env(const char *prog, char *const env[], int preload)
{
    if (preload)
        setenv("LD_PRELOAD", ELMON_SO, 1);
    for (int i = 0; env && env[i]; i++) {
        char *eq = strchr(env[i], '=');
        if (!eq)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - env[i]), env[i]);
        if (eq[1] == 0 && strncmp(env[i], "ELMON_", 6) != 0 && strncmp(env[i], "OTEL_", 5) != 0)
            unsetenv(name);
        else
            setenv(name, eq + 1, 1);
    }
    /* Sanitizer builds (scripts/test-sanitizers): libelmon.so built with
     * -shared-libsan needs the sanitizer runtime loaded ahead of libc, and
     * the hosts we inject it into are not instrumented, so the runtime must
     * be preloaded first.  ELMON_TEST_PRELOAD_PREFIX names it; it goes in
     * front of whatever the child preloads and is never added alone. */
    const char *prefix = getenv("ELMON_TEST_PRELOAD_PREFIX");
    const char *pre = getenv("LD_PRELOAD");
    if (prefix && *prefix && pre && *pre) {
        char *both;
        if (asprintf(&both, "%s:%s", prefix, pre) >= 0)
            setenv("LD_PRELOAD", both, 1);
        /* A host that is not one of our fixtures (python3, redis-server,
         * /bin/true) is not ours to leak-check: it gets these options. */
        const char *host_opts = getenv("ELMON_TEST_HOST_ASAN_OPTIONS");
        if (host_opts && strncmp(prog, ELMON_BIN_DIR "/", strlen(ELMON_BIN_DIR "/")) != 0)
            setenv("ASAN_OPTIONS", host_opts, 1);
    }
}

int run_prog(char *const argv[], char *const env[], int preload, int timeout_ms, struct run *r)
{
    memset(r, 0, sizeof *r);
    FILE *fo = tmpfile(), *fe = tmpfile();
    if (!fo || !fe)
        return -1;
    double t0 = mono_ms();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        dup2(fileno(fo), 1);
        dup2(fileno(fe), 2);
        apply_env(argv[0], env, preload);
        execvp(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            r->status = st;
            break;
        }
        if (mono_ms() - t0 > timeout_ms) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            r->status = st;
            r->timed_out = 1;
            break;
        }
        usleep(2000);
    }
    r->wall_ms = mono_ms() - t0;
    r->out = slurp_fd(fileno(fo));
    r->err = slurp_fd(fileno(fe));
    fclose(fo);
    fclose(fe);
    return 0;
}

int run_vargs(char *const head[], int timeout_ms, struct run *r, va_list ap)
{
    char *argv[64];
    int n = 0;
    for (; head[n] && n < 63; n++)
        argv[n] = head[n];
    char *a;
    while (n < 63 && (a = va_arg(ap, char *)))
        argv[n++] = a;
    argv[n] = NULL;
    return run_prog(argv, NULL, 0, timeout_ms, r);
}

int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

pid_t spawn_prog(char *const argv[], char *const env[], int preload, const char *out_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        apply_env(argv[0], env, preload);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid > 0)
        setpgid(pid, pid);
    return pid;
}

int stop_prog(pid_t pid, int grace_ms)
{
    int st = 0;
    kill(pid, SIGTERM);
    double t0 = mono_ms();
    while (mono_ms() - t0 < grace_ms) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        usleep(5000);
    }
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return st;
}

char *copy_for_others(const char *file, const char *dir)
{
    const char *base = strrchr(file, '/');
    char *path;
    if (asprintf(&path, "%s/%s", dir, base ? base + 1 : file) < 0)
        return NULL;
    int in = open(file, O_RDONLY | O_CLOEXEC);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    char buf[65536];
    ssize_t n = 0;
    while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    int ok = in >= 0 && out >= 0 && n == 0 && fchmod(out, 0755) == 0;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (!ok) {
        free(path);
        return NULL;
    }
    return path;
}

char *make_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *path;
    if (asprintf(&path, "%s/elmon-%s-XXXXXX", base && *base ? base : "/tmp", tag) < 0)
        return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

char **read_lines(const char *path, int *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (n)
            *n = 0;
        return NULL;
    }
    size_t cap = 16, len = 0;
    char **lines = malloc(cap * sizeof *lines);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t k;
    while ((k = getline(&line, &lcap, f)) >= 0) {
        if (k > 0 && line[k - 1] == '\n')
            line[k - 1] = 0;
        if (len + 2 > cap)
            lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[len++] = strdup(line);
    }
    free(line);
    fclose(f);
    lines[len] = NULL;
    if (n)
        *n = (int)len;
    return lines;
}

void free_lines(char **lines)
{
    for (int i = 0; lines && lines[i]; i++)
        free(lines[i]);
    free(lines);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **list_files(const char *dir, const char *prefix, int *n)
{
    DIR *d = opendir(dir);
    size_t cap = 8, len = 0;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (len + 2 > cap)
            names = realloc(names, (cap *= 2) * sizeof *names);
        if (asprintf(&names[len], "%s/%s", dir, e->d_name) >= 0)
            len++;
    }
    if (d)
        closedir(d);
    qsort(names, len, sizeof *names, cmp_str);
    names[len] = NULL;
    if (n)
        *n = (int)len;
    return names;
}

char **lines_of(const char *d, const char *prefix, int *n_files)
{
    int nf;
    char **files = list_files(d, prefix, &nf);
    size_t cap = 64, len = 0;
    char **all = malloc(cap * sizeof *all);
    for (int i = 0; i < nf; i++) {
        char **lines = read_lines(files[i], NULL);
        for (int k = 0; lines && lines[k]; k++) {
            if (len + 2 > cap)
                all = realloc(all, (cap *= 2) * sizeof *all);
            all[len++] = strdup(lines[k]);
        }
        free_lines(lines);
    }
    all[len] = NULL;
    free_lines(files);
    if (n_files)
        *n_files = nf;
    return all;
}

void remove_tree(const char *dir)
{
    char *cmd;
    if (!dir || !(cmd = strf("chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", dir, dir)))
        return;
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    free(cmd);
}

const char *json_get(const char *line, const char *key)
{
    static char out[4096];
    char pat[256];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    size_t k = 0;
    if (*p == '"') {
        p++;
        while (*p && *p != '"' && k + 1 < sizeof out) {
            if (*p == '\\' && p[1])
                p++;
            out[k++] = *p++;
        }
    } else {
        int depth = 0;
        while (*p && k + 1 < sizeof out) {
            if (*p == '[' || *p == '{')
                depth++;
            else if (*p == ']' || *p == '}') {
                if (depth == 0)
                    break;
                depth--;
            } else if (*p == ',' && depth == 0)
                break;
            out[k++] = *p++;
        }
    }
    out[k] = 0;
    return out;
}

double json_num(const char *line, const char *key)
{
    const char *v = json_get(line, key);
    if (!v || !*v || strcmp(v, "null") == 0)
        return NAN;
    return strtod(v, NULL);
}

int json_is(const char *line, const char *key, const char *value)
{
    const char *v = json_get(line, key);
    return v && strcmp(v, value) == 0;
}

int count_type(char **lines, const char *type)
{
    int n = 0;
    for (int i = 0; lines && lines[i]; i++)
        n += json_is(lines[i], "type", type);
    return n;
}

int count_blocks_ended(char **lines, const char *end)
{
    int n = 0;
    for (int i = 0; lines && lines[i]; i++)
        n += json_is(lines[i], "type", "block") && json_is(lines[i], "end", end);
    return n;
}

const char *span_records_complete(char **lines)
{
    static char why[512];
    for (int i = 0; lines && lines[i]; i++) {
        int begin = json_is(lines[i], "type", "block_begin");
        int block = json_is(lines[i], "type", "block");
        if (!begin && !block)
            continue;
        double pid = json_num(lines[i], "pid"), tid = json_num(lines[i], "tid"), turn = json_num(lines[i], "turn");
        double dur = json_num(lines[i], "duration_ms");
        int later_blocks = 0, earlier = 0;
        for (int j = 0; lines[j]; j++) {
            if (j == i || json_num(lines[j], "pid") != pid || json_num(lines[j], "tid") != tid ||
                json_num(lines[j], "turn") != turn)
                continue;
            if (json_is(lines[j], "type", "block")) {
                if (j > i)
                    later_blocks++;
                else
                    earlier++;
                if (begin && j > i && json_num(lines[j], "duration_ms") + 0.001 < dur) {
                    snprintf(why, sizeof why, "pid %.0f tid %.0f turn %.0f: block %.3f ms shorter than its block_begin %.3f ms",
                             pid, tid, turn, json_num(lines[j], "duration_ms"), dur);
                    return why;
                }
            }
        }
        if (begin && later_blocks != 1) {
            snprintf(why, sizeof why, "pid %.0f tid %.0f turn %.0f: block_begin followed by %d block records",
                     pid, tid, turn, later_blocks);
            return why;
        }
        if (block && later_blocks + earlier > 0) {
            snprintf(why, sizeof why, "pid %.0f tid %.0f turn %.0f: %d block records", pid, tid, turn,
                     later_blocks + earlier + 1);
            return why;
        }
    }
    for (int i = 0; lines && lines[i]; i++) {
        double pid = json_num(lines[i], "pid");
        int has = 0;
        for (int j = 0; lines[j] && !has; j++)
            has = json_num(lines[j], "pid") == pid && json_is(lines[j], "type", "summary");
        if (!has) {
            snprintf(why, sizeof why, "pid %.0f has records but no summary", pid);
            return why;
        }
    }
    return NULL;
}

int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(s, (struct sockaddr *)&a, &len) < 0) {
        close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

int wait_port(int port, int timeout_ms)
{
    double t0 = mono_ms();
    while (mono_ms() - t0 < timeout_ms) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
        close(s);
        if (ok)
            return 0;
        usleep(20000);
    }
    return -1;
}

int have_prog(const char *name)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char *copy = strdup(path), *save = NULL;
    int found = 0;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", dir, name);
        found = access(full, X_OK) == 0;
    }
    free(copy);
    return found;
}

long rss_kb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char **lines = read_lines(path, NULL);
    long kb = -1;
    for (int i = 0; lines && lines[i]; i++)
        if (sscanf(lines[i], "VmRSS: %ld", &kb) == 1)
            break;
    free_lines(lines);
    return kb;
}

int receiver_start(struct otlp_receiver *r, const char *dir, const char *mode, int fail_first, const char *tls)
{
    char ff[16];
    snprintf(r->dump, sizeof r->dump, "%s/dump.jsonl", dir);
    snprintf(r->ports, sizeof r->ports, "%s/ports.json", dir);
    snprintf(r->log_path, sizeof r->log_path, "%s/receiver.log", dir);
    snprintf(ff, sizeof ff, "%d", fail_first);
    unlink(r->ports);
    char *argv[16] = {"node", ELMON_SRC_DIR "/tests/otlp-receiver/receiver.js", "--dump", r->dump,
                      "--ports", r->ports, "--mode", (char *)mode};
    int k = 8;
    if (fail_first >= 0) {
        argv[k++] = "--fail-first";
        argv[k++] = ff;
    }
    if (tls) {
        argv[k++] = "--tls";
        argv[k++] = (char *)tls;
    }
    argv[k] = NULL;
    r->pid = spawn_prog(argv, NULL, 0, r->log_path);
    if (r->pid <= 0)
        return -1;
    char **l = NULL;
    for (int i = 0; i < 3000 && !(l = read_lines(r->ports, NULL)); i++)
        usleep(10000);
    if (!l || !l[0]) {
        free_lines(l);
        stop_prog(r->pid, 1000);
        return -1;
    }
    r->http = (int)json_num(l[0], "http");
    r->grpc = (int)json_num(l[0], "grpc");
    free_lines(l);
    return r->http > 0 && r->grpc > 0 ? 0 : -1;
}

char **receiver_stop(struct otlp_receiver *r)
{
    usleep(200000);   /* the last write of the dump */
    stop_prog(r->pid, 3000);
    return read_lines(r->dump, NULL);
}

void unset_prefix(const char *prefix)
{
    extern char **environ;
    size_t k = strlen(prefix);
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++)
            if (strncmp(*e, prefix, k) == 0 && strchr(*e, '=')) {
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)(strchr(*e, '=') - *e), *e);
                unsetenv(name);
                again = 1;
                break;
            }
    }
}

int log_spans_min_ms(const char *log, double min_ms)
{
    static const char tag[] = "loop blocked ";
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, tag)); ) {
        p += sizeof tag - 1;
        char *end;
        double ms = strtod(p, &end);
        if (end != p && strncmp(end, " ms", 3) == 0 && ms >= min_ms)
            n++;
    }
    return n;
}

long raw_control_at(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    for (long i = 0; u[i]; i++)
        if ((u[i] < 0x20 && u[i] != '\n') || u[i] == 0x7f || (u[i] == 0xc2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f))
            return i;
    return -1;
}

static int cpython_minor(const char *python)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "%s -c 'import sys; print(sys.version_info[0] * 100 + sys.version_info[1])' 2>/dev/null",
             python);
    FILE *p = popen(cmd, "r");
    int v = -1;
    if (p) {
        if (fscanf(p, "%d", &v) != 1)
            v = -1;
        pclose(p);
    }
    return v >= 300 && v < 400 ? v - 300 : -1;
}

int cpythons(struct cpython *out, int max)
{
    int n = 0;
    if (max > 0 && access("/usr/bin/python3", X_OK) == 0) {
        snprintf(out[n].path, sizeof out[n].path, "/usr/bin/python3");
        snprintf(out[n].prefix, sizeof out[n].prefix, "/usr");
        n++;
    } else {
        fprintf(stderr, "skipped Debian's python3: /usr/bin/python3 missing\n");
    }
    char root[512] = "";
    FILE *p = popen("pyenv root 2>/dev/null", "r");
    if (p) {
        if (!fgets(root, sizeof root, p))
            root[0] = 0;
        pclose(p);
    }
    root[strcspn(root, "\n")] = 0;
    if (!root[0])
        fprintf(stderr, "skipped pyenv's Pythons: no pyenv\n");
    char vdir[600];
    snprintf(vdir, sizeof vdir, "%s/versions", root);
    DIR *d = root[0] ? opendir(vdir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(out[n].prefix, sizeof out[n].prefix, "%.500s/%.80s", vdir, e->d_name);
        snprintf(out[n].path, sizeof out[n].path, "%.500s/bin/python3", out[n].prefix);
        if (access(out[n].path, X_OK) == 0)
            n++;
        else
            fprintf(stderr, "skipped pyenv's %s: no python3 in it\n", e->d_name);
    }
    if (d)
        closedir(d);
    for (int i = 0; i < n; i++)
        out[i].minor = cpython_minor(out[i].path);
    return n;
}
