/* sandbox internals shared by the files of src/sandbox/ and their unit
 * tests (not for other modules). One section per file. */
#ifndef CORDON_SANDBOX_SANDBOX_INT_H
#define CORDON_SANDBOX_SANDBOX_INT_H

#include <linux/filter.h>
#include <linux/netlink.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "policy/policy.h"
#include "sandbox/cgroup.h"

struct loop;
struct json_t;

/* ---- rtnl.c: a minimal rtnetlink client (no shelling out to `ip`) ---- */

/* One request under construction. Attribute helpers never overflow: on lack
 * of room they set err = -ENOSPC and rtnl_talk() returns it. */
struct rtnl_msg {
    union {
        struct nlmsghdr h;
        char buf[1024];
    } u;
    int err;
};

struct rtnl {
    int fd;
    uint32_t seq;
};

/* Opens a NETLINK_ROUTE socket in the calling thread's current network
 * namespace (it stays bound to that namespace). Returns 0 or -errno. */
int rtnl_open(struct rtnl *r) __attribute__((warn_unused_result));
void rtnl_close(struct rtnl *r);

/* Starts a message: header type/flags (NLM_F_REQUEST|NLM_F_ACK are added)
 * followed by `hdr` (ifinfomsg, ifaddrmsg, rtmsg...) of hdr_len bytes. */
void rtnl_msg_init(struct rtnl_msg *m, uint16_t type, uint16_t flags, const void *hdr,
                   size_t hdr_len);
void rtnl_attr(struct rtnl_msg *m, uint16_t type, const void *data, size_t len);
void rtnl_attr_u32(struct rtnl_msg *m, uint16_t type, uint32_t v);
void rtnl_attr_str(struct rtnl_msg *m, uint16_t type, const char *s);
/* Nests: begin returns an offset to hand to end (or 0 after an overflow). */
size_t rtnl_nest_begin(struct rtnl_msg *m, uint16_t type);
void rtnl_nest_end(struct rtnl_msg *m, size_t off);

/* Sends m and waits for its acknowledgement. Returns 0 or the kernel's
 * -errno (or -ENOSPC if the message overflowed while being built). */
int rtnl_talk(struct rtnl *r, struct rtnl_msg *m) __attribute__((warn_unused_result));

/* Sends a dump request and calls cb for every message of the answer.
 * Returns 0 or -errno. */
typedef void (*rtnl_dump_cb)(const struct nlmsghdr *h, void *data);
int rtnl_dump(struct rtnl *r, struct rtnl_msg *m, rtnl_dump_cb cb, void *data)
    __attribute__((warn_unused_result));

/* ifindex of the link called name, or -errno (-ENODEV). */
int rtnl_link_index(struct rtnl *r, const char *name) __attribute__((warn_unused_result));

/* ---- netns.c: the network namespace, veth pair, addresses, routes ---- */

/* IPv6 /48 the per-sandbox /64s are cut from (ULA, "cordn" in hex). */
#define NETNS_V6_PREFIX_0 0xfd63u
#define NETNS_V6_PREFIX_1 0x6f72u
#define NETNS_V6_PREFIX_2 0x646eu
#define NETNS_CHILD_IFNAME "eth0"

/* A prefix in use on the host (from its routing tables). */
struct netns_prefix {
    int family;
    uint8_t addr[16];
    uint8_t len;
};

struct netns_slot {
    uint32_t index;               /* slot number inside the pool */
    struct in_addr host4, child4; /* x.x.x.1/30 and x.x.x.2/30 of the slot */
    struct in6_addr host6, child6;
    char host_ifname[IFNAMSIZ];   /* "cdn<index>h" */
};

/* Address plan of slot `index` of the pool (pool/pool_prefix, /30 slots).
 * Returns 0, or -ERANGE when the pool has no such slot. Pure. */
int netns_slot_plan(struct in_addr pool, uint8_t pool_prefix, uint32_t index,
                    struct netns_slot *out) __attribute__((warn_unused_result));
