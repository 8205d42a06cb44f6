/* execd/bash_session: OpenSandbox's bash "session" API; see bash_session.h. */
#include "execd/bash_session.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "execd/api.h"
#include "execd/command.h"
#include "execd/execd.h"
#include "http/server.h"
#include "core/banned.h"

#define BASH_RUN_MAX_MS (24ull * 3600 * 1000) /* timeout 0 means this cap (OpenSandbox) */
#define BASH_ENV_VALUE_MAX 8192               /* longer values are not carried over */
#define BASH_STATE_MAX (4u << 20)             /* a bigger state file is ignored */
#define BASH_STATE_VAR "__CORDON_STATE"

struct bash_session {
    struct bash_session *next;
    struct execd *ed;
    char id[40];
    char *cwd;          /* NULL: execd's working directory */
    char **env;         /* exported variables carried over ("K=V"), NULL-terminated */
    struct command *run; /* the run in progress, or NULL */
    char state_path[96];
};

/* The run's EXIT trap saves pwd and the exported environment; stderr joins
 * stdout (OpenSandbox merges them). The user's command follows as is. */
static const char script_head[] =
    "trap '__cordon_rc=$?; { pwd; env -0; } > \"$" BASH_STATE_VAR "\" 2>/dev/null; "
    "exit $__cordon_rc' EXIT\n"
    "exec 2>&1\n";

static struct bash_session *find(struct execd *ed, const char *id)
{
    for (struct bash_session *s = ed->bash_sessions; s; s = s->next) {
        if (strcmp(s->id, id) == 0)
            return s;
    }
    return NULL;
}

static void not_found(struct http_conn *c, const char *id)
{
    api_error(c, 404, "CONTEXT_NOT_FOUND", "bash session %s not found", id);
}

static void bs_free(struct bash_session *s)
{
    if (s->state_path[0])
        unlink(s->state_path);
    api_strv_free(s->env);
    free(s->cwd);
    free(s);
}

static void bs_unlink(struct bash_session *s)
{
    struct bash_session **pp = &s->ed->bash_sessions;
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp)
        *pp = s->next;
    s->ed->nbash_sessions--;
}

/* Variables that belong to each shell, not to the session. */
static int skip_var(const char *kv, size_t klen)
{
    static const char *const skip[] = {"PWD", "OLDPWD", "SHLVL", "_", "PS1", "PS2", "PS3",
                                       "PS4", "PROMPT_COMMAND", BASH_STATE_VAR};
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
        if (strlen(skip[i]) == klen && strncmp(kv, skip[i], klen) == 0)
            return 1;
    }
    return 0;
}

int bash_session_parse_state(char *buf, size_t len, char **cwd_out, char ***env_out)
{
    int r = -ENODATA;
    char **env = NULL;
    char *nl = memchr(buf, '\n', len);
    if (len == 0 || !nl || nl == buf || buf[0] != '/' || memchr(buf, 0, (size_t)(nl - buf)))
        return -ENODATA;
    *nl = 0;
    size_t n = 0;
    for (size_t i = (size_t)(nl + 1 - buf); i < len; i++)
        n += buf[i] == 0;
    env = calloc(n + 2, sizeof(*env));
    if (!env)
        return -ENOMEM;
    size_t o = 0;
    for (char *p = nl + 1; p < buf + len;) {
        size_t l = strnlen(p, (size_t)(buf + len - p));
        char *eq = memchr(p, '=', l);
        if (o <= n && eq && eq > p && !skip_var(p, (size_t)(eq - p)) &&
            l - (size_t)(eq - p) - 1 <= BASH_ENV_VALUE_MAX) {
            if (!(env[o] = strndup(p, l))) {
                r = -ENOMEM;
                goto fail;
            }
            o++;
        }
        p += l + 1;
    }
    char *cwd = strdup(buf);
    if (!cwd) {
        r = -ENOMEM;
        goto fail;
    }
    *cwd_out = cwd;
    *env_out = env;
    return 0;
fail:
    api_strv_free(env);
    return r;
}

