/* sandbox/nftmsg: an nf_tables transaction built as netlink messages.
 *
 * The fence is a fixed ruleset whose bytecode is known (fence.c); building
 * its netlink batch directly costs a few microseconds, where libnftables
 * (context, cache, parser, evaluation) cost milliseconds of CPU and ~0.5 MB
 * of touched memory in every `cordon run`. The messages are those nft 1.0
 * sends for the same text (`nft --debug=mnl`): one batch, applied by the
 * kernel atomically or not at all; every message asks for an ack, so the
 * first error names the message it refused.
 *
 * Encoding (include/uapi/linux/netfilter/nf_tables.h): numbers in
 * attributes are big-endian; register contents (NFTA_DATA_VALUE) are the
 * bytes as the expressions load them. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"
#include "core/banned.h"

void nftmsg_begin(struct nftmsg *m, void *buf, size_t cap)
{
    memset(m, 0, sizeof(*m));
    m->buf = buf;
    m->cap = cap;
    m->seq = 1;
    struct nlmsghdr *h = mnl_nlmsg_put_header(m->buf);
    h->nlmsg_type = NFNL_MSG_BATCH_BEGIN;
    h->nlmsg_flags = NLM_F_REQUEST;
    h->nlmsg_seq = m->seq++;
    struct nfgenmsg *g = mnl_nlmsg_put_extra_header(h, sizeof(*g));
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(NFNL_SUBSYS_NFTABLES);
    m->len = h->nlmsg_len;
}

/* Room for one more message of at most NFTMSG_MAX_MSG bytes. */
#define NFTMSG_MAX_MSG 2048

static struct nlmsghdr *msg_start(struct nftmsg *m, uint16_t type, uint16_t flags, uint8_t family)
{
    if (m->err || m->cur || m->cap - m->len < NFTMSG_MAX_MSG) {
        if (!m->err)
            m->err = -ENOSPC;
        return NULL;
    }
    struct nlmsghdr *h = mnl_nlmsg_put_header(m->buf + m->len);
    h->nlmsg_type = (uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | type);
    h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
    h->nlmsg_seq = m->seq++;
    struct nfgenmsg *g = mnl_nlmsg_put_extra_header(h, sizeof(*g));
    g->nfgen_family = family;
    g->version = NFNETLINK_V0;
    g->res_id = 0;
    m->cur = h;
    return h;
}

static void msg_end(struct nftmsg *m)
{
    if (!m->cur)
        return;
    if (m->cur->nlmsg_len > NFTMSG_MAX_MSG)
        m->err = -ENOSPC; /* cannot happen with the fence's rules */
    m->len += MNL_ALIGN(m->cur->nlmsg_len);
    m->cur = NULL;
}

void nftmsg_table(struct nftmsg *m, uint8_t family, const char *name)
{
    struct nlmsghdr *h = msg_start(m, NFT_MSG_NEWTABLE, NLM_F_CREATE, family);
    if (!h)
        return;
    mnl_attr_put_strz(h, NFTA_TABLE_NAME, name);
    mnl_attr_put_u32(h, NFTA_TABLE_FLAGS, htonl(0));
    msg_end(m);
}

void nftmsg_chain(struct nftmsg *m, uint8_t family, const char *table, const char *name,
                  const char *type, uint32_t hooknum, int32_t prio)
{
    struct nlmsghdr *h = msg_start(m, NFT_MSG_NEWCHAIN, NLM_F_CREATE, family);
    if (!h)
        return;
    mnl_attr_put_strz(h, NFTA_CHAIN_TABLE, table);
    mnl_attr_put_strz(h, NFTA_CHAIN_NAME, name);
    if (type) { /* a base chain, policy accept */
        mnl_attr_put_strz(h, NFTA_CHAIN_TYPE, type);
        mnl_attr_put_u32(h, NFTA_CHAIN_POLICY, htonl(NF_ACCEPT));
        struct nlattr *hook = mnl_attr_nest_start(h, NFTA_CHAIN_HOOK);
        mnl_attr_put_u32(h, NFTA_HOOK_HOOKNUM, htonl(hooknum));
        mnl_attr_put_u32(h, NFTA_HOOK_PRIORITY, htonl((uint32_t)prio));
        mnl_attr_nest_end(h, hook);
    }
    msg_end(m);
}

