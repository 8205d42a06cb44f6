/* inference/usage: token counts out of a relayed response, without
 * buffering it. The response is JSON, SSE or NDJSON; all are scanned as
 * one stream of JSON tokens: strings are tracked with their escapes (so
 * text the model wrote can never pose as a key), and a known key followed
 * by ':' and a decimal number records that number. The last value wins
 * (streams repeat cumulative counts). Used for the audit event only. */
#include <string.h>

#include "inference/inference.h"
#include "core/banned.h"

enum { U_OUT, U_STR, U_STR_ESC, U_AFTER_KEY, U_VALUE, U_NUM };

static const struct { const char *key; int which; } keys[] = {
    {"prompt_tokens", 0}, {"input_tokens", 0}, {"prompt_eval_count", 0},
    {"completion_tokens", 1}, {"output_tokens", 1}, {"eval_count", 1},
};

void inference_usage_init(struct inference_usage *u)
{
    memset(u, 0, sizeof(*u));
    u->input = u->output = -1;
    u->st = U_OUT;
}

static int key_index(const struct inference_usage *u)
{
    if (u->key_len >= sizeof(u->key))
        return -1;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strlen(keys[i].key) == u->key_len && memcmp(keys[i].key, u->key, u->key_len) == 0)
            return keys[i].which;
    return -1;
}

static void record(struct inference_usage *u)
{
    if (u->which == 0)
        u->input = u->num;
    else
        u->output = u->num;
}

void inference_usage_feed(struct inference_usage *u, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        switch (u->st) {
        case U_OUT:
            if (ch == '"') {
                u->st = U_STR;
                u->key_len = 0;
            }
            break;
        case U_STR:
            if (ch == '\\') {
                u->st = U_STR_ESC;
                u->key_len = sizeof(u->key); /* escaped: never one of ours */
            } else if (ch == '"') {
                u->which = key_index(u);
                u->st = u->which >= 0 ? U_AFTER_KEY : U_OUT;
            } else if (u->key_len < sizeof(u->key)) {
                u->key[u->key_len++] = ch;
            }
            break;
        case U_STR_ESC:
            u->st = U_STR;
            break;
        case U_AFTER_KEY:
            if (ch == ':')
                u->st = U_VALUE;
            else if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
                u->st = ch == '"' ? U_STR : U_OUT;
                u->key_len = 0;
            }
            break;
        case U_VALUE:
            if (ch >= '0' && ch <= '9') {
                u->num = ch - '0';
                u->st = U_NUM;
            } else if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
                u->st = ch == '"' ? U_STR : U_OUT;
                u->key_len = 0;
            }
            break;
        case U_NUM:
            if (ch >= '0' && ch <= '9') {
                if (u->num < (INT64_MAX - 9) / 10)
                    u->num = u->num * 10 + (ch - '0');
            } else {
                record(u);
                u->st = ch == '"' ? U_STR : U_OUT;
                u->key_len = 0;
            }
            break;
        default:
            u->st = U_OUT;
        }
    }
}
