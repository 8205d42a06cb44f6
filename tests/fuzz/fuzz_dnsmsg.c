/* libFuzzer target: the policy DNS (sandbox/dnsmsg + policydns_answer),
 * which reads every byte a sandboxed program sends to 127.0.0.1:53.
 * Checks the contracts, not just "no crash":
 *  - parse results are one of the documented codes;
 *  - a parsed name is NUL-terminated, at most 253 characters, lowercase,
 *    of [a-z0-9._-?] only, and the echoed question fits its buffer;
 *  - an answer is either nothing (runts, responses) or a well-formed
 *    response: same id, QR set, at most one A record, which comes only
 *    with NOERROR for a name the policy names, and only from the map's
 *    range; a denial always comes with NXDOMAIN;
 *  - the answer fits the 512-byte UDP limit.
 * The input is copied to an exact-size heap buffer so ASan catches any
 * over-read. */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "sandbox/addrmap.h"
#include "sandbox/dnsmsg.h"
#include "sandbox/policydns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char POLICY[] = "version: 1\n"
                             "network_policies:\n"
                             "  a:\n"
                             "    endpoints:\n"
                             "      - host: api.example.com\n"
                             "        port: 443\n"
                             "      - host: \"*.wild.test\"\n"
                             "        port: 443\n"
                             "    binaries:\n"
                             "      - path: /usr/bin/curl\n";

static struct policy *pol;
static struct addrmap *map;

static void init(void)
{
    struct policy_diag d = {0};
    if (policy_load_buffer("fuzz.yaml", POLICY, strlen(POLICY), &pol, &d) < 0)
        abort();
    policy_diag_free(&d);
    struct in_addr net;
    inet_pton(AF_INET, "198.18.0.0", &net);
    map = addrmap_new(net, 16);
    if (!map)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!pol)
        init();
    uint8_t *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    struct dnsmsg_query q;
    int rc = dnsmsg_parse_query(in, size, &q);
    if (rc != 0 && rc != -EINVAL && rc != -EBADMSG && rc != -EPROTO && rc != -EOPNOTSUPP)
        abort();
    if (rc == 0) {
        size_t n = strnlen(q.name, sizeof(q.name));
        if (n >= sizeof(q.name) || n > DNSMSG_NAME_MAX || q.question_len > sizeof(q.question))
            abort();
        for (size_t i = 0; i < n; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789-._?", q.name[i]))
                abort();
    }
    uint8_t out[DNSMSG_UDP_MAX];
    const char *denied = NULL;
    int l = policydns_answer(pol, NULL, map, in, size, &q, &denied, out, sizeof(out));
    if (l < 0 || (size_t)l > sizeof(out))
        abort();
    if (l == 0) {
        if (rc != -EINVAL && rc != -EPROTO)
            abort();
    } else {
        if (l < DNSMSG_HEADER_LEN || out[0] != in[0] || out[1] != in[1] || !(out[2] & 0x80))
            abort();
        int rcode = out[3] & 0xf, an = (out[6] << 8) | out[7];
        if (an > 1 || (an == 1 && (rcode != DNSMSG_NOERROR || q.qtype != DNSMSG_T_A ||
                                   !policy_names_host(pol, q.name))))
            abort();
        if (an == 1 && (out[l - 4] != 198 || out[l - 3] != 18))
            abort();
        if (denied && rcode != DNSMSG_NXDOMAIN)
            abort();
    }
    free(in);
    return 0;
}
