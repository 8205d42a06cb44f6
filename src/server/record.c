/* server/record: sandbox states and records shared by drivers and the API. */
#include <errno.h>
#include <string.h>

#include "server/driver.h"
#include "core/banned.h"

static const char *const state_names[SBX_NSTATES] = {
    "Pending", "Running", "Pausing", "Paused", "Resuming", "Stopping", "Terminated", "Failed"};

const char *sbx_state_name(enum sbx_state st)
{
    return (unsigned)st < SBX_NSTATES ? state_names[st] : "Unknown";
}

int sbx_state_parse(const char *s, enum sbx_state *out)
{
    for (int i = 0; i < SBX_NSTATES; i++)
        if (strcmp(s, state_names[i]) == 0) {
            *out = (enum sbx_state)i;
            return 0;
        }
    return -EINVAL;
}

void sbx_record_clear(struct sbx_record *r)
{
    json_decref(r->metadata);
    json_decref(r->entrypoint);
    r->metadata = NULL;
    r->entrypoint = NULL;
}
