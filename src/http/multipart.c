/* http/multipart: streaming multipart/form-data (see multipart.h).
 *
 *   PREAMBLE -> AFTER_DELIM -> PAD_LF -> HEAD -> BODY -> AFTER_DELIM ...
 *                           -> AFTER_DASH -> EPILOGUE
 * The preamble is scanned as if a CRLF came before the body, so a body that
 * starts with the dash-boundary matches the delimiter at once (RFC 2046
 * §5.1.1: the CRLF before a delimiter belongs to the delimiter). */
#include "http/multipart.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/banned.h"

static const char WHY_REFUSED[] = "refused by the receiver";

static int fail(struct http_multipart *m, const char *why)
{
    m->st = MP_ERROR;
    m->why = why;
    return -EINVAL;
}

/* RFC 2046 bchars. */
static bool is_bchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           strchr("'()+_,-./:=? ", ch) != NULL;
}

static bool is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Finds parameter key in a `; k=v; k2="v 2"` list (RFC 9110 §5.6.6) and
 * copies its value, unquoted, into out (cap bytes incl. NUL). Returns 1
 * found, 0 absent, -1 malformed, given twice, or too long. */
static int param_get(const char *s, const char *key, char *out, size_t cap)
{
    const char *p = s;
    int found = 0;
    size_t keylen = strlen(key);
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            return found;
        if (*p++ != ';')
            return -1;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *k = p;
        while (is_tchar((unsigned char)*p))
            p++;
        size_t klen = (size_t)(p - k);
        if (klen == 0 || *p++ != '=')
            return -1;
        int match = klen == keylen && strncasecmp(k, key, klen) == 0;
        if (match && found)
            return -1;
        size_t o = 0;
        if (*p == '"') {
            for (p++; *p != '"'; p++) {
                if (*p == '\0')
                    return -1;
                if (*p == '\\' && p[1])
                    p++;
                if (match && o + 1 >= cap)
                    return -1;
                if (match)
                    out[o++] = *p;
            }
            p++;
        } else {
            for (; is_tchar((unsigned char)*p); p++) {
                if (match && o + 1 >= cap)
                    return -1;
                if (match)
                    out[o++] = *p;
            }
        }
        if (match) {
            out[o] = '\0';
            found = 1;
        }
    }
}

/* Splits the complete head (ends with CRLF CRLF) into fields and reports
 * the part. */
static int head_done(struct http_multipart *m)
{
    char *line = m->head, *end = m->head + m->hlen - 2; /* the final CRLF */
    char *disp = NULL, *ctype = NULL;
    unsigned nfields = 0;
    while (line < end) {
        char *eol = strstr(line, "\r\n");
        if (!eol || eol > end)
            return fail(m, "part head line without CRLF");
        *eol = '\0';
        if (line[0] == ' ' || line[0] == '\t')
            return fail(m, "folded part header line (obs-fold)");
        if (++nfields > HTTP_MP_MAX_FIELDS)
            return fail(m, "too many part header fields");
        char *colon = line;
        while (is_tchar((unsigned char)*colon))
            colon++;
        if (colon == line || *colon != ':')
            return fail(m, "malformed part header field (want Name: value)");
        *colon = '\0';
        char *val = colon + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        char *ve = val + strlen(val);
        while (ve > val && (ve[-1] == ' ' || ve[-1] == '\t'))
            *--ve = '\0';
        if (strcasecmp(line, "Content-Disposition") == 0) {
            if (disp)
                return fail(m, "Content-Disposition given twice in a part");
            disp = val;
        } else if (strcasecmp(line, "Content-Type") == 0) {
            if (ctype)
                return fail(m, "Content-Type given twice in a part");
            ctype = val;
        }
        line = eol + 2;
    }
    if (!disp)
        return fail(m, "part without Content-Disposition");
    if (strncasecmp(disp, "form-data", 9) != 0 ||
        (disp[9] != '\0' && disp[9] != ';' && disp[9] != ' ' && disp[9] != '\t'))
        return fail(m, "part Content-Disposition is not form-data");
    const char *params = disp + 9;
    size_t half = sizeof(m->vals) / 2;
    int rn = param_get(params, "name", m->vals, half);
    int rf = rn < 0 ? -1 : param_get(params, "filename", m->vals + half, half);
    if (rn < 0 || rf < 0)
        return fail(m, "malformed Content-Disposition parameters");
    if (rn == 0 || !m->vals[0])
        return fail(m, "part Content-Disposition has no name");
    struct http_mp_part part = {.name = m->vals, .filename = rf ? m->vals + half : "",
                                .content_type = ctype ? ctype : ""};
    m->in_part = 1;
    m->nparts++;
    m->st = MP_BODY;
    m->match = 0;
    if (m->cbs.on_part && m->cbs.on_part(&part, m->data) < 0) {
        m->st = MP_ERROR;
        m->why = WHY_REFUSED;
        return -ECANCELED;
    }
    return 0;
}

