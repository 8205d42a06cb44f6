/* libFuzzer: execd's parsers of what it reads from files: the bash session
 * state file (execd/bash_session), which a user's shell wrote ("<cwd>\n"
 * then NUL-separated K=V), and the /proc/stat "cpu" line (execd/metrics).
 * Checks: on success the cwd is absolute and has no NUL or newline, and every
 * kept entry is NAME=VALUE with a non-empty name and no per-shell variable. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "execd/bash_session.h"
#include "execd/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    char *cwd = NULL, **env = NULL;
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    uint64_t busy, total;
    if (metrics_parse_cpu(buf, &busy, &total) == 0 && busy > total)
        abort();
    if (bash_session_parse_state(buf, size, &cwd, &env) == 0) {
        if (cwd[0] != '/' || strchr(cwd, '\n'))
            abort();
        for (size_t i = 0; env[i]; i++) {
            const char *eq = strchr(env[i], '=');
            if (!eq || eq == env[i] || strncmp(env[i], "PWD=", 4) == 0 ||
                strncmp(env[i], "__CORDON_STATE=", 15) == 0)
                abort();
            free(env[i]);
        }
        free(env);
        free(cwd);
    }
    free(buf);
    return 0;
}
