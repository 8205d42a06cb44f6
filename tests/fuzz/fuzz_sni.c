/* libFuzzer target: the ClientHello SNI parser and the tunnel classifier
 * (tls/peek). Both read peer bytes before any policy decision. Checks the
 * contracts, not just "no crash":
 *  - the result is one of the documented codes;
 *  - a returned name is NUL-terminated, non-empty, fits the buffer and
 *    holds only [A-Za-z0-9._-];
 *  - a name found in a prefix is the name found in the whole input (the
 *    parser never changes its mind when more bytes arrive);
 *  - TLS_PEEK_DECIDE bytes always classify; a TLS verdict on a prefix
 *    stays TLS on the whole input.
 * The input is copied to an exact-size heap buffer so ASan catches any
 * over-read. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_name(int rc, const char *name, size_t cap)
{
    if (rc != 0 && rc != -ENOENT && rc != -EAGAIN && rc != -EINVAL && rc != -ENOSPC &&
        rc != -EMSGSIZE)
        abort();
    if (rc == 0) {
        size_t n = strnlen(name, cap);
        if (n == 0 || n >= cap)
            abort();
        for (size_t i = 0; i < n; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._",
                        name[i]))
                abort();
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    char name[256], small[8], pre[256];
    enum tls_peek_kind k, kp;
    int rc, rcp;

    if (!buf)
        return 0;
    memcpy(buf, data, size);

    rc = check_name(tls_sni_parse(buf, size, name, sizeof(name)), name, sizeof(name));
    check_name(tls_sni_parse(buf, size, small, sizeof(small)), small, sizeof(small));

    /* a prefix never contradicts the whole */
    if (size > 0) {
        size_t cut = data[0] % (size + 1);
        rcp = check_name(tls_sni_parse(buf, cut, pre, sizeof(pre)), pre, sizeof(pre));
        if (rcp != -EAGAIN && rcp != rc)
            abort(); /* a verdict on a prefix stands */
        if (rcp == 0 && strcmp(pre, name) != 0)
            abort();
        kp = tls_peek_classify(buf, cut);
    } else {
        kp = TLS_PEEK_NEED_MORE;
    }

    k = tls_peek_classify(buf, size);
    if (size >= TLS_PEEK_DECIDE && k == TLS_PEEK_NEED_MORE)
        abort();
    if (kp != TLS_PEEK_NEED_MORE && kp != k)
        abort(); /* decided on a prefix: the same on the whole */
    (void)tls_peek_kind_name(k);

    free(buf);
    return 0;
}
