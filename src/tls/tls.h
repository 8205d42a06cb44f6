/* tls: the per-sandbox CA, leaf minting and cache, the client-facing TLS
 * server context, the upstream TLS client context, non-blocking TLS I/O for
 * the epoll relay, and the tunnel peek (protocol classifier, SNI parser).
 *
 * Threading: a struct tls_ca and a struct tls_client are shared by all worker
 * threads (their caches are mutex-protected). A struct tls_conn belongs to
 * the one loop thread that drives it. SSL_CTXs built here may be used from
 * any thread. The CA must outlive every SSL_CTX built from it.
 *
 * Keys: the CA private key lives in memory of the proxy (generated per
 * sandbox, or loaded from a root-only directory by tls_ca_load); it is never
 * written anywhere the sandboxed process can read. See doc/tls.md.
 *
 * Error messages: functions that take (err, errlen) write one line saying
 * what failed, where, and what to do; err may be NULL. */
#ifndef CORDON_TLS_TLS_H
#define CORDON_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

/* ---- reasons (constants compared by identity) ---- */

/* Upstream certificate did not verify (untrusted, expired, wrong name...). */
extern const char TLS_REASON_UPSTREAM_INVALID[];   /* "upstream_tls_invalid" */
/* Upstream TLS handshake failed for another reason (protocol, EOF, alert). */
extern const char TLS_REASON_UPSTREAM_HANDSHAKE[]; /* "upstream_tls_handshake" */
/* Client-side handshake failed (client rejected our leaf, bad hello...). */
extern const char TLS_REASON_CLIENT_HANDSHAKE[];   /* "client_tls_handshake" */

/* ---- the CA ---- */

struct tls_ca;

#define TLS_CA_CERT_FILE "ca.pem"
#define TLS_CA_KEY_FILE "ca.key"
/* Where `cordon ca init` puts the CA when no --dir is given (root, 0700). */
#define TLS_CA_DEFAULT_DIR "/var/lib/cordon/ca"

#define TLS_LEAF_CACHE_DEFAULT 1024u
#define TLS_LEAF_VALIDITY_DEFAULT (7u * 24 * 3600) /* seconds */
#define TLS_CA_VALIDITY_DEFAULT (365u * 24 * 3600) /* seconds */
#define TLS_BACKDATE_S 3600                         /* clock-skew allowance */

struct tls_ca_opts {
    size_t leaf_cache_cap;     /* 0 = TLS_LEAF_CACHE_DEFAULT; LRU, one eviction per insert */
    uint32_t leaf_validity_s;  /* 0 = TLS_LEAF_VALIDITY_DEFAULT (clamped to the CA's) */
    uint32_t ca_validity_s;    /* tls_ca_generate only; 0 = TLS_CA_VALIDITY_DEFAULT */
};

/* Creates a fresh in-memory CA: ECDSA P-256, subject
 * "CN=cordon sandbox CA <16 hex>, O=cordon", random 127-bit serial,
 * basicConstraints critical CA:TRUE pathlen:0, keyUsage critical
 * keyCertSign|cRLSign, SKI, valid from now-1h for ca_validity_s. Also
 * generates the CA's one shared leaf key. opts may be NULL.
 * Returns 0 or -errno (-ENOMEM, -EIO for an OpenSSL failure). */
