/* core/addrclass: see addrclass.h. Two static tables (IPv4, IPv6), first
 * match wins, so a narrower range listed earlier names itself. */
#include "core/addrclass.h"

#include <netinet/in.h>
#include <string.h>

#include "core/banned.h"

/* How an IPv6 range embeds IPv4 addresses (RFC 6052 NAT64, RFC 3056 6to4,
 * RFC 4380 Teredo, RFC 4291 §2.5.5.1 IPv4-compatible). */
enum addr_embed {
    EMBED_NONE,
    EMBED_LOW32,    /* bytes 12..15: NAT64 /96, IPv4-compatible */
    EMBED_NAT64_48, /* RFC 6052 /48: bytes 6,7 and 9,10 (byte 8 is "u") */
    EMBED_6TO4,     /* bytes 2..5 */
    EMBED_TEREDO,   /* server bytes 4..7, client bytes 12..15 inverted */
};

struct addr_range {
    uint8_t addr[16];
    uint8_t prefix;
    enum addr_class cls;
    const char *name;
    enum addr_embed embed;
};

static const struct addr_range v4_ranges[] = {
    {{0, 0, 0, 0}, 8, ADDR_ALWAYS_BLOCKED, "unspecified", EMBED_NONE},
    {{127, 0, 0, 0}, 8, ADDR_ALWAYS_BLOCKED, "loopback", EMBED_NONE},
    {{169, 254, 0, 0}, 16, ADDR_ALWAYS_BLOCKED, "link-local", EMBED_NONE},
    {{224, 0, 0, 0}, 4, ADDR_ALWAYS_BLOCKED, "multicast", EMBED_NONE},
    {{255, 255, 255, 255}, 32, ADDR_ALWAYS_BLOCKED, "broadcast", EMBED_NONE},
    {{240, 0, 0, 0}, 4, ADDR_ALWAYS_BLOCKED, "reserved", EMBED_NONE},
    {{10, 0, 0, 0}, 8, ADDR_PRIVATE, "rfc1918", EMBED_NONE},
    {{172, 16, 0, 0}, 12, ADDR_PRIVATE, "rfc1918", EMBED_NONE},
    {{192, 168, 0, 0}, 16, ADDR_PRIVATE, "rfc1918", EMBED_NONE},
    {{100, 64, 0, 0}, 10, ADDR_PRIVATE, "cgnat", EMBED_NONE},
    {{192, 0, 0, 0}, 24, ADDR_PRIVATE, "ietf-protocol", EMBED_NONE},
    {{192, 0, 2, 0}, 24, ADDR_PRIVATE, "test-net", EMBED_NONE},
    {{198, 51, 100, 0}, 24, ADDR_PRIVATE, "test-net", EMBED_NONE},
    {{203, 0, 113, 0}, 24, ADDR_PRIVATE, "test-net", EMBED_NONE},
    {{198, 18, 0, 0}, 15, ADDR_PRIVATE, "benchmarking", EMBED_NONE},
    {{192, 88, 99, 0}, 24, ADDR_PRIVATE, "6to4-relay", EMBED_NONE},
};

static const struct addr_range v6_ranges[] = {
    {{0}, 128, ADDR_ALWAYS_BLOCKED, "unspecified", EMBED_NONE},
    {{[15] = 1}, 128, ADDR_ALWAYS_BLOCKED, "loopback", EMBED_NONE},
    {{0xfe, 0x80}, 10, ADDR_ALWAYS_BLOCKED, "link-local", EMBED_NONE},
    {{0xff}, 8, ADDR_ALWAYS_BLOCKED, "multicast", EMBED_NONE},
    {{0xfc}, 7, ADDR_PRIVATE, "unique-local", EMBED_NONE},
    {{0xfe, 0xc0}, 10, ADDR_PRIVATE, "site-local", EMBED_NONE},
    {{0x00, 0x64, 0xff, 0x9b}, 96, ADDR_PRIVATE, "nat64", EMBED_LOW32},
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, ADDR_PRIVATE, "nat64", EMBED_NAT64_48},
    {{0x20, 0x02}, 16, ADDR_PRIVATE, "6to4", EMBED_6TO4},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, ADDR_PRIVATE, "documentation", EMBED_NONE},
    {{0x20, 0x01, 0x00, 0x00}, 32, ADDR_PRIVATE, "teredo", EMBED_TEREDO},
    {{0x01, 0x00}, 64, ADDR_PRIVATE, "discard", EMBED_NONE},
    {{0}, 96, ADDR_PRIVATE, "ipv4-compatible", EMBED_LOW32},
};