void nftmsg_set(struct nftmsg *m, uint8_t family, const struct nftmsg_set *s)
{
    struct nlmsghdr *h = msg_start(m, NFT_MSG_NEWSET, NLM_F_CREATE, family);
    if (!h)
        return;
    mnl_attr_put_strz(h, NFTA_SET_TABLE, s->table);
    mnl_attr_put_strz(h, NFTA_SET_NAME, s->name);
    mnl_attr_put_u32(h, NFTA_SET_FLAGS, htonl(s->flags));
    mnl_attr_put_u32(h, NFTA_SET_KEY_TYPE, htonl(s->key_type));
    mnl_attr_put_u32(h, NFTA_SET_KEY_LEN, htonl(s->key_len));
    mnl_attr_put_u32(h, NFTA_SET_ID, htonl(s->id));
    struct nlattr *desc = mnl_attr_nest_start(h, NFTA_SET_DESC);
    mnl_attr_put_u32(h, NFTA_SET_DESC_SIZE, htonl(s->size));
    mnl_attr_nest_end(h, desc);
    if (s->timeout_ms)
        mnl_attr_put_u64(h, NFTA_SET_TIMEOUT, htobe64(s->timeout_ms));
    if (s->udata_len)
        mnl_attr_put(h, NFTA_SET_USERDATA, s->udata_len, s->udata);
    msg_end(m);
}

void nftmsg_elems(struct nftmsg *m, uint8_t family, const char *table, const char *set,
                  uint32_t set_id, const uint8_t *keys, size_t n)
{
    struct nlmsghdr *h = msg_start(m, NFT_MSG_NEWSETELEM, NLM_F_CREATE, family);
    if (!h)
        return;
    mnl_attr_put_strz(h, NFTA_SET_ELEM_LIST_TABLE, table);
    mnl_attr_put_strz(h, NFTA_SET_ELEM_LIST_SET, set);
    mnl_attr_put_u32(h, NFTA_SET_ELEM_LIST_SET_ID, htonl(set_id));
    struct nlattr *list = mnl_attr_nest_start(h, NFTA_SET_ELEM_LIST_ELEMENTS);
    for (size_t i = 0; i < n; i++) {
        struct nlattr *e = mnl_attr_nest_start(h, (uint16_t)(i + 1));
        struct nlattr *k = mnl_attr_nest_start(h, NFTA_SET_ELEM_KEY);
        mnl_attr_put(h, NFTA_DATA_VALUE, 1, &keys[i]);
        mnl_attr_nest_end(h, k);
        mnl_attr_nest_end(h, e);
    }
    mnl_attr_nest_end(h, list);
    msg_end(m);
}

void nftmsg_rule_begin(struct nftmsg *m, uint8_t family, const char *table, const char *chain)
{
    struct nlmsghdr *h = msg_start(m, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, family);
    if (!h)
        return;
    mnl_attr_put_strz(h, NFTA_RULE_TABLE, table);
    mnl_attr_put_strz(h, NFTA_RULE_CHAIN, chain);
    m->exprs = mnl_attr_nest_start(h, NFTA_RULE_EXPRESSIONS);
}

void nftmsg_rule_end(struct nftmsg *m)
{
    if (!m->cur)
        return;
    mnl_attr_nest_end(m->cur, m->exprs);
    m->exprs = NULL;
    msg_end(m);
}

/* One expression: NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } }.
 * expr_start returns the data nest (NULL outside a rule). */
static struct nlattr *expr_start(struct nftmsg *m, const char *name, struct nlattr **elem)
{
    if (!m->cur || !m->exprs)
        return NULL;
    *elem = mnl_attr_nest_start(m->cur, NFTA_LIST_ELEM);
    mnl_attr_put_strz(m->cur, NFTA_EXPR_NAME, name);
    return mnl_attr_nest_start(m->cur, NFTA_EXPR_DATA);
}

static void expr_end(struct nftmsg *m, struct nlattr *elem, struct nlattr *data)
{
    mnl_attr_nest_end(m->cur, data);
    mnl_attr_nest_end(m->cur, elem);
}

static void put_be32(struct nftmsg *m, uint16_t type, uint32_t v)
{
    mnl_attr_put_u32(m->cur, type, htonl(v));
}

static void put_value(struct nftmsg *m, uint16_t type, const void *v, size_t len)
{
    struct nlattr *d = mnl_attr_nest_start(m->cur, type);
    mnl_attr_put(m->cur, NFTA_DATA_VALUE, len, v);
    mnl_attr_nest_end(m->cur, d);
}

void nftmsg_meta(struct nftmsg *m, uint32_t key, uint32_t dreg)
{
    struct nlattr *e, *d = expr_start(m, "meta", &e);
    if (!d)
        return;
    put_be32(m, NFTA_META_KEY, key);
    put_be32(m, NFTA_META_DREG, dreg);
    expr_end(m, e, d);
}

