/* core/parse: checked number and address parsing (no atoi/strtol at call sites). */
#ifndef CORDON_CORE_PARSE_H
#define CORDON_CORE_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Parses exactly len bytes of decimal digits into [min,max].
 * Returns 0, -EINVAL (not a number) or -ERANGE. */
int parse_u32(const char *s, size_t len, uint32_t min, uint32_t max, uint32_t *out)
    __attribute__((warn_unused_result));
/* Parses a C string (whole string must be a number). */
int parse_u32_str(const char *s, uint32_t min, uint32_t max, uint32_t *out)
    __attribute__((warn_unused_result));

/* Parses "IPv4:port", "[IPv6]:port" into a sockaddr. Returns 0 or -EINVAL. */
int parse_sockaddr(const char *s, struct sockaddr_storage *out, socklen_t *len)
    __attribute__((warn_unused_result));

/* Formats an address as "ip" (no port) into out; returns out. */
const char *sockaddr_ip_str(const struct sockaddr *sa, char *out, size_t cap);
/* Returns the port of an AF_INET/AF_INET6 sockaddr in host order. */
uint16_t sockaddr_port(const struct sockaddr *sa);

#endif
