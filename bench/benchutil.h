/* bench/benchutil.h: small helpers shared by https_load and ws_rtt (header
 * only, everything static): a monotonic clock in µs, a log-linear latency
 * histogram, IP:PORT parsing, HOST:PORT splitting and number options.
 * Not part of the cordon library. */
#ifndef CORDON_BENCH_BENCHUTIL_H
#define CORDON_BENCH_BENCHUTIL_H

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static inline uint64_t bu_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Latency histogram in µs: values below 2*BU_SUB are exact, above that each
 * power of two is split in BU_SUB steps (relative error < 1/BU_SUB). */
#define BU_SUB 64u
#define BU_BUCKETS (64u * BU_SUB + 2u * BU_SUB)

struct bu_hist {
    uint64_t n[BU_BUCKETS];
    uint64_t count, sum, max;
};

static inline unsigned bu_bucket(uint64_t v)
{
    if (v < 2 * BU_SUB)
        return (unsigned)v;
    unsigned top = 63u - (unsigned)__builtin_clzll(v);  /* >= 7 */
    unsigned shift = top - 6u;                          /* keeps 7 significant bits */
    unsigned b = shift * BU_SUB + (unsigned)(v >> shift);
    return b < BU_BUCKETS ? b : BU_BUCKETS - 1;
}

/* The middle of bucket b, inverse of bu_bucket. */
static inline uint64_t bu_bucket_mid(unsigned b)
{
    if (b < 2 * BU_SUB)
        return b;
    unsigned shift = b / BU_SUB - 1u;
    uint64_t mant = b % BU_SUB + BU_SUB;
    return (mant << shift) + ((1ull << shift) >> 1);
}

static inline void bu_hist_add(struct bu_hist *h, uint64_t v)
{
    h->n[bu_bucket(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

/* q in [0,1]; µs. */
static inline double bu_hist_quantile(const struct bu_hist *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->count), seen = 0;
    if (want >= h->count)
        want = h->count - 1;
    for (unsigned i = 0; i < BU_BUCKETS; i++) {
        seen += h->n[i];
        if (seen > want)
            return (double)(bu_bucket_mid(i) < h->max ? bu_bucket_mid(i) : h->max);
    }
    return (double)h->max;
}

/* "1.2.3.4:80" or "[::1]:80" (numeric only) → sockaddr. */
static inline int bu_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len)
{
    char host[128];
    const char *port, *end;
    size_t hl;
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (!end || end[1] != ':')
            return -1;
        hl = (size_t)(end - s - 1);
        s++;
        port = end + 2;
    } else {
        end = strrchr(s, ':');
        if (!end)
            return -1;
        hl = (size_t)(end - s);
        port = end + 1;
    }
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    memcpy(out, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* "name:443" / "[v6]:443" → host without brackets (for SNI and name checks). */
static inline int bu_split_target(const char *target, char *host, size_t cap)
{
    const char *end;
    size_t hl;
    if (target[0] == '[') {
        end = strchr(target, ']');
        if (!end || end[1] != ':')
            return -1;
        hl = (size_t)(end - target - 1);
        target++;
    } else {
        end = strrchr(target, ':');
        if (!end)
            return -1;
        hl = (size_t)(end - target);
    }
    if (hl == 0 || hl >= cap)
        return -1;
    memcpy(host, target, hl);
    host[hl] = '\0';
    return 0;
}

static inline int bu_parse_num(const char *prog, const char *what, const char *s, double min,
                               double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "%s: %s: '%s' is not a number in %g..%g\n", prog, what, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

#endif
