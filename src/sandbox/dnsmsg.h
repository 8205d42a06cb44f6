/* sandbox/dnsmsg: the DNS wire format the policy responder needs (RFC 1035
 * section 4): parse one query, build its answer. Nothing else of DNS.
 *
 * Input is read through a bounded cursor (dnsmsg_cur): every read checks
 * the remaining length first and a failed read poisons the cursor, so the
 * parser reads like the RFC's diagrams and never reads past the buffer.
 * Queries are accepted only in the shape stub resolvers send: QR=0,
 * OPCODE=0 (QUERY), QDCOUNT=1, ANCOUNT=0, NSCOUNT=0, a question name
 * without compression pointers (RFC 1035 section 4.1.4 allows pointers,
 * but a question is the first name of a message, so there is nothing to
 * point back to). Additional records (EDNS OPT, RFC 6891) are ignored. */
#ifndef CORDON_SANDBOX_DNSMSG_H
#define CORDON_SANDBOX_DNSMSG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSMSG_HEADER_LEN 12
#define DNSMSG_NAME_MAX 253       /* text form, without the trailing dot */
#define DNSMSG_WIRE_NAME_MAX 255  /* RFC 1035 section 2.3.4 */
#define DNSMSG_UDP_MAX 512        /* answers we build always fit in this */

/* RR types and classes we name (RFC 1035 section 3.2.2, RFC 3596, RFC 2782, RFC 9460). */
enum {
    DNSMSG_T_A = 1, DNSMSG_T_NS = 2, DNSMSG_T_CNAME = 5, DNSMSG_T_SOA = 6, DNSMSG_T_PTR = 12,
    DNSMSG_T_MX = 15, DNSMSG_T_TXT = 16, DNSMSG_T_AAAA = 28, DNSMSG_T_SRV = 33,
    DNSMSG_T_OPT = 41, DNSMSG_T_SVCB = 64, DNSMSG_T_HTTPS = 65, DNSMSG_T_ANY = 255,
};
#define DNSMSG_C_IN 1

/* Response codes (RFC 1035 section 4.1.1). */
enum dnsmsg_rcode {
    DNSMSG_NOERROR = 0, DNSMSG_FORMERR = 1, DNSMSG_SERVFAIL = 2, DNSMSG_NXDOMAIN = 3,
    DNSMSG_NOTIMP = 4, DNSMSG_REFUSED = 5,
};

/* A bounded reader. ok turns false on the first read past the end and
 * every later read returns zeros. */
struct dnsmsg_cur {
    const uint8_t *p;
    size_t len, off;
    bool ok;
};
void dnsmsg_cur_init(struct dnsmsg_cur *c, const uint8_t *p, size_t len);
uint8_t dnsmsg_read_u8(struct dnsmsg_cur *c);
uint16_t dnsmsg_read_u16be(struct dnsmsg_cur *c);
/* Copies n bytes to out (or skips them when out is NULL). */
void dnsmsg_read_bytes(struct dnsmsg_cur *c, void *out, size_t n);

struct dnsmsg_query {
    uint16_t id;
    bool rd;                       /* recursion desired (copied to the answer) */
    uint16_t qtype, qclass;
    char name[DNSMSG_NAME_MAX + 1]; /* lowercase, no trailing dot; "" = the root */
    /* The name has bytes other than letters, digits, '-', '_' (each shown
     * as '?' in name): nothing the policy names, so it is never allowed. */
    bool odd_name;
    /* The question exactly as received (name with its case, type, class),
     * echoed in the answer (resolvers using 0x20 case randomization compare it). */
    uint8_t question[DNSMSG_WIRE_NAME_MAX + 4];
    size_t question_len;
};

/* Parses a query. Returns 0; -EINVAL when not even the header is there
 * (no answer possible: drop it); -EBADMSG when the header was read (q->id
 * and q->rd are set) but the rest is not an acceptable query (answer
 * FORMERR, or NOTIMP for an opcode other than QUERY: -EOPNOTSUPP), or a
 * response (QR=1: -EPROTO, never answered, so two responders cannot loop).
 * A name too long for its text form is -EBADMSG too. */
int dnsmsg_parse_query(const uint8_t *msg, size_t len, struct dnsmsg_query *q)
    __attribute__((warn_unused_result));

/* Builds the answer to q: header (QR, AA, RA, q's RD and id, rcode), q's
 * question when it was parsed (question_len > 0), then one A record per
 * address (class IN, the given TTL, name as a pointer to the question).
 * NODATA is NOERROR with no address. Returns the length, or -ENOSPC when
 * cap is too small. */
int dnsmsg_build_answer(const struct dnsmsg_query *q, enum dnsmsg_rcode rcode,
                        const struct in_addr *a, size_t n_a, uint32_t ttl, uint8_t *out,
                        size_t cap) __attribute__((warn_unused_result));

/* "A", "AAAA", "PTR"... or "TYPE<n>" (RFC 3597) into buf; returns buf. */
const char *dnsmsg_type_name(uint16_t t, char *buf, size_t cap);

#endif