#define N_V4 (sizeof(v4_ranges) / sizeof(v4_ranges[0]))
#define N_V6 (sizeof(v6_ranges) / sizeof(v6_ranges[0]))

static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* True when the first bits of a and b are equal. */
static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rem = bits % 8;
    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rem == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

static bool is_mapped(const uint8_t *a16) { return memcmp(a16, mapped_prefix, 12) == 0; }

static enum addr_class classify_v4(const uint8_t *a4, const char **range_name)
{
    for (size_t i = 0; i < N_V4; i++) {
        if (prefix_eq(a4, v4_ranges[i].addr, v4_ranges[i].prefix)) {
            *range_name = v4_ranges[i].name;
            return v4_ranges[i].cls;
        }
    }
    *range_name = "public";
    return ADDR_PUBLIC;
}

/* The stricter of cls and the class of the IPv4 address a4: an address
 * that embeds loopback or link-local is as blocked as the address itself
 * wherever a translator (NAT64, 6to4 relay, Teredo) would deliver it. */
static enum addr_class stricter_v4(enum addr_class cls, const char **name, const uint8_t *a4)
{
    const char *n4;
    enum addr_class c4 = classify_v4(a4, &n4);
    if (c4 > cls) {
        *name = n4;
        return c4;
    }
    return cls;
}

static enum addr_class classify_embedded(const struct addr_range *r, const uint8_t *a,
                                         const char **name)
{
    uint8_t v4[4];
    enum addr_class cls = r->cls;
    *name = r->name;
    switch (r->embed) {
    case EMBED_NONE:
        break;
    case EMBED_LOW32:
        cls = stricter_v4(cls, name, a + 12);
        break;
    case EMBED_NAT64_48:
        v4[0] = a[6], v4[1] = a[7], v4[2] = a[9], v4[3] = a[10];
        cls = stricter_v4(cls, name, v4);
        break;
    case EMBED_6TO4:
        cls = stricter_v4(cls, name, a + 2);
        break;
    case EMBED_TEREDO:
        cls = stricter_v4(cls, name, a + 4);
        for (int i = 0; i < 4; i++)
            v4[i] = (uint8_t)~a[12 + i];
        cls = stricter_v4(cls, name, v4);
        break;
    }
    return cls;
}

enum addr_class addr_classify_raw(int family, const uint8_t *addr, const char **range_name)
{
    const struct addr_range *tab = v4_ranges;
    size_t n = N_V4;
    if (family == AF_INET6 && is_mapped(addr)) {
        addr += 12;
    } else if (family == AF_INET6) {
        tab = v6_ranges;
        n = N_V6;
    } else if (family != AF_INET) {
        if (range_name)
            *range_name = "unknown";
        return ADDR_ALWAYS_BLOCKED;
    }
    for (size_t i = 0; i < n; i++) {
        if (prefix_eq(addr, tab[i].addr, tab[i].prefix)) {
            const char *name;
            enum addr_class cls = classify_embedded(&tab[i], addr, &name);
            if (range_name)
                *range_name = name;
            return cls;
        }
    }
    if (range_name)
        *range_name = "public";
    return ADDR_PUBLIC;
}

static const uint8_t *sockaddr_bytes(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (sa->sa_family == AF_INET6)
        return ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    return NULL;
}

enum addr_class addr_classify(const struct sockaddr *sa)
{
    const uint8_t *b = sockaddr_bytes(sa);
    if (!b)
        return ADDR_ALWAYS_BLOCKED;
    return addr_classify_raw(sa->sa_family, b, NULL);
}