void nftmsg_cmp(struct nftmsg *m, uint32_t sreg, uint32_t op, const void *v, size_t len)
{
    struct nlattr *e, *d = expr_start(m, "cmp", &e);
    if (!d)
        return;
    put_be32(m, NFTA_CMP_SREG, sreg);
    put_be32(m, NFTA_CMP_OP, op);
    put_value(m, NFTA_CMP_DATA, v, len);
    expr_end(m, e, d);
}

void nftmsg_payload(struct nftmsg *m, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg)
{
    struct nlattr *e, *d = expr_start(m, "payload", &e);
    if (!d)
        return;
    put_be32(m, NFTA_PAYLOAD_DREG, dreg);
    put_be32(m, NFTA_PAYLOAD_BASE, base);
    put_be32(m, NFTA_PAYLOAD_OFFSET, offset);
    put_be32(m, NFTA_PAYLOAD_LEN, len);
    expr_end(m, e, d);
}

void nftmsg_bitwise(struct nftmsg *m, uint32_t reg, const void *mask, const void *xor, size_t len)
{
    struct nlattr *e, *d = expr_start(m, "bitwise", &e);
    if (!d)
        return;
    put_be32(m, NFTA_BITWISE_SREG, reg);
    put_be32(m, NFTA_BITWISE_DREG, reg);
    put_be32(m, NFTA_BITWISE_LEN, (uint32_t)len);
    put_value(m, NFTA_BITWISE_MASK, mask, len);
    put_value(m, NFTA_BITWISE_XOR, xor, len);
    expr_end(m, e, d);
}

