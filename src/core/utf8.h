/* core/utf8: UTF-8 sequences as Go and Rust decode them (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
#ifndef CORDON_CORE_UTF8_H
#define CORDON_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1-4) of the valid UTF-8 sequence starting at s[0] within n bytes
 * (n >= 1), or 0 when s[0] does not start one. */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* True when s[0..n) is entirely valid UTF-8. */
bool utf8_valid(const unsigned char *s, size_t n);

#endif
