/* proxy/addrclass: classification of destination addresses (the address fence).
 *
 * ALWAYS_BLOCKED: loopback (127/8, ::1), link-local (169.254/16 incl.
 *   169.254.169.254, fe80::/10), unspecified (0.0.0.0/8, ::), multicast
 *   (224/4, ff00::/8), broadcast (255.255.255.255), reserved 240/4.
 * PRIVATE: RFC 1918 (10/8, 172.16/12, 192.168/16), CGNAT 100.64/10,
 *   fc00::/7, and other special-use ranges (192.0.0/24, 198.18/15, TEST-NETs,
 *   fec0::/10 site-local, 64:ff9b::/96 NAT64, 2002::/16 6to4): allowed only when an
 *   endpoint's allowed_ips covers them.
 * PUBLIC: everything else.
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) is classified as its IPv4 address. */
#ifndef CORDON_PROXY_ADDRCLASS_H
#define CORDON_PROXY_ADDRCLASS_H

#include <stdbool.h>
#include <sys/socket.h>

enum addr_class { ADDR_PUBLIC, ADDR_PRIVATE, ADDR_ALWAYS_BLOCKED };

enum addr_class addr_classify(const struct sockaddr *sa);
/* Short name of the range, e.g. "loopback", "link-local", "rfc1918", for
 * deny details. */
const char *addr_class_range_name(const struct sockaddr *sa);

#endif
