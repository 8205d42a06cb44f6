#include "core/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static int g_fd = STDERR_FILENO;
static char *g_path;
static audit_observer_cb g_observer;
static void *g_observer_data;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

int audit_open(const char *path)
{
    if (!path || strcmp(path, "-") == 0) {
        g_fd = STDERR_FILENO;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
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

int audit_reopen(void)
{
    if (!g_path)
        return 0;
    char *p = strdup(g_path);
    if (!p)
        return -ENOMEM;
    int r = audit_open(p);
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
    json_decref(ev);
    if (!s) {
        log_error("audit: cannot serialize %s event (out of memory)", event);
        return;
    }
    size_t len = strlen(s);
    s[len] = '\n'; /* jansson allocates len+1; the NUL becomes the newline */
    ssize_t w = write(g_fd, s, len + 1);
    if (w < 0)
        log_error("audit: write failed: %s", strerror(errno));
    s[len] = '\0';
    if (g_observer)
        g_observer(s, len, g_observer_data);
    free(s);
}
