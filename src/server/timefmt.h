/* server/timefmt: RFC 3339 times on the wire (createdAt, expiresAt, ...). */
#ifndef CORDON_SERVER_TIMEFMT_H
#define CORDON_SERVER_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Unix ms -> "YYYY-MM-DDTHH:MM:SS.mmmZ" (out holds at least 32 bytes). */
void timefmt_format(int64_t ms, char *out, size_t cap);
/* RFC 3339 (YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); a space for the T
 * is accepted) -> Unix ms. Returns 0 or -EINVAL. */
int timefmt_parse(const char *s, int64_t *ms) __attribute__((warn_unused_result));
/* Wall clock, Unix ms. */
int64_t timefmt_now_ms(void);

#endif