int http_multipart_init(struct http_multipart *m, const char *content_type,
                        const struct http_mp_cbs *cbs, void *data, const char **why)
{
    char buf[512], b[HTTP_MP_BOUNDARY_MAX + 2];
    memset(m, 0, sizeof(*m));
    m->st = MP_ERROR;
    if (!content_type) {
        *why = "no Content-Type (want multipart/form-data; boundary=...)";
        return -EINVAL;
    }
    size_t len = strlen(content_type);
    if (len >= sizeof(buf)) {
        *why = "Content-Type too long";
        return -EINVAL;
    }
    memcpy(buf, content_type, len + 1);
    if (strncasecmp(buf, "multipart/form-data", 19) != 0 ||
        (buf[19] != '\0' && buf[19] != ';' && buf[19] != ' ' && buf[19] != '\t')) {
        *why = "Content-Type is not multipart/form-data";
        return -EINVAL;
    }
    int r = param_get(buf + 19, "boundary", b, sizeof(b));
    if (r <= 0) {
        *why = r < 0 ? "malformed Content-Type parameters or boundary over 70 characters"
                     : "Content-Type has no boundary";
        return -EINVAL;
    }
    size_t bl = strlen(b);
    if (bl == 0 || bl > HTTP_MP_BOUNDARY_MAX || b[bl - 1] == ' ') {
        *why = "the boundary must be 1..70 characters, not ending in a space (RFC 2046)";
        return -EINVAL;
    }
    for (size_t i = 0; i < bl; i++) {
        if (!is_bchar((unsigned char)b[i])) {
            *why = "the boundary has a character RFC 2046 does not allow";
            return -EINVAL;
        }
    }
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, b, bl);
    m->dlen = 4 + bl;
    m->match = 2; /* as if a CRLF preceded the body */
    m->st = MP_PREAMBLE;
    m->cbs = *cbs;
    m->data = data;
    return 0;
}

static int emit(struct http_multipart *m, const uint8_t *p, size_t n)
{
    if (m->st != MP_BODY || n == 0 || !m->cbs.on_data)
        return 0;
    if (m->cbs.on_data(p, n, m->data) < 0) {
        m->st = MP_ERROR;
        m->why = WHY_REFUSED;
        return -ECANCELED;
    }
    return 0;
}

/* PREAMBLE and BODY: data up to a delimiter. Returns bytes used or -errno. */
static long scan_body(struct http_multipart *m, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (m->match > 0) {
            if (p[i] == (uint8_t)m->delim[m->match]) {
                i++;
                if (++m->match < m->dlen)
                    continue;
                m->match = 0;
                if (m->st == MP_BODY) {
                    m->in_part = 0;
                    if (m->cbs.on_part_end && m->cbs.on_part_end(m->data) < 0) {
                        m->st = MP_ERROR;
                        m->why = WHY_REFUSED;
                        return -ECANCELED;
                    }
                }
                m->st = MP_AFTER_DELIM;
                return (long)i;
            }
            /* Mismatch: the held bytes were data. The delimiter has a CR
             * only at its start, so no later start hides among them. */
            size_t held = m->match;
            m->match = 0;
            int r = emit(m, (const uint8_t *)m->delim, held);
            if (r < 0)
                return r;
            continue; /* look at p[i] again */
        }
        const uint8_t *cr = memchr(p + i, '\r', n - i);
        size_t run = cr ? (size_t)(cr - (p + i)) : n - i;
        int r = emit(m, p + i, run);
        if (r < 0)
            return r;
        i += run;
        if (cr) {
            m->match = 1;
            i++;
        }
    }
    return (long)i;
}

static int head_byte(struct http_multipart *m, uint8_t ch)
{
    if (m->hlen > 0 && m->head[m->hlen - 1] == '\r' && ch != '\n')
        return fail(m, "bare CR in a part head");
    if (ch == '\n' && (m->hlen == 0 || m->head[m->hlen - 1] != '\r'))
        return fail(m, "bare LF in a part head");
    if (ch == '\0')
        return fail(m, "NUL byte in a part head");
    if (m->hlen == HTTP_MP_HEAD_MAX)
        return fail(m, "part head over 8 KiB");
    m->head[m->hlen++] = (char)ch;
    m->head[m->hlen] = '\0';
    if (m->hlen == 2 && m->head[0] == '\r' && ch == '\n')
        return fail(m, "part without Content-Disposition");
    if (m->hlen >= 4 && memcmp(m->head + m->hlen - 4, "\r\n\r\n", 4) == 0)
        return head_done(m);
    return 0;
}

int http_multipart_feed(struct http_multipart *m, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        switch (m->st) {
        case MP_PREAMBLE:
        case MP_BODY: {
            long used = scan_body(m, p + i, n - i);
            if (used < 0)
                return (int)used;
            i += (size_t)used;
            break;
        }
        case MP_AFTER_DELIM:
            if (p[i] == '-')
                m->st = MP_AFTER_DASH;
            else if (p[i] == '\r')
                m->st = MP_PAD_LF;
            else if (p[i] != ' ' && p[i] != '\t')
                return fail(m, "a delimiter line must end with CRLF or --");
            i++;
            break;
        case MP_AFTER_DASH:
            if (p[i] != '-')
                return fail(m, "a delimiter line must end with CRLF or --");
            m->st = MP_EPILOGUE;
            i++;
            break;
        case MP_PAD_LF:
            if (p[i] != '\n')
                return fail(m, "bare CR after a delimiter");
            m->st = MP_HEAD;
            m->hlen = 0;
            i++;
            break;
        case MP_HEAD: {
            int r = head_byte(m, p[i++]);
            if (r < 0)
                return r;
            break;
        }
        case MP_EPILOGUE:
            return 0;
        case MP_ERROR:
            return -EINVAL;
        }
    }
    return m->st == MP_ERROR ? -EINVAL : 0;
}

int http_multipart_finish(struct http_multipart *m)
{
    if (m->st == MP_EPILOGUE)
        return 0;
    if (m->st != MP_ERROR)
        return fail(m, m->st == MP_PREAMBLE ? "no multipart delimiter in the body"
                                            : "the body ends before the closing delimiter");
    return -EINVAL;
}