/* Number of /30 slots in a pool (0 for an invalid prefix). */
uint32_t netns_pool_slots(uint8_t pool_prefix);
/* True when none of the host prefixes overlaps the slot's /30 or /64
 * (default routes are ignored: they do not make an address ambiguous). */
bool netns_slot_free(const struct netns_slot *s, const struct netns_prefix *host, size_t n);

struct netns {
    int host_fd;        /* our original network namespace */
    int child_fd;       /* the sandbox's network namespace */
    int host_ifindex;
    int child_ifindex;  /* eth0 inside */
    struct netns_slot slot;
    struct rtnl host_rtnl, child_rtnl;
    bool veth_made;
};

/* Creates the sandbox network namespace (held only by ns->child_fd and
 * later by the sandbox's processes; never bind-mounted), a veth pair with
 * one end moved into it as eth0, the IPv4 /30 of a free slot on both ends,
 * and brings lo and both ends up. IPv6 link-local generation is disabled.
 * No default route yet (see netns_route_out). Picks the first slot whose
 * host interface name is free and that overlaps no host route; concurrent
 * sandboxes never collide because claiming the name is atomic.
 * Returns 0 or -errno; on failure nothing is left (fds closed, veth gone). */
int netns_create(struct in_addr pool, uint8_t pool_prefix, struct netns *ns, char *err,
                 size_t errcap) __attribute__((warn_unused_result));
/* Adds the IPv6 /64 of the slot and default routes (v4 and v6) via the
 * supervisor side, so that anything the fence does not allow reaches the
 * fence (and is refused and reported). Only called when a fence is in
 * place: without one the namespace keeps no route beyond its /30.
 * Returns 0 or -errno. */
int netns_route_out(struct netns *ns) __attribute__((warn_unused_result));
/* Closes our references; the kernel then destroys the namespace, the veth
 * pair and everything in it asynchronously (as after a SIGKILL).
 * Idempotent. */
void netns_destroy(struct netns *ns);

/* Moves the calling thread into the namespace fd (setns). Returns 0 or -errno. */
int netns_enter(int fd) __attribute__((warn_unused_result));

/* ---- fence.c: the nftables fence inside the sandbox namespace ---- */

enum fence_mode {
    FENCE_OFF,        /* no fence: isolation only (no route out) */
    FENCE_REJECT,     /* refuse at once, no bypass events */
    FENCE_MONITORED,  /* log to NFLOG; the monitor identifies and refuses */
};

struct fence_opts {
    struct in_addr proxy4;
    uint16_t proxy_port;
    uint16_t nflog_group;
    bool monitored;
    /* Transparent capture (capture_port 0 = off): TCP to capture_net/
     * capture_prefix (the policy DNS's synthetic range) is redirected to
     * 127.0.0.1:capture_port inside the namespace. */
    struct in_addr capture_net;
    uint8_t capture_prefix;
    uint16_t capture_port;
};

#define FENCE_TABLE "cordon"
#define FENCE_NFLOG_GROUP 7
/* NFLOG prefixes: "held" = dropped, the monitor must answer; "refused" =
 * the kernel already refused it (other protocols, or the flow set is full). */
#define FENCE_PREFIX_HELD "held"
#define FENCE_PREFIX_REFUSED "refused"

/* ---- nftmsg.c: an nf_tables transaction as netlink messages ---- */

struct nftmsg {
    char *buf;
    size_t cap, len;
    uint32_t seq;               /* the next message's sequence number */
    struct nlmsghdr *cur;       /* the message being built */
    struct nlattr *exprs;       /* its NFTA_RULE_EXPRESSIONS nest */
    int err;                    /* -ENOSPC once buf is full */
};
struct nftmsg_set {
    const char *table, *name;
    uint32_t id, flags, key_type, key_len, size;
    uint64_t timeout_ms;
    const void *udata; /* nft's NFTA_SET_USERDATA, for `nft list` */
    size_t udata_len;
};
/* Starts a batch in buf (BATCH_BEGIN). Each call below appends one message
 * (or one expression of the rule begun); running out of room sets err. */