void nftmsg_verdict(struct nftmsg *m, int32_t code, const char *chain)
{
    struct nlattr *e, *d = expr_start(m, "immediate", &e);
    if (!d)
        return;
    put_be32(m, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
    struct nlattr *data = mnl_attr_nest_start(m->cur, NFTA_IMMEDIATE_DATA);
    struct nlattr *v = mnl_attr_nest_start(m->cur, NFTA_DATA_VERDICT);
    put_be32(m, NFTA_VERDICT_CODE, (uint32_t)code);
    if (chain)
        mnl_attr_put_strz(m->cur, NFTA_VERDICT_CHAIN, chain);
    mnl_attr_nest_end(m->cur, v);
    mnl_attr_nest_end(m->cur, data);
    expr_end(m, e, d);
}

void nftmsg_immediate(struct nftmsg *m, uint32_t dreg, const void *v, size_t len)
{
    struct nlattr *e, *d = expr_start(m, "immediate", &e);
    if (!d)
        return;
    put_be32(m, NFTA_IMMEDIATE_DREG, dreg);
    put_value(m, NFTA_IMMEDIATE_DATA, v, len);
    expr_end(m, e, d);
}

void nftmsg_redir(struct nftmsg *m, uint32_t proto_reg, uint32_t flags)
{
    struct nlattr *e, *d = expr_start(m, "redir", &e);
    if (!d)
        return;
    put_be32(m, NFTA_REDIR_REG_PROTO_MIN, proto_reg);
    put_be32(m, NFTA_REDIR_FLAGS, flags);
    expr_end(m, e, d);
}

void nftmsg_fib(struct nftmsg *m, uint32_t flags, uint32_t result, uint32_t dreg)
{
    struct nlattr *e, *d = expr_start(m, "fib", &e);
    if (!d)
        return;
    put_be32(m, NFTA_FIB_FLAGS, flags);
    put_be32(m, NFTA_FIB_RESULT, result);
    put_be32(m, NFTA_FIB_DREG, dreg);
    expr_end(m, e, d);
}

void nftmsg_ct(struct nftmsg *m, uint32_t key, uint32_t dreg)
{
    struct nlattr *e, *d = expr_start(m, "ct", &e);
    if (!d)
        return;
    put_be32(m, NFTA_CT_KEY, key);
    put_be32(m, NFTA_CT_DREG, dreg);
    expr_end(m, e, d);
}

void nftmsg_log(struct nftmsg *m, const char *prefix, uint16_t group)
{
    struct nlattr *e, *d = expr_start(m, "log", &e);
    if (!d)
        return;
    mnl_attr_put_strz(m->cur, NFTA_LOG_PREFIX, prefix);
    mnl_attr_put_u16(m->cur, NFTA_LOG_GROUP, htons(group));
    expr_end(m, e, d);
}

void nftmsg_reject(struct nftmsg *m, uint32_t type, uint8_t code)
{
    struct nlattr *e, *d = expr_start(m, "reject", &e);
    if (!d)
        return;
    put_be32(m, NFTA_REJECT_TYPE, type);
    mnl_attr_put_u8(m->cur, NFTA_REJECT_ICMP_CODE, code);
    expr_end(m, e, d);
}

void nftmsg_lookup(struct nftmsg *m, uint32_t sreg, const char *set, uint32_t set_id)
{
    struct nlattr *e, *d = expr_start(m, "lookup", &e);
    if (!d)
        return;
    put_be32(m, NFTA_LOOKUP_SREG, sreg);
    mnl_attr_put_strz(m->cur, NFTA_LOOKUP_SET, set);
    put_be32(m, NFTA_LOOKUP_SET_ID, set_id);
    expr_end(m, e, d);
}

void nftmsg_dynset_update(struct nftmsg *m, uint32_t sreg_key, const char *set, uint32_t set_id)
{
    struct nlattr *e, *d = expr_start(m, "dynset", &e);
    if (!d)
        return;
    put_be32(m, NFTA_DYNSET_SREG_KEY, sreg_key);
    put_be32(m, NFTA_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
    mnl_attr_put_strz(m->cur, NFTA_DYNSET_SET_NAME, set);
    put_be32(m, NFTA_DYNSET_SET_ID, set_id);
    expr_end(m, e, d);
}

int nftmsg_end(struct nftmsg *m)
{
    if (m->err)
        return m->err;
    if (m->cur || m->cap - m->len < MNL_NLMSG_HDRLEN + sizeof(struct nfgenmsg))
        return m->err = -ENOSPC;
    struct nlmsghdr *h = mnl_nlmsg_put_header(m->buf + m->len);
    h->nlmsg_type = NFNL_MSG_BATCH_END;
    h->nlmsg_flags = NLM_F_REQUEST;
    h->nlmsg_seq = m->seq++;
    struct nfgenmsg *g = mnl_nlmsg_put_extra_header(h, sizeof(*g));
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(NFNL_SUBSYS_NFTABLES);
    m->len += MNL_ALIGN(h->nlmsg_len);
    return 0;
}

int nftmsg_acks(const void *buf, size_t len, uint32_t last, uint32_t *bad_seq)
{
    /* By hand, not mnl_nlmsg_ok/next: they take a length >= 2^31 in a
     * header for a negative one and step outside the buffer (fuzzing). */
    const uint8_t *p = buf;
    size_t left = len;
    while (left >= sizeof(struct nlmsghdr)) {
        struct nlmsghdr h;
        memcpy(&h, p, sizeof(h));
        if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > left)
            return -EBADMSG;
        if (h.nlmsg_type == NLMSG_ERROR) {
            struct nlmsgerr e;
            if (h.nlmsg_len < NLMSG_LENGTH(sizeof(e)))
                return -EBADMSG;
            memcpy(&e, p + NLMSG_HDRLEN, sizeof(e));
            if (e.error) {
                *bad_seq = h.nlmsg_seq;
                /* a kernel error is a negative errno; anything else is not ours */
                return e.error < 0 && e.error > -4096 ? e.error : -EBADMSG;
            }
            if (h.nlmsg_seq == last)
                return 1;
        }
        size_t step = NLMSG_ALIGN(h.nlmsg_len);
        if (step >= left)
            break;
        p += step;
        left -= step;
    }
    return 0;
}

/* Reads acks until the one for message `last` (0) or the first error
 * (-errno, *bad_seq = the refused message's sequence number). */
static int read_acks(int fd, uint32_t last, uint32_t *bad_seq)
{
    char buf[8192] __attribute__((aligned(4)));
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        int rc = nftmsg_acks(buf, (size_t)n, last, bad_seq);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
}

int nftmsg_send(struct nftmsg *m, int netns_fd, uint32_t *bad_seq)
{
    *bad_seq = 0;
    if (m->err)
        return m->err;
    /* The socket belongs to the namespace it is created in: open it there,
     * then come straight back. */
    int host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (host_fd < 0)
        return -errno;
    int rc = netns_enter(netns_fd);
    if (rc < 0) {
        close(host_fd);
        return rc;
    }
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    int e = errno;
    if (netns_enter(host_fd) < 0)
        abort(); /* this thread would stay in the sandbox's namespace */
    close(host_fd);
    if (fd < 0)
        return -e;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    /* Every answer is queued while the kernel processes the batch (in
     * sendmsg); the timeout only guards against a kernel that does not. */
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n;
    do
        n = sendto(fd, m->buf, m->len, 0, (struct sockaddr *)&sa, sizeof(sa));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        rc = -errno;
    else if ((size_t)n != m->len)
        rc = -EMSGSIZE;
    else
        rc = read_acks(fd, m->seq - 2, bad_seq); /* the last message before BATCH_END */
    close(fd);
    return rc;
}
