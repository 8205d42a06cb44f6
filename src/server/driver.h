/* server/driver: the sandbox-driver interface.
 *
 * The API layer and the proxy routes know sandboxes only through this
 * interface: what a sandbox is (struct sbx_record), how to start, stop,
 * freeze and find one. A driver owns its state (the local driver keeps it in
 * SQLite; a Kubernetes driver would keep it in Kubernetes objects). Every
 * operation returns 0 or -errno and, on failure, leaves a message for the
 * client in d->err:
 *   -ENOENT  no such sandbox (404)
 *   -EINVAL  the request cannot be honoured as given (400)
 *   -EBUSY   the sandbox is not in a state that allows it (409)
 *   other    the driver failed (500)
 * Loop-thread only. */
#ifndef CORDON_SERVER_DRIVER_H
#define CORDON_SERVER_DRIVER_H

#include <jansson.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

/* OpenSandbox's states, as on the wire. */
enum sbx_state {
    SBX_PENDING,
    SBX_RUNNING,
    SBX_PAUSING,
    SBX_PAUSED,
    SBX_RESUMING,
    SBX_STOPPING,
    SBX_TERMINATED,
    SBX_FAILED,
};
#define SBX_NSTATES 8

const char *sbx_state_name(enum sbx_state st);
/* Case-sensitive wire name -> state. Returns 0 or -EINVAL. */
int sbx_state_parse(const char *s, enum sbx_state *out) __attribute__((warn_unused_result));

#define SBX_ID_LEN 36 /* dashed UUID4 */

/* A validated create request (the API layer checked types and bounds). */
struct sbx_spec {
    const char *image;        /* image.uri */
    const json_t *entrypoint; /* array of strings, may be empty */
    const json_t *env;        /* object: name -> string | null */
    const json_t *metadata;   /* object: name -> string */
    const json_t *limits;     /* resourceLimits object or NULL */
    int64_t timeout_s;        /* 0: no expiry */
    const char *policy_yaml;  /* the sandbox's own policy (server/sbxpolicy), or NULL:
                               * the server's --policy */
    size_t policy_len;
};

/* A copy of a sandbox's state; release with sbx_record_clear(). */
struct sbx_record {
    char id[SBX_ID_LEN + 1];
    enum sbx_state state;
    char reason[64];
    char message[256];
    char image[256];
    int64_t created_ms, expires_ms, transition_ms; /* Unix ms; expires 0 = none */
    json_t *metadata;   /* object (a reference the record owns) */
    json_t *entrypoint; /* array */
};
void sbx_record_clear(struct sbx_record *r);

struct sbx_driver;

/* create: rc 0 and the record once the sandbox runs, or rc < 0 and why. */
typedef void (*sbx_create_cb)(void *data, int rc, const struct sbx_record *rec, const char *why);
/* remove: rc 0 once every process of the sandbox is gone and its state too. */
typedef void (*sbx_done_cb)(void *data, int rc, const char *why);

struct sbx_driver_ops {
    /* Starts a sandbox; cb fires exactly once, never inside this call. On
     * an immediate refusal returns -errno (and cb never fires). */
    int (*create)(struct sbx_driver *d, const struct sbx_spec *spec, sbx_create_cb cb, void *data);
    /* Forgets cb for a create whose requester went away (the sandbox stays). */
    void (*create_cancel)(struct sbx_driver *d, void *data);
    int (*get)(struct sbx_driver *d, const char *id, struct sbx_record *out);
    /* Every sandbox, newest first; *out is an array of *n records (free each
     * with sbx_record_clear, then the array with free). */
    int (*list)(struct sbx_driver *d, struct sbx_record **out, size_t *n);
    /* Kills all processes and drops the state; cb fires once, never inside. */
    int (*remove)(struct sbx_driver *d, const char *id, sbx_done_cb cb, void *data);
    void (*remove_cancel)(struct sbx_driver *d, void *data);
    int (*pause)(struct sbx_driver *d, const char *id);
    int (*resume)(struct sbx_driver *d, const char *id);
    /* New expiry (Unix ms, in the future). -EBUSY for a sandbox without one. */
    int (*renew)(struct sbx_driver *d, const char *id, int64_t expires_ms);
    /* Replaces the metadata object (the API layer applied the merge patch). */
    int (*set_metadata)(struct sbx_driver *d, const char *id, const json_t *metadata);
    /* Where the server connects to reach port in the sandbox (the running
     * sandbox's address), and for execd's port the access token execd
     * requires (X-EXECD-ACCESS-TOKEN; "" otherwise). -EBUSY when it is not
     * running. */
    int (*backend)(struct sbx_driver *d, const char *id, uint16_t port, struct sockaddr_in *out,
                   char *token, size_t cap);
    void (*free)(struct sbx_driver *d);
};

struct sbx_driver {
    const struct sbx_driver_ops *ops;
    char err[512]; /* message for the last failure */
};

#endif