/* Reads the state file the run's EXIT trap wrote. Returns 0 and replaces
 * s->cwd and s->env, or -errno (the old state stays). */
static int load_state(struct bash_session *s)
{
    char *cwd, **env;
    FILE *f = fopen(s->state_path, "rb");
    if (!f)
        return -errno;
    char *buf = malloc(BASH_STATE_MAX + 1);
    size_t len = buf ? fread(buf, 1, BASH_STATE_MAX + 1, f) : 0;
    fclose(f);
    int r = !buf ? -ENOMEM : len > BASH_STATE_MAX ? -EFBIG
                                                   : bash_session_parse_state(buf, len, &cwd, &env);
    free(buf);
    if (r < 0)
        return r;
    free(s->cwd);
    s->cwd = cwd;
    api_strv_free(s->env);
    s->env = env;
    return 0;
}

static void run_done(void *data, int code, const char *sig)
{
    struct bash_session *s = data;
    s->run = NULL;
    int r = load_state(s);
    if (r < 0)
        log_info("execd: bash session %s: run ended (code %d%s%s) without saving its state (%s); "
                 "the next run starts from the previous one",
                 s->id, code, sig ? ", " : "", sig ? sig : "", strerror(-r));
    unlink(s->state_path);
    s->state_path[0] = 0;
}

void bash_session_create(struct execd *ed, struct http_conn *c, const struct http_req *req)
{
    char cwd[4096];
    int has_cwd;
    json_t *root = api_body_object(c, req);
    if (!root)
        return;
    if (api_cwd_create(c, root, cwd, sizeof(cwd), &has_cwd) < 0)
        goto out;
    if (ed->nbash_sessions >= ed->cfg.max_sessions) {
        api_error(c, 429, "SESSION_LIMIT", "%zu bash sessions exist (--max-sessions); delete one",
                  ed->cfg.max_sessions);
        goto out;
    }
    struct bash_session *s = calloc(1, sizeof(*s));
    if (!s || (has_cwd && !(s->cwd = strdup(cwd)))) {
        free(s);
        api_error(c, 500, "RUNTIME_ERROR", "out of memory");
        goto out;
    }
    s->ed = ed;
    execd_new_id(s->id, 1);
    s->next = ed->bash_sessions;
    ed->bash_sessions = s;
    ed->nbash_sessions++;
    log_info("execd: bash session %s: created (cwd %s)", s->id, s->cwd ? s->cwd : ".");
    api_json(c, 200, json_pack("{s:s}", "session_id", s->id));
out:
    json_decref(root);
}

/* The run's environment: the session's variables plus the state file. */
static char **run_env(const struct bash_session *s)
{
    size_t n = 0;
    while (s->env && s->env[n])
        n++;
    char **env = calloc(n + 2, sizeof(*env));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(env[i] = strdup(s->env[i]))) {
            api_strv_free(env);
            return NULL;
        }
    }
    size_t len = sizeof(BASH_STATE_VAR) + 1 + strlen(s->state_path);
    if (!(env[n] = malloc(len))) {
        api_strv_free(env);
        return NULL;
    }
    snprintf(env[n], len, "%s=%s", BASH_STATE_VAR, s->state_path);
    return env;
}

/* Parses {command, cwd?, timeout?}; answers 400 and returns -1 on bad input. */
static int parse_run(struct http_conn *c, json_t *root, struct command_spec *spec)
{
    struct stat st;
    spec->command = json_string_value(json_object_get(root, "command"));
    if (!spec->command || !*spec->command) {
        api_error(c, 400, "INVALID_REQUEST_BODY", "\"command\" must be a non-empty string");
        return -1;
    }
    json_t *v = json_object_get(root, "cwd");
    if (v && !json_is_null(v)) {
        spec->cwd = json_string_value(v);
        if (!spec->cwd || stat(spec->cwd, &st) < 0 || !S_ISDIR(st.st_mode)) {
            api_error(c, 400, "INVALID_REQUEST_BODY", "\"cwd\" %s%s is not an existing directory",
                      spec->cwd ? spec->cwd : "", spec->cwd ? "" : "(not a string)");
            return -1;
        }
    }
    v = json_object_get(root, "timeout");
    if (!v)
        v = json_object_get(root, "timeout_ms");
    spec->timeout_ms = BASH_RUN_MAX_MS;
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            api_error(c, 400, "INVALID_REQUEST_BODY",
                      "\"timeout\" must be a non-negative integer of milliseconds (0 = 24 h)");
            return -1;
        }
        if (json_integer_value(v) > 0 && (uint64_t)json_integer_value(v) < BASH_RUN_MAX_MS)
            spec->timeout_ms = (uint64_t)json_integer_value(v);
    }
    return 0;
}