void nftmsg_begin(struct nftmsg *m, void *buf, size_t cap);
void nftmsg_table(struct nftmsg *m, uint8_t family, const char *name);
/* type NULL: a regular chain; else a base chain on hooknum, policy accept. */
void nftmsg_chain(struct nftmsg *m, uint8_t family, const char *table, const char *name,
                  const char *type, uint32_t hooknum, int32_t prio);
void nftmsg_set(struct nftmsg *m, uint8_t family, const struct nftmsg_set *s);
/* Elements of one-byte keys. */
void nftmsg_elems(struct nftmsg *m, uint8_t family, const char *table, const char *set,
                  uint32_t set_id, const uint8_t *keys, size_t n);
void nftmsg_rule_begin(struct nftmsg *m, uint8_t family, const char *table, const char *chain);
void nftmsg_rule_end(struct nftmsg *m);
void nftmsg_meta(struct nftmsg *m, uint32_t key, uint32_t dreg);
void nftmsg_cmp(struct nftmsg *m, uint32_t sreg, uint32_t op, const void *v, size_t len);
void nftmsg_payload(struct nftmsg *m, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg);
void nftmsg_bitwise(struct nftmsg *m, uint32_t reg, const void *mask, const void *xor, size_t len);
void nftmsg_verdict(struct nftmsg *m, int32_t code, const char *chain);
void nftmsg_immediate(struct nftmsg *m, uint32_t dreg, const void *v, size_t len);
void nftmsg_redir(struct nftmsg *m, uint32_t proto_reg, uint32_t flags);
void nftmsg_fib(struct nftmsg *m, uint32_t flags, uint32_t result, uint32_t dreg);
void nftmsg_ct(struct nftmsg *m, uint32_t key, uint32_t dreg);
void nftmsg_log(struct nftmsg *m, const char *prefix, uint16_t group);
void nftmsg_reject(struct nftmsg *m, uint32_t type, uint8_t code);
void nftmsg_lookup(struct nftmsg *m, uint32_t sreg, const char *set, uint32_t set_id);
void nftmsg_dynset_update(struct nftmsg *m, uint32_t sreg_key, const char *set, uint32_t set_id);
/* Appends BATCH_END. 0, or the batch's err. */
int nftmsg_end(struct nftmsg *m) __attribute__((warn_unused_result));
/* The answers to a batch in buf[0..len) (netlink messages from the kernel):
 * 1 when the ack of message `last` is there, 0 when not yet, -errno for
 * the first error (*bad_seq = the refused message's sequence number) or
 * -EBADMSG for a malformed answer. Pure. */
int nftmsg_acks(const void *buf, size_t len, uint32_t last, uint32_t *bad_seq)
    __attribute__((warn_unused_result));
/* Sends the batch to nf_tables in the network namespace netns_fd and waits
 * for its acks. 0 when the kernel applied it; else -errno, *bad_seq = the
 * sequence number of the message it refused (0 if none). */
int nftmsg_send(struct nftmsg *m, int netns_fd, uint32_t *bad_seq)
    __attribute__((warn_unused_result));

/* Builds the fence's batch (the rules fence_ruleset renders) in m. */
int fence_batch(const struct fence_opts *o, struct nftmsg *m) __attribute__((warn_unused_result));

/* Renders the ruleset (one nft batch) into buf. Returns the length, or
 * -ENOSPC when cap is too small. Pure. */
int fence_ruleset(const struct fence_opts *o, char *buf, size_t cap)
    __attribute__((warn_unused_result));
/* Loads the ruleset inside the namespace child_netns_fd in one transaction
 * (fence_batch, one netlink transaction). Returns 0 or -errno; err says
 * which part the kernel refused. */
int fence_install(int child_netns_fd, const struct fence_opts *o, char *err, size_t errcap)
    __attribute__((warn_unused_result));
const char *fence_mode_name(enum fence_mode m);

/* ---- refuse.c: answers a fenced packet the way the kernel would ---- */

