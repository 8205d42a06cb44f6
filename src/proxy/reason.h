/* proxy/reason: the proxy's own close and deny reasons, defined once.
 *
 * Each is a constant string compared by identity (c->close_reason ==
 * PROXY_REASON_IDLE_TIMEOUT), logged and sent as is: in the `reason` of the
 * audit `close` event, the `reason_code` of a `decision`, the JSON body of an
 * answer and its X-Cordon-Deny header. Reasons owned by other modules
 * (policy decisions, IDENTITY_REASON_*, TLS_REASON_*) keep their own
 * constants. doc/proxy.md lists them. */
#ifndef CORDON_PROXY_REASON_H
#define CORDON_PROXY_REASON_H

/* X(NAME, "text") */
#define PROXY_REASONS(X)                                                     \
    /* client side */                                                        \
    X(CLIENT_CLOSED, "client_closed")                                        \
    X(CLIENT_CLOSED_MID_HEAD, "client_closed_mid_head")                      \
    X(CLIENT_CLOSED_MID_REQUEST, "client_closed_mid_request")                \
    X(CLIENT_READ_ERROR, "client_read_error")                                \
    X(CLIENT_WRITE_ERROR, "client_write_error")                              \
    X(CLIENT_TIMEOUT, "client_timeout")                                      \
    X(HEAD_TIMEOUT, "head_timeout")                                          \
    X(KEEPALIVE_IDLE, "keepalive_idle")                                      \
    X(IDLE_TIMEOUT, "idle_timeout")                                          \
    /* request errors (answered) */                                          \
    X(BAD_REQUEST, "bad_request")                                            \
    X(BAD_REQUEST_BODY, "bad_request_body")                                  \
    X(BAD_TARGET, "bad_target")                                              \
    X(NOT_A_PROXY_REQUEST, "not_a_proxy_request")                            \
    X(CORDON_LOCAL, "cordon_local")                                          \
    X(HEAD_TOO_LARGE, "head_too_large")                                      \
    X(HOST_MISMATCH, "host_mismatch")                                        \
    X(L7_DENIED, "l7_denied")                                                \
    X(DENIED, "denied")                                                      \
    X(RESPONSE_SENT, "response_sent")                                        \
    /* destination */                                                        \
    X(RESOLVE_FAILED, "resolve_failed")                                      \
    X(ADDRESS_BLOCKED, "address_blocked")                                    \
    X(CONNECT_FAILED, "connect_failed")                                      \
    X(UPSTREAM_TLS_HANDSHAKE, "upstream_tls_handshake")                      \
    X(UPSTREAM_TLS_TIMEOUT, "upstream_tls_timeout")                          \
    /* inspected tunnels */                                                  \
    X(EARLY_DATA, "early_data")                                              \
    X(BAD_CLIENT_HELLO, "bad_client_hello")                                  \
    X(SNI_MISMATCH, "sni_mismatch")                                          \
    X(TLS_SETUP_FAILED, "tls_setup_failed")                                  \
    X(L7_UNSUPPORTED_PROTOCOL, "l7_unsupported_protocol")                    \
    /* transparent capture */                                                \
    X(NO_ORIGINAL_DESTINATION, "no_original_destination")                    \
    X(ADDRESS_NOT_HANDED_OUT, "address_not_handed_out")                      \
    /* relay */                                                              \
    X(EXCHANGE_DONE, "exchange_done")                                        \
    X(UPSTREAM_CLOSED, "upstream_closed")                                    \
    X(UPSTREAM_CLOSED_EARLY, "upstream_closed_early")                        \
    X(UPSTREAM_CLOSED_MID_RESPONSE, "upstream_closed_mid_response")          \
    X(UPSTREAM_READ_ERROR, "upstream_read_error")                            \
    X(UPSTREAM_WRITE_ERROR, "upstream_write_error")                          \
    X(BAD_UPSTREAM_RESPONSE, "bad_upstream_response")                        \
    X(UNSOLICITED_101, "unsolicited_101")                                    \
    X(UPGRADE_OVERFLOW, "upgrade_overflow")                                  \
    X(RELAY_ERROR, "relay_error")                                            \
    /* WebSocket relay after a 101 (wsrelay.c) */                            \
    X(WS_UPSTREAM_LOST, "websocket_upstream_lost")                           \
    X(WS_UPSTREAM_LOST_MID_FRAME, "websocket_upstream_lost_mid_frame")       \
    /* inference routing (infer.c) */                                         \
    X(INFERENCE_BAD_FIRST_BYTE, "inference_bad_first_byte")                  \
    X(INFERENCE_NOT_CONFIGURED, "inference_not_configured")                  \
    X(INFERENCE_BAD_TARGET, "inference_bad_target")                          \
    X(UNKNOWN_INFERENCE_PATH, "unknown_inference_path")                      \
    X(MODEL_NOT_FOUND, "model_not_found")                                    \
    X(NO_ROUTE, "no_route")                                                  \
    X(INFERENCE_BAD_MODEL, "inference_bad_model")                            \
    X(INFERENCE_BODY_NOT_JSON, "inference_body_not_json")                    \
    X(METHOD_NOT_ALLOWED, "method_not_allowed")                              \
    X(LENGTH_REQUIRED, "length_required")                                    \
    X(REQUEST_TOO_LARGE, "request_too_large")                                \
    X(WEBSOCKET_UNSUPPORTED, "websocket_unsupported")                        \
    X(UNEXPECTED_BODY, "unexpected_body")                                    \
    X(UPSTREAM_FAILED, "upstream_failed")                                    \
    X(INFERENCE_REQUEST_TOO_LARGE, "inference_request_too_large")            \
    /* the proxy itself */                                                   \
    X(NO_POLICY, "no_policy")                                                \
    X(OUT_OF_MEMORY, "out_of_memory")                                        \
    X(OUT_OF_RESOURCES, "out_of_resources")                                  \
    X(TIMER_FULL, "timer_full")                                              \
    X(TUNNEL_SETUP_FAILED, "tunnel_setup_failed")                            \
    X(PROXY_SHUTDOWN, "proxy_shutdown")                                      \
    X(REVOKED, "revoked")                                                    \
    X(ILLEGAL_TRANSITION, "illegal_transition")

#define PROXY_REASON_DECLARE(name, text) extern const char PROXY_REASON_##name[];
PROXY_REASONS(PROXY_REASON_DECLARE)
#undef PROXY_REASON_DECLARE

#endif
