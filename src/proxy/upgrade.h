/* proxy/upgrade: which protocol upgrade a relayed request may offer.
 *
 * Upgrade is hop-by-hop (RFC 9110 §7.8), so the proxy decides what it
 * offers upstream. The only upgrade the relay carries is WebSocket
 * (RFC 6455 §4.1); anything else — above all h2c (RFC 7540 §3.2, which curl
 * --http2 offers on every http:// request) — would turn an exchange whose
 * request was checked into a raw relay carrying requests nobody checked.
 * So every other token is removed from Upgrade, the HTTP2-Settings header
 * is dropped, and Connection loses the tokens that named them; the request
 * itself goes on (refusing it would break ordinary clients). */
#ifndef CORDON_PROXY_UPGRADE_H
#define CORDON_PROXY_UPGRADE_H

#include <stdbool.h>

#include "core/buf.h"
#include "http/message.h"

/* True when the request offers a WebSocket upgrade: "websocket" among the
 * Upgrade tokens and "upgrade" among the Connection tokens. */
bool upgrade_offers_websocket(const struct http_head *h);

/* True when the head carries anything upgrade_write_header() changes:
 * an Upgrade header that is not exactly a WebSocket offer, HTTP2-Settings,
 * or a Connection token naming either. */
bool upgrade_head_needs_filter(const struct http_head *h);

/* Appends header x of request h to out as the proxy forwards it: as is,
 * filtered (Upgrade → "websocket" or nothing; Connection without the
 * tokens of withheld upgrades), or not at all (HTTP2-Settings). Returns 0
 * or -ENOBUFS. */
int upgrade_write_header(const struct http_head *h, const struct http_hdr *x, struct buf *out)
    __attribute__((warn_unused_result));

#endif
