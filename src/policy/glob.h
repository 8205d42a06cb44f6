/* policy/glob: glob matching with a separator.
 *
 * '*' matches any run of characters that does not contain sep; '**' matches
 * any run, including sep (and "**" + sep matches zero or more whole
 * segments). Other characters compare literally. case_fold compares ASCII
 * case-insensitively (hosts). */
#ifndef CORDON_POLICY_GLOB_H
#define CORDON_POLICY_GLOB_H

#include <stdbool.h>
#include <stddef.h>

bool glob_match(const char *pattern, const char *subject, char sep, bool case_fold);

#endif
