/* sandbox/dnsmsg: parse one DNS query, build its answer (see dnsmsg.h). */
#include "sandbox/dnsmsg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/banned.h"

void dnsmsg_cur_init(struct dnsmsg_cur *c, const uint8_t *p, size_t len)
{
    c->p = p;
    c->len = len;
    c->off = 0;
    c->ok = true;
}

static bool cur_take(struct dnsmsg_cur *c, size_t n)
{
    if (!c->ok || n > c->len - c->off) {
        c->ok = false;
        return false;
    }
    return true;
}

uint8_t dnsmsg_read_u8(struct dnsmsg_cur *c)
{
    if (!cur_take(c, 1))
        return 0;
    return c->p[c->off++];
}

uint16_t dnsmsg_read_u16be(struct dnsmsg_cur *c)
{
    if (!cur_take(c, 2))
        return 0;
    uint16_t v = (uint16_t)((c->p[c->off] << 8) | c->p[c->off + 1]);
    c->off += 2;
    return v;
}

void dnsmsg_read_bytes(struct dnsmsg_cur *c, void *out, size_t n)
{
    if (!cur_take(c, n)) {
        if (out)
            memset(out, 0, n);
        return;
    }
    if (out)
        memcpy(out, c->p + c->off, n);
    c->off += n;
}

static bool name_byte_ok(uint8_t b)
{
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
           b == '-' || b == '_';
}

/* RFC 1035 section 3.1: labels, each a length octet (1..63) and that many
 * octets, ending with the zero-length root label; 255 octets in all. */
static int read_name(struct dnsmsg_cur *c, char *out, size_t cap, bool *odd)
{
    size_t wire = 0, o = 0;
    for (;;) {
        uint8_t l = dnsmsg_read_u8(c);
        if (!c->ok)
            return -EBADMSG;
        wire += 1u + l;
        if (wire > DNSMSG_WIRE_NAME_MAX)
            return -EBADMSG;
        if (l == 0)
            break;
        if (l > 63) /* 0xC0: a pointer; 0x40/0x80: extended labels (RFC 6891) */
            return -EBADMSG;
        if (o && o + 1 < cap)
            out[o++] = '.';
        for (uint8_t i = 0; i < l; i++) {
            uint8_t b = dnsmsg_read_u8(c);
            if (!c->ok || o + 1 >= cap)
                return -EBADMSG;
            if (!name_byte_ok(b)) {
                *odd = true;
                b = '?';
            }
            out[o++] = (char)(b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b);
        }
    }
    out[o] = '\0';
    return 0;
}

int dnsmsg_parse_query(const uint8_t *msg, size_t len, struct dnsmsg_query *q)
{
    struct dnsmsg_cur c;
    memset(q, 0, sizeof(*q));
    if (!msg || len < DNSMSG_HEADER_LEN)
        return -EINVAL;
    dnsmsg_cur_init(&c, msg, len);
    /* RFC 1035 section 4.1.1: ID, QR|Opcode|AA|TC|RD|RA|Z|RCODE, four counts */
    q->id = dnsmsg_read_u16be(&c);
    uint16_t flags = dnsmsg_read_u16be(&c);
    uint16_t qd = dnsmsg_read_u16be(&c), an = dnsmsg_read_u16be(&c);
    uint16_t ns = dnsmsg_read_u16be(&c);
    (void)dnsmsg_read_u16be(&c); /* ARCOUNT: additional records are ignored */
    q->rd = (flags & 0x0100) != 0;
    if (flags & 0x8000)
        return -EPROTO;
    if (((flags >> 11) & 0xf) != 0)
        return -EOPNOTSUPP;
    if (qd != 1 || an != 0 || ns != 0)
        return -EBADMSG;
    size_t qstart = c.off;
    if (read_name(&c, q->name, sizeof(q->name), &q->odd_name) < 0)
        return -EBADMSG;
    q->qtype = dnsmsg_read_u16be(&c);
    q->qclass = dnsmsg_read_u16be(&c);
    if (!c.ok)
        return -EBADMSG;
    q->question_len = c.off - qstart;
    memcpy(q->question, msg + qstart, q->question_len);
    return 0;
}

struct wbuf {
    uint8_t *p;
    size_t cap, len;
    bool overflow;
};

static void put(struct wbuf *w, const void *d, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->p + w->len, d, n);
    w->len += n;
}

static void put_u16(struct wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}

static void put_u32(struct wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}

int dnsmsg_build_answer(const struct dnsmsg_query *q, enum dnsmsg_rcode rcode,
                        const struct in_addr *a, size_t n_a, uint32_t ttl, uint8_t *out,
                        size_t cap)
{
    struct wbuf w = {.p = out, .cap = cap};
    bool have_q = q->question_len > 0 && q->question_len <= sizeof(q->question);
    if (!have_q || rcode != DNSMSG_NOERROR)
        n_a = 0;
    if (n_a > 0xffff)
        return -EINVAL;
    /* QR=1, Opcode 0, AA=1 (we are the only source of these names), RD
     * copied, RA=1 (stub resolvers warn on RA=0), rcode. */
    uint16_t flags = (uint16_t)(0x8000 | 0x0400 | (q->rd ? 0x0100 : 0) | 0x0080 | (rcode & 0xf));
    put_u16(&w, q->id);
    put_u16(&w, flags);
    put_u16(&w, have_q ? 1 : 0);
    put_u16(&w, (uint16_t)n_a);
    put_u16(&w, 0);
    put_u16(&w, 0);
    if (have_q)
        put(&w, q->question, q->question_len);
    for (size_t i = 0; i < n_a; i++) {
        put_u16(&w, 0xC000 | DNSMSG_HEADER_LEN); /* pointer to the question's name */
        put_u16(&w, DNSMSG_T_A);
        put_u16(&w, DNSMSG_C_IN);
        put_u32(&w, ttl);
        put_u16(&w, 4);
        put(&w, &a[i].s_addr, 4);
    }
    if (w.overflow)
        return -ENOSPC;
    return (int)w.len;
}

const char *dnsmsg_type_name(uint16_t t, char *buf, size_t cap)
{
    const char *n = NULL;
    switch (t) {
    case DNSMSG_T_A: n = "A"; break;
    case DNSMSG_T_NS: n = "NS"; break;
    case DNSMSG_T_CNAME: n = "CNAME"; break;
    case DNSMSG_T_SOA: n = "SOA"; break;
    case DNSMSG_T_PTR: n = "PTR"; break;
    case DNSMSG_T_MX: n = "MX"; break;
    case DNSMSG_T_TXT: n = "TXT"; break;
    case DNSMSG_T_AAAA: n = "AAAA"; break;
    case DNSMSG_T_SRV: n = "SRV"; break;
    case DNSMSG_T_OPT: n = "OPT"; break;
    case DNSMSG_T_SVCB: n = "SVCB"; break;
    case DNSMSG_T_HTTPS: n = "HTTPS"; break;
    case DNSMSG_T_ANY: n = "ANY"; break;
    default: break;
    }
    if (n)
        snprintf(buf, cap, "%s", n);
    else
        snprintf(buf, cap, "TYPE%u", (unsigned)t);
    return buf;
}