void bash_session_run(struct execd *ed, struct http_conn *c, const struct http_req *req,
                      const char *id)
{
    struct command_spec spec;
    char *script = NULL;
    char **env = NULL;
    struct bash_session *s = find(ed, id);
    if (!s) {
        not_found(c, id);
        return;
    }
    json_t *root = api_body_object(c, req);
    if (!root)
        return;
    memset(&spec, 0, sizeof(spec));
    if (parse_run(c, root, &spec) < 0)
        goto out;
    if (s->run) {
        api_error(c, 409, "SESSION_BUSY",
                  "bash session %s is running a command; wait for it or DELETE the session", id);
        goto out;
    }
    if (spec.cwd) { /* a per-run cwd sticks (OpenSandbox) */
        char *cwd = strdup(spec.cwd);
        if (!cwd)
            goto oom;
        free(s->cwd);
        s->cwd = cwd;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(s->state_path, sizeof(s->state_path), "%s/cordon-execd-state-XXXXXX",
             tmp && *tmp && strlen(tmp) < 64 ? tmp : "/tmp");
    int fd = mkstemp(s->state_path);
    if (fd < 0) {
        api_error(c, 500, "RUNTIME_ERROR", "cannot create the session state file %s: %s",
                  s->state_path, strerror(errno));
        s->state_path[0] = 0;
        goto out;
    }
    close(fd);
    size_t len = sizeof(script_head) + strlen(spec.command) + 2;
    script = malloc(len);
    env = run_env(s);
    if (!script || !env)
        goto oom;
    snprintf(script, len, "%s%s\n", script_head, spec.command);
    spec.script = script;
    spec.env = env;
    spec.cwd = s->cwd;
    spec.init_text = s->id;
    spec.on_done = run_done;
    spec.done_data = s;
    if (command_start(ed, c, &spec, &s->run) < 0) { /* answered */
        s->run = NULL;
        unlink(s->state_path);
        s->state_path[0] = 0;
    }
    goto out;
oom:
    api_error(c, 500, "RUNTIME_ERROR", "out of memory");
    if (s->state_path[0]) {
        unlink(s->state_path);
        s->state_path[0] = 0;
    }
out:
    free(script);
    api_strv_free(env);
    json_decref(root);
}

void bash_session_status(struct execd *ed, struct http_conn *c, const char *id)
{
    struct bash_session *s = find(ed, id);
    if (!s) {
        not_found(c, id);
        return;
    }
    json_t *o = json_pack("{s:s, s:b}", "session_id", s->id, "running", s->run != NULL);
    if (o)
        json_object_set_new(o, "cwd", s->cwd ? json_string(s->cwd) : json_null());
    api_json(c, 200, o);
}

void bash_session_delete(struct execd *ed, struct http_conn *c, const char *id)
{
    struct bash_session *s = find(ed, id);
    if (!s) {
        not_found(c, id);
        return;
    }
    if (s->run) {
        command_forget_owner(s->run);
        command_kill(s->run);
    }
    log_info("execd: bash session %s: deleted", s->id);
    bs_unlink(s);
    bs_free(s);
    (void)http_respond(c, 200, NULL, NULL, 0, NULL);
}

int bash_session_exists(struct execd *ed, const char *id) { return find(ed, id) != NULL; }

void bash_session_free_all(struct execd *ed)
{
    while (ed->bash_sessions) {
        struct bash_session *s = ed->bash_sessions;
        ed->bash_sessions = s->next;
        bs_free(s);
    }
    ed->nbash_sessions = 0;
}
