#include "core/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static int g_fd = STDERR_FILENO;
static char *g_path;
static audit_observer_cb g_observer;
static void *g_observer_data;
static enum audit_format g_format = AUDIT_FORMAT_JSON;
static bool g_private;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

int audit_parse_format(const char *s, enum audit_format *out)
{
    if (strcmp(s, "json") == 0)
        *out = AUDIT_FORMAT_JSON;
    else if (strcmp(s, "text") == 0)
        *out = AUDIT_FORMAT_TEXT;
    else
        return -EINVAL;
    return 0;
}

void audit_set_format(enum audit_format f) { g_format = f; }

static int install(int fd, const char *path)
{
    char *p = strdup(path);
    if (!p) {
        close(fd);
        return -ENOMEM;
    }
    pthread_mutex_lock(&g_lock);
    free(g_path);
    g_path = p;
    int old = g_fd;
    g_fd = fd;
    pthread_mutex_unlock(&g_lock);
    if (old != STDERR_FILENO)
        close(old);
    return 0;
}

int audit_open(const char *path)
{
    if (!path || strcmp(path, "-") == 0) {
        g_fd = STDERR_FILENO;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    g_private = false;
    return install(fd, path);
}

int audit_open_private(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
    if (fd < 0)
        return errno == ELOOP ? -EPERM : -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        st.st_nlink != 1 || fchmod(fd, 0640) < 0) {
        close(fd);
        return -EPERM;
    }
    g_private = true;
    return install(fd, path);
}

int audit_reopen(void)
{
    if (!g_path)
        return 0;
    char *p = strdup(g_path);
    if (!p)
        return -ENOMEM;
    int r = g_private ? audit_open_private(p) : audit_open(p);
    free(p);
    return r;
}

void audit_close(void)
{
    pthread_mutex_lock(&g_lock);
    if (g_fd != STDERR_FILENO)
        close(g_fd);
    g_fd = STDERR_FILENO;
    free(g_path);
    g_path = NULL;
    pthread_mutex_unlock(&g_lock);
}

void audit_set_observer(audit_observer_cb cb, void *data)
{
    g_observer = cb;
    g_observer_data = data;
}

static void iso_time(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000);
}

static bool plain(const char *v)
{
    if (!v[0])
        return false;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f)
            return false;
    return true;
}

/* "TIME EVENT k=v k=v\n" from the ordered event object; NULL on OOM. */
static char *text_line(json_t *ev)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach(ev, k, v) {
        if (i++ < 2) { /* time, event */
            fprintf(f, "%s%s", i > 1 ? " " : "", json_string_value(v));
            continue;
        }
        if (json_is_null(v))
            continue;
        if (json_is_string(v) && plain(json_string_value(v))) {
            fprintf(f, " %s=%s", k, json_string_value(v));
            continue;
        }
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        if (s)
            fprintf(f, " %s=%s", k, s);
        free(s);
    }
    fputc('\n', f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

void audit_emit(const char *event, json_t *obj)
{
    char t[80];
    if (!obj)
        return;
    iso_time(t, sizeof(t));
    /* time and event first for readability: build a new object in order */
    json_t *ev = json_object();
    if (!ev) {
        json_decref(obj);
        return;
    }
    json_object_set_new(ev, "time", json_string(t));
    json_object_set_new(ev, "event", json_string(event));
    json_object_update(ev, obj);
    json_decref(obj);
    char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    char *text = g_format == AUDIT_FORMAT_TEXT ? text_line(ev) : NULL;
    if (!s || (g_format == AUDIT_FORMAT_TEXT && !text)) {
        log_error("audit: cannot serialize %s event (out of memory)", event);
        json_decref(ev);
        free(s);
        free(text);
        return;
    }
    size_t len = strlen(s);
    s[len] = '\n'; /* jansson allocates len+1; the NUL becomes the newline */
    ssize_t w = text ? write(g_fd, text, strlen(text)) : write(g_fd, s, len + 1);
    if (w < 0)
        log_error("audit: write failed: %s", strerror(errno));
    s[len] = '\0';
    free(text);
    if (g_observer)
        g_observer(event, ev, s, len, g_observer_data);
    json_decref(ev);
    free(s);
}
