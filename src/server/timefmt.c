/* server/timefmt: RFC 3339 formatting and parsing. */
#include "server/timefmt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/parse.h"
#include "core/banned.h"

void timefmt_format(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char base[40];
    if (!gmtime_r(&t, &tm) || strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(base, sizeof(base), "1970-01-01T00:00:00");
    snprintf(out, cap, "%s.%03dZ", base, (int)(ms % 1000));
}

int64_t timefmt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exactly n digits at s, in [min, max]. */
static int digits(const char *s, size_t n, uint32_t min, uint32_t max, int *out)
{
    uint32_t v;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
    if (parse_u32(s, n, min, max, &v) < 0)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

int timefmt_parse(const char *s, int64_t *ms)
{
    struct tm tm;
    int y, mo, d, h, mi, se;
    memset(&tm, 0, sizeof(tm));
    if (strlen(s) < 20 || digits(s, 4, 1970, 9999, &y) < 0 || s[4] != '-' ||
        digits(s + 5, 2, 1, 12, &mo) < 0 || s[7] != '-' || digits(s + 8, 2, 1, 31, &d) < 0 ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || digits(s + 11, 2, 0, 23, &h) < 0 ||
        s[13] != ':' || digits(s + 14, 2, 0, 59, &mi) < 0 || s[16] != ':' ||
        digits(s + 17, 2, 0, 60, &se) < 0)
        return -EINVAL;
    const char *p = s + 19;
    int64_t frac = 0;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                frac = frac * 10 + (*p - '0');
        if (!n)
            return -EINVAL;
        for (; n < 3; n++)
            frac *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        if (strlen(p) != 6 || p[3] != ':' || digits(p + 1, 2, 0, 23, &oh) < 0 ||
            digits(p + 4, 2, 0, 59, &om) < 0)
            return -EINVAL;
        off = sign * (int64_t)(oh * 3600 + om * 60);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *ms = ((int64_t)t - off) * 1000 + frac;
    return 0;
}
