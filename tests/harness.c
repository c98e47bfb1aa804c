/* Test harness: real daemons, raw NDJSON exchange (see harness.h). */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void th_root_init(th_daemon *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->root, sizeof d->root, "/tmp/pergola-test-XXXXXX");
    if (mkdtemp(d->root) == NULL) {
        perror("mkdtemp");
        abort();
    }
}

int th_start(th_daemon *d, const char *const *extra)
{
    const char *bin = getenv("PERGOLAD");
    if (bin == NULL) bin = "build/pergolad";
    char ready[320];
    snprintf(ready, sizeof ready, "%s.ready", d->root);
    snprintf(d->log, sizeof d->log, "%s.log", d->root);
    unlink(ready);
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--data-root";
    argv[n++] = d->root;
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* Die with the test process: Check forks each test and a failed
         * assertion _exit()s it without any teardown, which must not leave
         * a daemon behind. (Tied to the calling thread: call th_start from a
         * thread that outlives the daemon, e.g. the test's main thread.) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    for (int i = 0; i < 2000; i++) {
        FILE *f = fopen(ready, "r");
        if (f) {
            json_error_t je;
            json_t *o = json_loadf(f, 0, &je);
            fclose(f);
            const char *addr = json_string_value(json_array_get(json_object_get(o, "listen"), 0));
            if (addr) {
                snprintf(d->address, sizeof d->address, "%s", addr);
                const char *colon = strrchr(addr, ':');
                d->port = colon ? atoi(colon + 1) : 0;
            }
            json_decref(o);
            if (d->port > 0) return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            d->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    th_stop(d);
    return -1;
}

int th_stop(th_daemon *d)
{
    if (d->pid <= 0) return -1;
    kill(d->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 2000; i++) {
        pid_t r = waitpid(d->pid, &st, WNOHANG);
        if (r == d->pid) {
            d->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        sleep_ms(10);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    return -1;
}

void th_cleanup(th_daemon *d)
{
    if (d->root[0] == '\0') return;
    char cmd[1024]; /* 3 * sizeof root + the rest */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.ready' '%s.log'", d->root, d->root, d->root);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", d->root);
}

int th_mkraster(const char *root, const char *name, const char *args)
{
    const char *bin = getenv("PERGOLA_MKRASTER");
    if (bin == NULL) bin = "build/pergola-mkraster";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' '%s/%s' %s", bin, root, name, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int th_connect(const th_daemon *d)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int th_send(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, text, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        text += w;
        len -= (size_t)w;
    }
    return 0;
}

static int wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1;
}

json_t *th_recv(int fd, int timeout_ms)
{
    /* Byte at a time: simple, and never reads past the line (an attachment
     * may follow). Tests exchange little data. */
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!wait_readable(fd, timeout_ms)) break;
        char c;
        ssize_t r = recv(fd, &c, 1, 0);
        if (r <= 0) break;
        if (c == '\n') {
            json_error_t je;
            json_t *o = json_loadb(buf, n, 0, &je);
            free(buf);
            return o;
        }
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
        buf[n++] = c;
    }
    free(buf);
    return NULL;
}

int th_recv_bytes(int fd, void *buf, size_t n, int timeout_ms)
{
    char *p = buf;
    while (n > 0) {
        if (!wait_readable(fd, timeout_ms)) return -1;
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

json_t *th_request(int fd, const char *line, int timeout_ms)
{
    if (th_send(fd, line, strlen(line)) != 0) return NULL;
    for (;;) {
        json_t *ev = th_recv(fd, timeout_ms);
        if (ev == NULL) return NULL;
        const char *e = json_string_value(json_object_get(ev, "event"));
        if (e && (strcmp(e, "result") == 0 || strcmp(e, "error") == 0)) return ev;
        json_decref(ev);
    }
}

const char *th_code(const json_t *ev)
{
    const char *c = json_string_value(json_object_get(json_object_get(ev, "error"), "code"));
    return c ? c : "";
}

const char *th_node(const json_t *ev)
{
    const char *c = json_string_value(json_object_get(json_object_get(ev, "error"), "node"));
    return c ? c : "";
}

int th_ping(const th_daemon *d)
{
    int fd = th_connect(d);
    if (fd < 0) return 0;
    json_t *ev = th_request(fd, "{\"id\":\"p\",\"type\":\"ping\"}\n", 5000);
    close(fd);
    int ok = ev && json_is_true(json_object_get(json_object_get(ev, "value"), "pong"));
    json_decref(ev);
    return ok;
}

int th_count_files(const char *root, const char *subdir, const char *needle)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", root, subdir ? subdir : "");
    DIR *dir = opendir(path);
    if (dir == NULL) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, needle)) n++;
    closedir(dir);
    return n;
}
