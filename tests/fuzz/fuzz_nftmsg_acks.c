/* libFuzzer target: sandbox/nftmsg's reading of the kernel's answers to the
 * fence's nf_tables batch (nftmsg_acks). Contracts checked, not only "no
 * crash": the result is 1, 0, or a negative errno above -4096; *bad_seq
 * is written only for an error; the same input gives the same answer. The input is copied to an exact-size heap buffer
 * (aligned, as a recv() buffer is) so ASan catches any over-read. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sandbox_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint32_t last;
    memcpy(&last, data, 4);
    data += 4;
    size -= 4;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    const uint32_t unset = 0xdeadbeef;
    uint32_t bad = unset, bad2 = unset;
    int rc = nftmsg_acks(buf, size, last, &bad);
    if (!(rc == 0 || rc == 1 || (rc < 0 && rc > -4096)))
        abort();
    if (rc >= 0 && bad != unset)
        abort(); /* *bad_seq is written only for an error */
    if (nftmsg_acks(buf, size, last, &bad2) != rc || bad2 != bad)
        abort();
    free(buf);
    return 0;
}
