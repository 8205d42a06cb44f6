/* sandbox/rtnl: a minimal rtnetlink client (RFC 3549 framing) for the few
 * link, address and route operations the sandbox needs. */
#include <errno.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"
#include "core/banned.h"

#define RTNL_RECV_BUF 32768

int rtnl_open(struct rtnl *r)
{
    r->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (r->fd < 0)
        return -errno;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = -errno;
        close(r->fd);
        r->fd = -1;
        return e;
    }
    /* Extended acks would carry a message; errno is enough for us. */
    r->seq = 1;
    return 0;
}

void rtnl_close(struct rtnl *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

void rtnl_msg_init(struct rtnl_msg *m, uint16_t type, uint16_t flags, const void *hdr,
                   size_t hdr_len)
{
    memset(m, 0, sizeof(*m));
    if (NLMSG_LENGTH(hdr_len) > sizeof(m->u.buf)) {
        m->err = -ENOSPC;
        return;
    }
    m->u.h.nlmsg_type = type;
    m->u.h.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
    m->u.h.nlmsg_len = (uint32_t)NLMSG_LENGTH(hdr_len);
    memcpy(NLMSG_DATA(&m->u.h), hdr, hdr_len);
}

void rtnl_attr(struct rtnl_msg *m, uint16_t type, const void *data, size_t len)
{
    size_t off = NLMSG_ALIGN(m->u.h.nlmsg_len);
    size_t alen = RTA_LENGTH(len);
    if (m->err || off + RTA_ALIGN(alen) > sizeof(m->u.buf) || alen > UINT16_MAX) {
        m->err = -ENOSPC;
        return;
    }
    struct rtattr *a = (struct rtattr *)(m->u.buf + off);
    a->rta_type = type;
    a->rta_len = (unsigned short)alen;
    if (len)
        memcpy(RTA_DATA(a), data, len);
    m->u.h.nlmsg_len = (uint32_t)(off + RTA_ALIGN(alen));
}

void rtnl_attr_u32(struct rtnl_msg *m, uint16_t type, uint32_t v)
{
    rtnl_attr(m, type, &v, sizeof(v));
}

void rtnl_attr_str(struct rtnl_msg *m, uint16_t type, const char *s)
{
    rtnl_attr(m, type, s, strlen(s) + 1);
}

size_t rtnl_nest_begin(struct rtnl_msg *m, uint16_t type)
{
    size_t off = NLMSG_ALIGN(m->u.h.nlmsg_len);
    rtnl_attr(m, type, NULL, 0);
    return m->err ? 0 : off;
}

void rtnl_nest_end(struct rtnl_msg *m, size_t off)
{
    if (m->err || off == 0)
        return;
    struct rtattr *a = (struct rtattr *)(m->u.buf + off);
    size_t len = m->u.h.nlmsg_len - off;
    if (len > UINT16_MAX) {
        m->err = -ENOSPC;
        return;
    }
    a->rta_len = (unsigned short)len;
}

static int rtnl_send(struct rtnl *r, struct rtnl_msg *m)
{
    if (m->err)
        return m->err;
    m->u.h.nlmsg_seq = ++r->seq;
    struct sockaddr_nl to = {.nl_family = AF_NETLINK};
    ssize_t n;
    do {
        n = sendto(r->fd, m->u.buf, m->u.h.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to));
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return 0;
}

/* Reads answers to seq until the ACK/error (talk) or NLMSG_DONE (dump). */
static int rtnl_recv(struct rtnl *r, uint32_t seq, rtnl_dump_cb cb, void *data)
{
    /* On the stack (supervisor threads have full-size stacks): a __thread
     * buffer would be zeroed in every thread the process creates. */
    char buf[RTNL_RECV_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));
    for (;;) {
        ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        size_t left = (size_t)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left);
             h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != seq)
                continue; /* a stale answer to an earlier request */
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                    return -EPROTO;
                const struct nlmsgerr *e = NLMSG_DATA(h);
                return e->error; /* 0 = ACK */
            }
            if (cb)
                cb(h, data);
        }
    }
}

int rtnl_talk(struct rtnl *r, struct rtnl_msg *m)
{
    int rc = rtnl_send(r, m);
    if (rc < 0)
        return rc;
    return rtnl_recv(r, r->seq, NULL, NULL);
}

int rtnl_dump(struct rtnl *r, struct rtnl_msg *m, rtnl_dump_cb cb, void *data)
{
    m->u.h.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_DUMP);
    int rc = rtnl_send(r, m);
    if (rc < 0)
        return rc;
    return rtnl_recv(r, r->seq, cb, data);
}

struct link_index_ctx {
    int index;
};

static void link_index_cb(const struct nlmsghdr *h, void *data)
{
    struct link_index_ctx *c = data;
    if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
        return;
    const struct ifinfomsg *ifi = NLMSG_DATA(h);
    c->index = ifi->ifi_index;
}

int rtnl_link_index(struct rtnl *r, const char *name)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    struct rtnl_msg m;
    rtnl_msg_init(&m, RTM_GETLINK, 0, &ifi, sizeof(ifi));
    rtnl_attr_str(&m, IFLA_IFNAME, name);
    int rc = rtnl_send(r, &m);
    if (rc < 0)
        return rc;
    /* A GETLINK answer is one RTM_NEWLINK, then (with NLM_F_ACK) an ACK. */
    struct link_index_ctx c = {.index = 0};
    rc = rtnl_recv(r, r->seq, link_index_cb, &c);
    if (rc < 0)
        return rc;
    return c.index > 0 ? c.index : -ENODEV;
}