/* The parts of a logged packet the monitor needs. Pure parsing. */
struct pkt_info {
    int family;                   /* AF_INET / AF_INET6 */
    uint8_t proto;                /* IPPROTO_TCP, IPPROTO_UDP, other */
    uint8_t src[16], dst[16];
    uint16_t sport, dport;        /* host order; 0 when not TCP/UDP */
    uint32_t tcp_seq, tcp_ack;    /* host order */
    uint8_t tcp_flags;
    size_t l3_len;                /* IP header length (incl. v6 extension headers) */
    size_t l4_payload;            /* bytes after the TCP/UDP header */
};

/* Parses an IPv4/IPv6 packet as logged by NFLOG. Returns 0 or -EINVAL. */
int pkt_parse(const uint8_t *p, size_t len, struct pkt_info *out)
    __attribute__((warn_unused_result));

/* Builds the refusal for a dropped packet: a TCP RST|ACK for TCP (RFC 9293
 * §3.10.7.1), an ICMP/ICMPv6 port unreachable quoting it for UDP (RFC 792,
 * RFC 4443 §3.1). Addresses are swapped so it looks like the destination
 * answered. Returns the packet length, -ENOSPC, or -EPROTONOSUPPORT for
 * packets that get no answer. Pure. */
int refuse_build(const uint8_t *pkt, size_t len, const struct pkt_info *pi, uint8_t *out,
                 size_t cap) __attribute__((warn_unused_result));
/* Internet checksum (RFC 1071) helpers, exposed for tests. */
uint16_t refuse_csum(const void *data, size_t len, uint32_t sum);

/* ---- sockowner.c: which process of the sandbox sent a packet ---- */

#define SOCKOWNER_MAX_ANCESTORS 8

struct sockowner {
    pid_t pid;          /* host pid, 0 when unknown */
    pid_t ns_pid;       /* the pid as seen inside the sandbox */
    char exe[256];
    size_t n_ancestors;
    pid_t ancestor_pids[SOCKOWNER_MAX_ANCESTORS];
    char ancestors[SOCKOWNER_MAX_ANCESTORS][256];
};

struct sockowner_ctx {
    int diag_fd;        /* NETLINK_SOCK_DIAG socket inside the sandbox netns */
    int proc_fd;        /* fd of /proc (the host's) */
    unsigned long pidns_ino; /* inode of the sandbox's PID namespace (0 = unknown yet) */
    pid_t init_pid;     /* host pid of the sandbox's init (ancestors stop there) */
};

/* Finds the socket that sent the packet (TCP in any state incl. SYN_SENT,
 * UDP connected or bound) in the sandbox namespace and the process holding
 * it. Returns 0 with *out filled, -ENOENT when no socket or process
 * matches, other -errno on failure. */
int sockowner_find(const struct sockowner_ctx *c, const struct pkt_info *pi,
                   struct sockowner *out) __attribute__((warn_unused_result));

/* ---- bypass.c: the bypass monitor (NFLOG) ---- */

struct bypass;

struct bypass_opts {
    int child_netns_fd;
    uint16_t group;
    const char *sandbox_name;
    const char *proxy_url;       /* for the hints */
    uint32_t dedup_window_ms;    /* identical events within it are counted */
};

/* Opens the NFLOG group and the sockets the monitor needs, inside the
 * sandbox namespace (the calling thread enters it and comes back). Returns
 * 0 or -errno (e.g. -EPROTONOSUPPORT without nfnetlink_log). */
int bypass_open(const struct bypass_opts *o, struct bypass **out, char *err, size_t errcap)
    __attribute__((warn_unused_result));
/* Starts reading on the loop. init_pid: host pid of the sandbox's init. */
int bypass_attach(struct bypass *b, struct loop *l, pid_t init_pid)
    __attribute__((warn_unused_result));
/* Emits the pending repeat counts and frees everything. NULL is fine. */
void bypass_close(struct bypass *b);

/* Hint for an agent, by protocol and port. Returns a static string. */
const char *bypass_hint(uint8_t proto, uint16_t dport);

/* Repeat counting: the first event of a key is always emitted; identical
 * ones within the window only count. Pure, bounded (cap entries; when full
 * the oldest entry is flushed). */
