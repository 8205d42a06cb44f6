/* proxy/generation: which generation of the policy decided a connection.
 *
 * The embedder (cordon run's reload) numbers the policies it installs and
 * registers each one here before installing it; every decision event then
 * carries "policy_generation" of the policy its connection holds (a
 * connection keeps the policy it started with across reloads). While a
 * policy is referenced its address is unique, and a new policy is
 * registered before any connection can see it, so an address reused after
 * a free is re-registered first. Without registrations (standalone proxy)
 * events carry no generation. */
#include <pthread.h>

#include "proxy/internal.h"
#include "core/banned.h"

void proxy_policy_generation(struct proxy *p, const struct policy *pol, unsigned gen)
{
    pthread_mutex_lock(&p->gen_lock);
    size_t slot = p->n_gen % PROXY_GEN_SLOTS;
    for (size_t i = 0; i < PROXY_GEN_SLOTS && i < p->n_gen; i++)
        if (p->gens[i].pol == pol)
            slot = i; /* the same address again: overwrite */
    p->gens[slot].pol = pol;
    p->gens[slot].gen = gen;
    if (slot == p->n_gen % PROXY_GEN_SLOTS)
        p->n_gen++;
    pthread_mutex_unlock(&p->gen_lock);
}

unsigned proxy_generation_of(struct proxy *p, const struct policy *pol)
{
    unsigned gen = 0;
    pthread_mutex_lock(&p->gen_lock);
    for (size_t i = 0; i < PROXY_GEN_SLOTS && i < p->n_gen; i++)
        if (p->gens[i].pol == pol)
            gen = p->gens[i].gen;
    pthread_mutex_unlock(&p->gen_lock);
    return gen;
}
