/* proxy/l7: TEMPORARY until policy_l7_check lands: every inspected request
 * is refused (fail closed). */
#include "proxy/internal.h"

bool l7_check_request(struct conn *c)
{
    if (!c->ep || !policy_endpoint_is_rest(c->ep))
        return true;
    respond_deny(c, 403, "l7_denied", "L7 rule evaluation is not available in this build", NULL);
    return false;
}