struct bypass_dedup_key {
    uint8_t proto;
    uint8_t family;
    uint16_t dport;
    uint8_t dst[16];
    pid_t pid;
    char exe[256];
};
struct bypass_dedup_entry {
    struct bypass_dedup_key key;
    uint64_t first_ms;
    uint32_t repeats;    /* identical events suppressed since the last emit */
    bool used;
};
struct bypass_dedup {
    struct bypass_dedup_entry *e;
    size_t cap;
    uint32_t window_ms;
};
/* Returns true when the event must be emitted now (first of its key in the
 * window); false when it was counted. */
bool bypass_dedup_hit(struct bypass_dedup *d, const struct bypass_dedup_key *k, uint64_t now_ms,
                      struct bypass_dedup_entry *evicted, bool *did_evict);
/* Calls cb for every entry whose window ended by now_ms and had repeats,
 * then frees those slots (and expired ones without repeats). */
typedef void (*bypass_dedup_cb)(const struct bypass_dedup_entry *e, void *data);
void bypass_dedup_expire(struct bypass_dedup *d, uint64_t now_ms, bool all, bypass_dedup_cb cb,
                         void *data);

/* ---- landlock.c: the filesystem policy ---- */

#define LANDLOCK_MAX_ABI 6

struct landlock_prep {
    int ruleset_fd;     /* -1: nothing to apply */
    bool hard;
    const struct policy_fs *fs; /* its paths are added by landlock_finish */
    const char *workdir;        /* added read-write too, or NULL */
    size_t n_listed;
    int abi;            /* kernel ABI, 0 = no Landlock */
    int used_abi;       /* min(abi, LANDLOCK_MAX_ABI) */
    unsigned n_rules;
    unsigned n_skipped;
};

/* Rights for one path (pure): read_only or read_write, directory or file,
 * limited to what the ABI handles. */
uint64_t landlock_rights(int abi, bool read_write, bool is_dir);
uint64_t landlock_handled(int abi);

/* Creates the ruleset (its paths are added by landlock_finish). best_effort: missing paths are skipped with a warning, no
 * Landlock in the kernel is a warning; hard_requirement: either is an
 * error. An empty ruleset is never applied: paths listed but none usable
 * is an error in both modes. No paths listed at all = no Landlock (warned).
 * Returns 0 or -errno (err says why). */
int landlock_prepare(const struct policy_fs *fs, const char *workdir, bool hard,
                     struct landlock_prep *out, char *err, size_t errcap)
    __attribute__((warn_unused_result));
/* Adds every listed path and the workdir, opened as root (root-only
 * directories work) inside the sandbox's tree (its new root: private
 * /tmp, /dev and /proc are not the host's inodes), and extra_ro (NULL-terminated, may be NULL: read-only paths
 * cordon itself provides, e.g. the trust bundle's directory), all under
 * root = "/proc/<init pid>/root". Then refuses an empty ruleset and logs
 * the ABI in use. Returns 0 or -errno (err says why). */
int landlock_finish(struct landlock_prep *p, const char *root, const char *const *extra_ro,
                    char *err, size_t errcap) __attribute__((warn_unused_result));
/* In the child, after no_new_privs: restricts itself. Async-signal-safe.
 * Returns 0 or -errno. */
int landlock_apply(const struct landlock_prep *p);
void landlock_prep_close(struct landlock_prep *p);

/* ---- seccomp.c: the syscall filter ---- */

struct sysfilter {
    struct sock_filter *insns;
    unsigned short len;
    bool notify; /* refusals go to a listener (refusals.c) instead of EPERM */
};

/* One documented entry of the filter (doc/sandbox.md mirrors this list). */
struct sysfilter_rule {
    const char *syscall;
    const char *why;
};
/* The syscalls refused outright (EPERM; clone3 ENOSYS). */
const struct sysfilter_rule *sysfilter_rules(size_t *n);

/* Builds the BPF program with libseccomp (in the supervisor, before any
 * fork). notify: refusals (and signals to a positive pid) go to the
 * filter's listener (SECCOMP_RET_USER_NOTIF) so that they can be counted;
 * else they fail with EPERM in the kernel, uncounted. Returns 0 or -errno. */