int tls_ca_generate(const struct tls_ca_opts *opts, struct tls_ca **out, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/* Loads dir/ca.pem and dir/ca.key. Refuses (with a message naming the file
 * and the fix): missing/unparsable files (-ENOENT/-EINVAL), a cert that is
 * not a CA (-EINVAL), a key that does not match the cert (-EINVAL), an
 * expired or not-yet-valid CA (-EKEYEXPIRED), a key file that is not a
 * regular file owned by the caller's euid with no group/other permission
 * bits (-EPERM). opts may be NULL. */
int tls_ca_load(const char *dir, const struct tls_ca_opts *opts, struct tls_ca **out,
                char *err, size_t errlen) __attribute__((warn_unused_result));

/* Writes dir/ca.key (0600) and dir/ca.pem (0644), creating dir (0700) if it
 * is missing. Without force, refuses with -EEXIST when either file exists.
 * Files are written to temporaries and renamed, so a reader sees either the
 * old or the new file. Returns 0 or -errno. */
int tls_ca_save(const struct tls_ca *ca, const char *dir, bool force, char *err,
                size_t errlen) __attribute__((warn_unused_result));

/* Frees the CA, its leaf key and cache. NULL is fine. No SSL_CTX built from
 * it may be used afterwards. */
void tls_ca_free(struct tls_ca *ca);

/* The CA certificate (borrowed; valid while ca lives). */
X509 *tls_ca_cert(const struct tls_ca *ca);

/* ---- certificate facts (for `cordon ca show` and logs) ---- */

struct tls_cert_info {
    char subject[256];     /* one line, "CN = ..., O = ..." */
    char fingerprint[96];  /* SHA-256, "AB:CD:..." (95 chars) */
    char serial[64];       /* hex */
    char not_before[32];   /* "YYYY-MM-DDTHH:MM:SSZ" */
    char not_after[32];
    bool is_ca;
};
/* Fills info from cert. Returns 0 or -EINVAL. */
int tls_cert_info(X509 *cert, struct tls_cert_info *info) __attribute__((warn_unused_result));
/* Reads one PEM certificate from path. Returns 0 or -errno (message in err). */
int tls_cert_read(const char *path, X509 **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* PEM text of cert into a malloc'ed NUL-terminated string (caller frees).
 * Returns 0 or -ENOMEM. */
int tls_cert_pem(X509 *cert, char **out) __attribute__((warn_unused_result));

/* ---- trust bundle for the sandboxed child ---- */

/* Environment variables a child should get pointing at the bundle written
 * by tls_bundle_write (NULL-terminated). NODE_EXTRA_CA_CERTS is included:
 * Node adds these to its built-in roots, so the full bundle is harmless. */
extern const char *const TLS_BUNDLE_ENV_VARS[];

/* Writes out (0644, never through a symlink): every certificate of the PEM
 * file bundle_pem as a Java PKCS12 truststore (trusted-certificate entries,
 * password "changeit"). Returns 0 or -errno with err saying why. */
int tls_truststore_write(const char *bundle_pem, const char *out, char *err, size_t errcap)
    __attribute__((warn_unused_result));

/* Writes path (mode 0644, via a temporary + rename): the system CA bundle
 * (the first non-empty of /etc/ssl/certs/ca-certificates.crt,
 * /etc/pki/tls/certs/ca-bundle.crt, /etc/ssl/ca-bundle.pem, /etc/ssl/cert.pem;
 * or system_bundle when not NULL), a newline if it lacks one, then the
 * sandbox CA certificate. A missing system bundle is not an error (the file
 * then holds only the CA). Returns 0 or -errno. Start-up only (blocking I/O). */
int tls_bundle_write(const struct tls_ca *ca, const char *path, const char *system_bundle,
                     char *err, size_t errlen) __attribute__((warn_unused_result));
/* Writes only the CA certificate to path (0644). Returns 0 or -errno. */
int tls_ca_cert_write(const struct tls_ca *ca, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* ---- names ---- */

#define TLS_NAME_MAX 253

/* Canonicalizes a host for a certificate / cache key: IP literals (with or
 * without [brackets]) become their inet_ntop form and *is_ip is set; DNS
 * names are lowercased, one trailing dot is dropped, and they must be 1..253
 * bytes of labels of 1..63 [a-z0-9_-]. Wildcards, zone ids, spaces, control
 * bytes are refused. out needs TLS_NAME_MAX + 1 bytes.
 * Returns 0 or -EINVAL. */
int tls_name_canon(const char *in, size_t len, char *out, size_t cap, bool *is_ip)
    __attribute__((warn_unused_result));

/* ---- leaf certificates ---- */

/* Returns a leaf certificate for name (DNS name or IP literal, canonicalized
 * with tls_name_canon) in *out with one reference the caller drops with
 * X509_free. The leaf: subject CN=name (first 64 bytes), SAN dNSName or
 * iPAddress = the full name, EKU serverAuth, keyUsage digitalSignature,
 * basicConstraints CA:FALSE, AKI = the CA's SKI, random serial, valid from
 * now-1h for leaf_validity_s (never past the CA's notAfter), public key =
 * the CA's shared leaf key. Cached in a bounded LRU keyed by the canonical
 * name: a hit moves the entry to the front; an insert into a full cache
 * evicts exactly the least recently used entry; a leaf within a day of its
 * notAfter is re-minted. Minting happens outside the cache lock, so two
 * threads that miss the same name at once may both mint (the first insert
 * wins, the other copy is dropped). Thread-safe.
 * Returns 0, -EINVAL (bad name), -EKEYEXPIRED (the CA has expired),
 * -ENOMEM or -EIO. */
int tls_leaf_get(struct tls_ca *ca, const char *name, X509 **out)
    __attribute__((warn_unused_result));
/* The private key of every leaf of this CA (borrowed). */
EVP_PKEY *tls_leaf_key(const struct tls_ca *ca);

struct tls_leaf_stats {
    uint64_t hits, misses, evictions, mints;
    uint64_t mint_ns_total; /* wall time spent minting, summed */
    size_t size, cap;
};
void tls_leaf_stats(struct tls_ca *ca, struct tls_leaf_stats *out);

/* ---- client-facing server context ---- */

/* Builds the one SSL_CTX that serves every inspected tunnel of this CA:
 * TLS 1.2 and 1.3, ALPN http/1.1 only (a client offering ALPN without
 * http/1.1 gets a no_application_protocol alert; a client offering none gets
 * no ALPN), a servername callback that installs the leaf for the client's
 * SNI (or, without SNI, the connect_host given to tls_server_ssl_new), a
 * bounded server session cache and session tickets. Returns 0 or -errno. */
int tls_server_ctx_new(struct tls_ca *ca, SSL_CTX **out) __attribute__((warn_unused_result));

/* Flags for tls_server_ssl_new. */
#define TLS_SERVER_SNI_MUST_MATCH 0x1u /* refuse an SNI that is not connect_host */

/* Creates a server-side SSL on fd (non-blocking is fine) in accept state.
 * connect_host (may be NULL) is the host the client asked the proxy for
 * (CONNECT target or original destination); it names the leaf when the
 * client sends no SNI. Returns 0 or -errno. */
int tls_server_ssl_new(SSL_CTX *ctx, int fd, const char *connect_host, unsigned flags,
                       SSL **out) __attribute__((warn_unused_result));
/* After the servername callback ran: the canonical name the leaf was minted
 * for (the SNI, or connect_host), or NULL. Borrowed from ssl. */
const char *tls_server_name(SSL *ssl);

/* ---- upstream client context ---- */

struct tls_client;

#define TLS_CLIENT_SESSIONS_DEFAULT 256u

struct tls_client_config {
    const char *extra_ca_file;  /* --upstream-ca: PEM file of extra trust anchors, or NULL */
    size_t session_cache_cap;   /* 0 = TLS_CLIENT_SESSIONS_DEFAULT; LRU keyed by host:port */
    bool no_system_trust;       /* tests: trust only extra_ca_file */
};

/* Builds the upstream TLS client: TLS 1.2+, peer verification against the
 * system trust store (default paths and /etc/ssl/certs/ca-certificates.crt)
 * plus extra_ca_file, ALPN http/1.1, a bounded session cache (one session
 * per host:port, replaced when the server sends a new one). Returns 0,
 * -EINVAL (extra_ca_file unreadable or holds no certificate; see err) or
 * -ENOMEM. */
int tls_client_new(const struct tls_client_config *cfg, struct tls_client **out, char *err,
                   size_t errlen) __attribute__((warn_unused_result));
void tls_client_free(struct tls_client *c);

/* Creates a client SSL on fd in connect state for host:port: SNI = host
 * (not sent for IP literals, RFC 6066 §3), certificate name check against
 * host (DNS, no partial wildcards) or the IP, a cached session for
 * host:port if any. Returns 0, -EINVAL (host not a valid name) or -ENOMEM. */
int tls_client_ssl_new(struct tls_client *c, int fd, const char *host, uint16_t port,
                       SSL **out) __attribute__((warn_unused_result));

struct tls_client_stats {
    uint64_t sessions_stored, sessions_offered, evictions;
    size_t size, cap;
};
void tls_client_stats(struct tls_client *c, struct tls_client_stats *out);

/* ---- non-blocking TLS I/O ---- */

/* Return values of tls_conn_*: >= 0 is progress (see each function),
 * these are "call again when the fd is readable/writable" and "failed". */
#define TLS_WANT_READ (-1)
#define TLS_WANT_WRITE (-2)
#define TLS_ERROR (-3)

/* Embed in the connection; tls_conn_init takes ownership of the SSL. */
struct tls_conn {
    SSL *ssl;
    bool fatal;         /* a fatal error happened; no shutdown will be sent */
    bool eof;           /* the peer closed (see eof_abrupt) */
    bool eof_abrupt;    /* ...without close_notify */
    char err[192];      /* what failed, when TLS_ERROR was returned */
    int alert;          /* the peer's fatal alert (RFC 8446 §6) that failed it, or -1 */
};

void tls_conn_init(struct tls_conn *c, SSL *ssl);
/* SSL_free; safe on an initialized conn whose ssl is NULL. Does not close
 * the fd. */
void tls_conn_free(struct tls_conn *c);
/* For a connection that goes idle: gives back the SSL's record buffers
 * (about 17 KiB each way) when it holds no unread or unsent bytes; they
 * are allocated again by the next read or write. SSL_MODE_RELEASE_BUFFERS
 * alone misses the read buffer when read-ahead left the last record's
 * buffer in place. Returns true when released. NULL is ignored. */
bool tls_conn_release_buffers(struct tls_conn *c);

/* Drives the handshake. Returns 0 when complete, TLS_WANT_READ /
 * TLS_WANT_WRITE (retry when the fd is ready), or TLS_ERROR (c->err says
 * why; for an upstream use tls_conn_failure for a deny reason). Never
 * blocks. */
int tls_conn_handshake(struct tls_conn *c) __attribute__((warn_unused_result));
/* Reads decrypted bytes. Returns > 0 bytes, 0 at EOF (clean close_notify,
 * or c->eof_abrupt when the peer closed TCP without it), TLS_WANT_READ,
 * TLS_WANT_WRITE (a TLS read may need to write; retry the read when
 * writable) or TLS_ERROR. With edge-triggered epoll, keep reading until a
 * TLS_WANT_*: OpenSSL may hold decrypted bytes the fd will not signal. */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len)
    __attribute__((warn_unused_result));
/* Writes; partial writes are allowed and the buffer may move between
 * retries. Returns > 0 bytes taken, TLS_WANT_WRITE, TLS_WANT_READ or
 * TLS_ERROR. len 0 returns 0. */
ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
    __attribute__((warn_unused_result));
/* Sends close_notify (does not wait for the peer's). Returns 0 when sent or
 * nothing is to be sent (after a fatal error), TLS_WANT_WRITE/READ, or
 * TLS_ERROR. */
int tls_conn_shutdown(struct tls_conn *c) __attribute__((warn_unused_result));
/* True when OpenSSL holds bytes already read from the fd. */
bool tls_conn_pending(const struct tls_conn *c);
/* True when the handshake resumed a session (no certificate exchanged). */
bool tls_conn_resumed(const struct tls_conn *c);
/* The negotiated ALPN protocol ("http/1.1") or "" when none. */
const char *tls_conn_alpn(const struct tls_conn *c, char *buf, size_t cap);

/* After tls_conn_handshake returned TLS_ERROR on an upstream connection:
 * the deny reason (TLS_REASON_UPSTREAM_INVALID when certificate
 * verification failed, with detail "certificate verify failed: <X509
 * error string> (depth N, subject ...)"; otherwise
 * TLS_REASON_UPSTREAM_HANDSHAKE with c->err as detail). Never fails. */
const char *tls_conn_failure(const struct tls_conn *c, char *detail, size_t cap);

/* ---- tunnel peek (pure functions on bytes, no OpenSSL) ---- */

enum tls_peek_kind {
    TLS_PEEK_NEED_MORE,    /* not decidable yet; peek more (at most TLS_PEEK_DECIDE bytes) */
    TLS_PEEK_TLS,          /* TLS handshake record carrying a ClientHello */
    TLS_PEEK_HTTP1,        /* method token followed by SP (RFC 9112 §3) */
    TLS_PEEK_H2_PREFACE,   /* "PRI * HTTP/2.0" (RFC 9113 §3.4) */
    TLS_PEEK_OTHER,        /* anything else (SSH banner reply, binary, SSLv2 hello...) */
};
/* Every input of this many bytes or more is decided (never NEED_MORE). */
#define TLS_PEEK_DECIDE 24
/* Longest HTTP method token accepted before SP. */
#define TLS_PEEK_METHOD_MAX 20

/* Classifies the first bytes of a tunnel (as read with MSG_PEEK). */
enum tls_peek_kind tls_peek_classify(const void *buf, size_t len);
const char *tls_peek_kind_name(enum tls_peek_kind k);

/* Extracts the host_name of the server_name extension (RFC 6066 §3) from
 * the start of a TLS stream holding a ClientHello (RFC 8446 §4.1.2; the
 * hello may span several handshake records). Reads through a bounds-checked
 * cursor; never reads past len. On success writes the name (not
 * canonicalized, but checked to be 1..255 bytes of [A-Za-z0-9._-]) NUL-
 * terminated to out. Returns 0, -ENOENT (a complete ClientHello without
 * SNI), -EAGAIN (valid so far but truncated: peek more), -EINVAL
 * (malformed, or a name with other bytes), -ENOSPC (name longer than cap-1),
 * -EMSGSIZE (a ClientHello longer than TLS_HELLO_MAX). */
#define TLS_HELLO_MAX 65536
int tls_sni_parse(const void *buf, size_t len, char *out, size_t cap)
    __attribute__((warn_unused_result));

#endif
