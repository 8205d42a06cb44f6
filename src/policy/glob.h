/* policy/glob: glob matching with a separator.
 *
 * '*' matches any run of characters that does not contain sep; '**' as a
 * whole segment matches across sep. Other characters compare literally. case_fold compares ASCII
 * case-insensitively (hosts).
 *
 * Exact rules (doc/policy.md), those of the globset crate that OpenShell's
 * Rego engine (regorus) matches with, never wider:
 *  - "**" + sep, at the start of the pattern or right after a sep, matches
 *    zero or more whole segments (pattern "/ **" + "/x", written without the
 *    space, matches "/x" and "/a/b/x");
 *  - sep + "**" at the end of the pattern matches sep + anything (pattern
 *    "/v1/ **", without the space, matches "/v1/" and "/v1/a/b", not "/v1");
 *  - "**" alone matches anything; "**" anywhere else, and three or more
 *    stars, behave as '*';
 *  - sep == '\0' means no separator: every star run matches anything.
 * '?', '[', '{' are literal characters here (see glob_value_match for the
 * value globs that have them).
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

/* Value globs: how OpenShell matches a query value, an MCP method or tool
 * name, a GraphQL operation name or field. Its Rego engine (regorus)
 * evaluates glob.match(pattern, [], value) with '.' as the delimiter, by
 * rewriting every '.' as "/./" and '/' as NUL and handing both to globset.
 * The effect, which this matches (never wider):
 *  - '*' matches a run of characters without '.';
 *  - "**" is special only as a whole '.'-segment: alone it matches
 *    anything, "**.x" any run then ".x", "x.**" "x." then any run, and
 *    "x.**.y" "x." any run ".y" (regorus also matches "x.y": stricter
 *    here); elsewhere, and three or more stars, it is '*';
 *  - '?' matches one character other than '.';
 *  - '[abc]', '[a-z]' match one listed character; '[!abc]', '[^a-z]' one
 *    character other than '.' that is not listed;
 *  - a backslash makes the next character literal; ']' and ',' are literal.
 * A character is a UTF-8 sequence (a byte that starts none counts as one),
 * so '?' never matches half of 'é'. Refused by glob_value_check (the loader
 * says why) and never matched: alternatives '{a,b}' and a stray '}', a
 * class holding '\\', '-', '[', ']', '.' or non-ASCII (beyond one range), a
 * range spanning '.' or '/', an empty or unclosed class, a trailing
 * backslash. Case-sensitive. Same cost bound and subject limit as
 * glob_match. */
bool glob_value_match(const char *pattern, const char *subject);

/* 0 when glob_value_match accepts pattern; else -EINVAL with a reason (a
 * static string naming the fix) in *why. */
int glob_value_check(const char *pattern, const char **why);

#endif