int sysfilter_build(struct sysfilter *out, bool notify) __attribute__((warn_unused_result));
/* Whether the kernel has SECCOMP_RET_USER_NOTIF. */
bool sysfilter_notify_supported(void);
/* Installs it in the calling process (needs no_new_privs). With notify,
 * *listener is the new listener fd, else -1. Async-signal-safe. Returns 0
 * or -errno. */
int sysfilter_apply(const struct sysfilter *f, int *listener);
void sysfilter_free(struct sysfilter *f);

/* ---- refusals.c: counts of what seccomp and the signal boundary refused ---- */

struct refusals;
/* counting: the filter was built with notify. *child_sock (CLOEXEC) goes to
 * the command's process, which sends its listener over it
 * (refusals_send_listener); the supervisor closes its copy once the
 * command runs. Returns 0 or -errno. */
int refusals_new(const char *sandbox_name, bool counting, struct refusals **out,
                 int *child_sock) __attribute__((warn_unused_result));
/* In the command's process: async-signal-safe. Returns 0 or -errno. */
int refusals_send_listener(int sock, int listener);
/* Starts receiving the listener and its notifications on l. */
int refusals_attach(struct refusals *r, struct loop *l, pid_t init_pid)
    __attribute__((warn_unused_result));
/* Adds the "refusals" object (counts, or null with the reason) to the
 * sandbox_exit event. */
void refusals_summary(const struct refusals *r, struct json_t *exit_event);
/* Stops listening (before the loop is freed); the counts stay. */
void refusals_detach(struct refusals *r);
void refusals_free(struct refusals *r);

/* ---- privdrop.c: the unprivileged identity of the command ---- */

struct privdrop {
    uid_t uid;
    gid_t gid;
    char user[64];
    char home[256];     /* "" when the user's home does not exist */
    int cap_last;       /* /proc/sys/kernel/cap_last_cap */
};

/* Resolves user/group names (NULL user = SANDBOX_DEFAULT_USER, created with
 * useradd when missing, else SANDBOX_FALLBACK_USER with a warning; NULL
 * group = the user's primary group). Refuses uid 0 and gid 0. Returns 0 or
 * -errno (err says why). */
int privdrop_resolve(const char *user, const char *group, struct privdrop *out, char *err,
                     size_t errcap) __attribute__((warn_unused_result));
/* In the child: empties the capability bounding set, clears supplementary
 * groups, sets real/effective/saved gid and uid, clears every capability
 * set, sets no_new_privs, and verifies. Async-signal-safe. Returns 0 or
 * -errno. */
int privdrop_apply(const struct privdrop *p);

/* ---- childenv.c: the command's environment ---- */

struct childenv {
    char **envp;        /* NULL-terminated, owned */
    size_t n, cap;
};

struct childenv_opts {
    const char *proxy_url;      /* "http://10.200.0.1:3128" */
    const char *user;           /* USER / LOGNAME */
    const char *home;           /* HOME ("" or NULL = keep none) */
    const char *sandbox_name;   /* CORDON_SANDBOX */
    const char *ca_bundle;      /* path for the TLS trust variables, or NULL */
    /* Environment allowlist: when clear is set, only CHILDENV_BASE_VARS and
     * the names in keep (NULL-terminated; "PREFIX*" matches a prefix) pass
     * from base; keep alone implies clear. */
    const char *const *keep;
    bool clear;
    const char *java_truststore; /* PKCS12 truststore for JAVA_TOOL_OPTIONS, or NULL */
};

/* Copies base (may be NULL), dropping every proxy variable (any case) and
 * the supervisor's secrets, then sets HTTP(S)_PROXY, ALL_PROXY, NO_PROXY in
 * upper and lower case, NODE_USE_ENV_PROXY=1, USER, LOGNAME, HOME,
 * CORDON_SANDBOX, and the TLS trust variables (tls.h TLS_BUNDLE_ENV_VARS:
 * SSL_CERT_FILE, REQUESTS_CA_BUNDLE, ...) when ca_bundle is set.
 * Returns 0 or -ENOMEM. */
