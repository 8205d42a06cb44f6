/* proxy/reason: definitions of the reason constants (see reason.h). */
#include "proxy/reason.h"

#define PROXY_REASON_DEFINE(name, text) const char PROXY_REASON_##name[] = text;
PROXY_REASONS(PROXY_REASON_DEFINE)
#undef PROXY_REASON_DEFINE