const char *addr_class_range_name(const struct sockaddr *sa)
{
    const char *name = "unknown";
    const uint8_t *b = sockaddr_bytes(sa);
    if (b)
        addr_classify_raw(sa->sa_family, b, &name);
    return name;
}

/* The i-th always-blocked range of a family, as 16-byte address + prefix.
 * For AF_INET6 the IPv4 ranges follow in their mapped form. Returns false
 * past the end; ranges of other classes are returned with *skip set. */
static bool blocked_range_at(int family, size_t i, uint8_t out[16], unsigned *prefix,
                             const char **name, bool *skip)
{
    const struct addr_range *r;
    memset(out, 0, 16);
    if (family == AF_INET) {
        if (i >= N_V4)
            return false;
        r = &v4_ranges[i];
        memcpy(out, r->addr, 4);
        *prefix = r->prefix;
    } else if (i < N_V6) {
        r = &v6_ranges[i];
        memcpy(out, r->addr, 16);
        *prefix = r->prefix;
    } else if (i - N_V6 < N_V4) {
        r = &v4_ranges[i - N_V6];
        memcpy(out, mapped_prefix, 12);
        memcpy(out + 12, r->addr, 4);
        *prefix = r->prefix + 96u;
    } else {
        return false;
    }
    *name = r->name;
    *skip = r->cls != ADDR_ALWAYS_BLOCKED;
    return true;
}

/* Recursive split: a CIDR that strictly contains blocked ranges is blocked
 * only if both halves are. Depth <= 128; only halves that touch a blocked
 * range recurse, so the work is bounded by ranges x bits. */
static enum addr_cidr_overlap cidr_vs_blocked(int family, const uint8_t addr[16], unsigned prefix,
                                              const char **range_name)
{
    unsigned maxbits = family == AF_INET ? 32 : 128;
    bool overlap = false;
    uint8_t r[16];
    unsigned rp;
    const char *name;
    bool skip;

    for (size_t i = 0; blocked_range_at(family, i, r, &rp, &name, &skip); i++) {
        if (skip)
            continue;
        if (prefix >= rp && prefix_eq(addr, r, rp)) {
            *range_name = name;
            return ADDR_CIDR_BLOCKED;
        }
        if (prefix < rp && prefix_eq(addr, r, prefix)) {
            if (!*range_name)
                *range_name = name;
            overlap = true;
        }
    }
    if (!overlap)
        return ADDR_CIDR_CLEAR;
    if (prefix >= maxbits)
        return ADDR_CIDR_PARTIAL;
    uint8_t half[16];
    memcpy(half, addr, 16);
    half[prefix / 8] &= (uint8_t)~(0x80u >> (prefix % 8));
    const char *n1 = NULL, *n2 = NULL;
    enum addr_cidr_overlap lo = cidr_vs_blocked(family, half, prefix + 1, &n1);
    half[prefix / 8] |= (uint8_t)(0x80u >> (prefix % 8));
    enum addr_cidr_overlap hi = cidr_vs_blocked(family, half, prefix + 1, &n2);
    (void)n1;
    (void)n2;
    return lo == ADDR_CIDR_BLOCKED && hi == ADDR_CIDR_BLOCKED ? ADDR_CIDR_BLOCKED
                                                              : ADDR_CIDR_PARTIAL;
}

enum addr_cidr_overlap addr_cidr_class(int family, const uint8_t *addr, unsigned prefix,
                                       const char **range_name)
{
    uint8_t a[16] = {0};
    const char *name = NULL;
    enum addr_cidr_overlap res;

    if (family == AF_INET && prefix <= 32) {
        memcpy(a, addr, 4);
    } else if (family == AF_INET6 && prefix <= 128) {
        memcpy(a, addr, 16);
        if (prefix >= 96 && is_mapped(a)) {
            memmove(a, a + 12, 4);
            memset(a + 4, 0, 12);
            family = AF_INET;
            prefix -= 96;
        }
    } else {
        if (range_name)
            *range_name = "invalid";
        return ADDR_CIDR_BLOCKED;
    }
    res = cidr_vs_blocked(family, a, prefix, &name);
    if (range_name)
        *range_name = res == ADDR_CIDR_CLEAR ? NULL : name;
    return res;
}