int childenv_build(char *const *base, const struct childenv_opts *o, struct childenv *out)
    __attribute__((warn_unused_result));
/* The value of name, or NULL. */
const char *childenv_get(const struct childenv *e, const char *name);
void childenv_free(struct childenv *e);

/* ---- trust.c: the TLS trust bundle the command sees ---- */

#define SANDBOX_RUN_DIR "/run/cordon"          /* a private tmpfs inside the sandbox */
#define SANDBOX_CA_FILE SANDBOX_RUN_DIR "/ca.pem"
#define SANDBOX_BUNDLE_FILE SANDBOX_RUN_DIR "/ca-bundle.pem"
#define SANDBOX_TRUSTSTORE_FILE SANDBOX_RUN_DIR "/truststore.p12" /* Java */

/* Writes out (0644): the first non-empty system CA bundle, then the PEM
 * file ca_pem (the proxy's CA certificate). Returns 0 or -errno. */
int trust_bundle_write(const char *ca_pem, const char *out, char *err, size_t errcap)
    __attribute__((warn_unused_result));
/* Copies src to out (0644, created or truncated). Returns 0 or -errno. */
int trust_file_copy(const char *src, const char *out, char *err, size_t errcap)
    __attribute__((warn_unused_result));

/* ---- home.c: the private HOME ---- */

/* The NSS database trusting the sandbox CA, built by certutil in a
 * root-only directory while the sandbox is being set up. */
struct home_nss {
    pid_t pid;    /* certutil still to be waited for, or 0 */
    int rc;       /* its result once waited for */
    char dir[48]; /* where it builds the database, "" when none */
};
/* Starts certutil (when installed; else n->dir stays "") building a
 * database that trusts ca_pem (a host path) in a new root-only directory
 * under scratch (a root-owned or sticky directory, preferably a tmpfs:
 * certutil syncs the database ~20 times). Returns 0 or -errno. */
int home_nss_start(struct home_nss *n, const char *ca_pem, const char *scratch)
    __attribute__((warn_unused_result));
/* Waits for certutil if it runs and removes its directory (idempotent). */
void home_nss_discard(struct home_nss *n);
/* Hands SANDBOX_HOME (inside init_pid's root) to uid:gid (0700) and, when
 * nss holds a database (home_nss_start), copies it to .pki/nssdb there
 * (a failure there is a warning). Returns 0 or -errno with err set. */
int home_install(pid_t init_pid, uid_t uid, gid_t gid, struct home_nss *nss, char *err,
                 size_t cap) __attribute__((warn_unused_result));

/* ---- mountns.c: the sandbox's filesystem view ---- */

enum mnt_kind { MNT_BIND, MNT_DIR, MNT_SYMLINK, MNT_TMPFS, MNT_PROC, MNT_DEV };

struct mnt_op {
    enum mnt_kind kind;
    bool read_only;     /* BIND */
    bool is_dir;        /* BIND: the source is a directory */
    char *dst;          /* absolute path inside the sandbox */
    char *src;          /* BIND: host path; SYMLINK: target; TMPFS: mount options */
};

struct mountplan {
    struct mnt_op *ops; /* sorted by dst: parents before children */
    size_t n, cap;
    bool enabled;       /* false: no paths listed, the host's tree stays */
    bool host_pts;      /* the command's pty is the host's: bind its devpts */
};

/* Computes the new root from the filesystem policy and the (canonical)
 * workdir: see the top of mountns.c. Returns 0 or -ENOMEM. */
int mountplan_build(const struct policy_fs *fs, const char *workdir, struct mountplan *out)
    __attribute__((warn_unused_result));
/* In the sandbox's init (own mount namespace, root): mounts a tmpfs on
 * base (an existing empty directory), builds the tree in it, pivots into
 * it and detaches the host's root. System calls only. Returns 0 or
 * -errno; *failed = index of the op that failed, or (size_t)-1. */
int mountplan_apply(const struct mountplan *p, const char *base, size_t *failed);
void mountplan_free(struct mountplan *p);

