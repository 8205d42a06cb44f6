/* core/addrclass: classification of destination addresses (the address fence).
 *
 * ALWAYS_BLOCKED: loopback (127/8, ::1), link-local (169.254/16 incl.
 *   169.254.169.254, fe80::/10), unspecified (0.0.0.0/8, ::), multicast
 *   (224/4, ff00::/8), broadcast (255.255.255.255), reserved 240/4.
 * PRIVATE: RFC 1918 (10/8, 172.16/12, 192.168/16), CGNAT 100.64/10,
 *   fc00::/7, and other special-use ranges (192.0.0/24, 198.18/15, TEST-NETs,
 *   fec0::/10 site-local, 64:ff9b::/96 NAT64, 2002::/16 6to4, 2001:db8::/32
 *   documentation, 100::/64 discard, ::/96 IPv4-compatible): allowed only when
 *   an endpoint's allowed_ips covers them.
 * PUBLIC: everything else.
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) is classified as its IPv4 address.
 * IPv6 ranges that embed IPv4 addresses (IPv4-compatible ::a.b.c.d, NAT64
 * 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32 with
 * its server and inverted client address) take the stricter of their own
 * class and the embedded address's: 64:ff9b::127.0.0.1 is loopback.
 *
 * Used by the proxy (every resolved address) and by the policy loader
 * (allowed_ips that can never work are load errors). Pure functions on
 * static tables: thread-safe. */
#ifndef CORDON_CORE_ADDRCLASS_H
#define CORDON_CORE_ADDRCLASS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum addr_class { ADDR_PUBLIC, ADDR_PRIVATE, ADDR_ALWAYS_BLOCKED };

/* Classifies an AF_INET/AF_INET6 sockaddr. Any other family is
 * ADDR_ALWAYS_BLOCKED (fail closed). */
enum addr_class addr_classify(const struct sockaddr *sa);
/* Short name of the range, e.g. "loopback", "link-local", "rfc1918", for
 * deny details; "public" for public addresses, "unknown" for other
 * families. Returns a static string. */
const char *addr_class_range_name(const struct sockaddr *sa);

/* Same as addr_classify() on raw bytes: family AF_INET (4 bytes) or
 * AF_INET6 (16 bytes). range_name (may be NULL) receives the static range
 * name as above. */
enum addr_class addr_classify_raw(int family, const uint8_t *addr, const char **range_name);

/* How a CIDR relates to always-blocked space. */
enum addr_cidr_overlap {
    ADDR_CIDR_CLEAR,   /* shares no address with always-blocked space */
    ADDR_CIDR_PARTIAL, /* some of its addresses are always blocked */
    ADDR_CIDR_BLOCKED, /* every address in it is always blocked: it can never work */
};

/* Classifies family/addr/prefix (prefix 0..32 for AF_INET, 0..128 for
 * AF_INET6; host bits are ignored). IPv4-mapped IPv6 CIDRs (prefix >= 96
 * inside ::ffff:0:0/96) are judged as their IPv4 form. range_name (may be
 * NULL) receives the name of one always-blocked range it touches, or NULL
 * for ADDR_CIDR_CLEAR. An invalid family or prefix returns
 * ADDR_CIDR_BLOCKED. */
enum addr_cidr_overlap addr_cidr_class(int family, const uint8_t *addr, unsigned prefix,
                                       const char **range_name);

#endif
