/* policy/glob: glob matching with a separator.
 *
 * '*' matches any run of characters that does not contain sep; '**' matches
 * any run, including sep (and "**" + sep matches zero or more whole
 * segments). Other characters compare literally. case_fold compares ASCII
 * case-insensitively (hosts).
 *
 * Exact rules (doc/policy.md):
 *  - "**" + sep, at the start of the pattern or right after a sep, matches
 *    zero or more whole segments (pattern "/ **" + "/x", written without the
 *    space, matches "/x" and "/a/b/x");
 *  - sep + "**" at the end of the pattern matches nothing or sep + anything
 *    (pattern "/v1/ **", without the space, matches "/v1", "/v1/" and
 *    "/v1/a/b");
 *  - three or more stars behave as "**";
 *  - sep == '\0' means no separator: every star run matches anything.
 * '?', '[', '{' are literal characters here.
 *
 * Cost is O(pattern x subject) bits of work with no allocation. Subjects
 * longer than GLOB_MAX_SUBJECT bytes never match: callers that use a match
 * to DENY must reject longer subjects themselves (policy_l7_check does). */
#ifndef CORDON_POLICY_GLOB_H
#define CORDON_POLICY_GLOB_H

#include <stdbool.h>
#include <stddef.h>

#define GLOB_MAX_SUBJECT 16384

bool glob_match(const char *pattern, const char *subject, char sep, bool case_fold);

/* True when pattern contains a '*' (i.e. is a glob, not an exact string). */
bool glob_has_wildcard(const char *pattern);

#endif