/* ---- cgroup.c: see sandbox/cgroup.h ---- */

/* ---- init.c: pid 1 of the sandbox, and the command's last steps ---- */

/* Everything the child side needs, prepared before the clone so that the
 * child only makes system calls. */
struct init_plan {
    int child_netns_fd;
    int sync_fd;         /* read end: one byte = go; EOF = abort */
    int sync_wfd;        /* the supervisor's write end (init closes its copy) */
    int ready_fd;        /* write end: one byte once /proc is mounted */
    int status_fd;       /* write end: the command's wait status (int) */
    int errpipe_fd;      /* write end (CLOEXEC): a failing step reports here */
    int tty_slave;       /* -1 = no pty */
    int tty_master;      /* -1 = no pty; closed by init */
    const char *workdir;
    const char *run_dir;  /* the new root is built on this empty directory */
    const struct mountplan *mounts;
    const char *hostname; /* of the sandbox's UTS namespace */
    const int *cgroup_fds; /* cgroup.procs of the sandbox's cgroups (init joins) */
    size_t n_cgroup_fds;
    /* With run_dir: written to run_dir/resolv.conf and bind-mounted over
     * /etc/resolv.conf in the sandbox's mount namespace (the host's file is
     * untouched). NULL = the host's resolv.conf is seen as it is. */
    const char *resolv_conf;
    const char *exe_path; /* resolved command path, NULL = search PATH in child */
    char *const *argv;
    char *const *envp;
    const char *path_env; /* PATH to search when exe_path is NULL */
    const struct privdrop *priv;
    const struct landlock_prep *landlock;
    const struct sysfilter *filter;
    int refusals_sock;    /* -1, or where the command sends its seccomp listener */
};

/* What failed in the child, written to errpipe as two ints {step, errno}. */
enum init_step {
    INIT_STEP_NONE,
    INIT_STEP_NETNS,
    INIT_STEP_MOUNT,
    INIT_STEP_ROOT,
    INIT_STEP_CGROUP,
    INIT_STEP_UTS,
    INIT_STEP_FORK,
    INIT_STEP_SESSION,
    INIT_STEP_TTY,
    INIT_STEP_CHDIR,
    INIT_STEP_PRIVDROP,
    INIT_STEP_LANDLOCK,
    INIT_STEP_SECCOMP,
    INIT_STEP_EXEC,
};
const char *init_step_name(enum init_step s);

/* Clones pid 1 of the sandbox (new PID, mount, IPC and UTS namespaces,
 * joined to the sandbox network namespace and its cgroups, then a new
 * cgroup namespace rooted there; the new root of mountns.c). It dies with the supervisor
 * (PR_SET_PDEATHSIG), writes one byte to ready_fd once its root is
 * built, and waits for the go byte on sync_fd, then forks the
 * command, forwards the signals it receives to it, reaps everything, and
 * exits after writing the command's wait status to status_fd (every other
 * process of the sandbox dies with it). Returns the host pid or -errno. */
pid_t init_spawn(const struct init_plan *p) __attribute__((warn_unused_result));

/* Signals init forwards to the command. */
extern const int init_forward_signals[];
extern const size_t init_n_forward_signals;

/* ---- tty.c: the interactive terminal ---- */

struct tty_relay;

/* Opens a pty for the command sized like fd 0's terminal, and puts our
 * terminal in raw mode. Returns 0 or -errno; *slave is the fd to give the
 * command. */
int tty_open(struct tty_relay **out, int *slave) __attribute__((warn_unused_result));
/* The pty's master fd (init closes its inherited copy). */
int tty_master_fd(const struct tty_relay *t);
/* Relays stdin→pty and pty→stdout on the loop (bounded buffers). */
int tty_attach(struct tty_relay *t, struct loop *l) __attribute__((warn_unused_result));
/* Copies the terminal size to the pty (on SIGWINCH). */
void tty_resize(struct tty_relay *t);
/* Writes out what the command printed last, restores the terminal, frees. */
void tty_close(struct tty_relay *t);

#endif
