/*
 * config.c — slim-train settings: presets, key=value parsing (flags and
 * --config files share the keys), validation and canonical serialisation
 * (hashed into checkpoints, recorded as JSON in the runs table).
 */
#include "trainer.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_INT, K_I64, K_U64, K_FLOAT, K_LOSS, K_TAIL, K_WEIGHT };

typedef struct key {
    const char *name;
    int type;
    size_t off;
    int in_text;  /* part of the trained function (checkpoint config hash) */
} key;

#define F(field) offsetof(slim_train_config, field)
static const key keys[] = {
    {"layers", K_INT, F(model.layers), 1},   {"dim", K_INT, F(model.dim), 1},
    {"heads", K_INT, F(model.heads), 1},     {"ctx", K_INT, F(model.ctx), 1},
    {"ffn", K_INT, F(model.ffn), 1},         {"tie", K_INT, F(model.tie), 1},
    {"rope-theta", K_FLOAT, F(model.rope_theta), 1},
    {"norm-eps", K_FLOAT, F(model.norm_eps), 1},
    {"loss", K_LOSS, F(loss.kind), 1},       {"tail", K_TAIL, F(loss.tail), 1},
    {"kd-weight", K_FLOAT, F(loss.alpha), 1},{"temperature", K_FLOAT, F(loss.tau), 1},
    {"slim-weight", K_WEIGHT, F(loss.printed), 1},
    {"batch", K_INT, F(batch), 1},           {"accum", K_INT, F(accum), 1},
    {"lr", K_FLOAT, F(lr), 1},               {"lr-min", K_FLOAT, F(lr_min), 1},
    {"warmup", K_I64, F(warmup), 1},         {"wd", K_FLOAT, F(wd), 1},
    {"clip", K_FLOAT, F(clip), 1},           {"beta1", K_FLOAT, F(beta1), 1},
    {"beta2", K_FLOAT, F(beta2), 1},         {"eps", K_FLOAT, F(eps), 1},
    {"seed", K_U64, F(seed), 1},
    {"steps", K_I64, F(steps), 0},           {"threads", K_INT, F(threads), 0},
    {"log-every", K_INT, F(log_every), 0},   {"eval-every", K_INT, F(eval_every), 0},
    {"ckpt-every", K_INT, F(ckpt_every), 0},
    /* 2 = in the config text only when set, so checkpoints trained on the
     * whole split keep their hash, and --resume restores (and checks) it */
    {"train-limit", K_I64, F(train_limit), 2},
};
#define NKEYS (sizeof keys / sizeof keys[0])

int slim_train_preset(slim_train_config *c, const char *name)
{
    slim_train_config d = {
        .loss = {.kind = SLIM_LOSS_SLIM, .tail = SLIM_TAIL_RENORM, .alpha = 0.5f, .tau = 1.0f},
        .accum = 1, .wd = 0.1f, .clip = 1.0f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
        .seed = 1, .threads = 0, .log_every = 10,
    };
    if (!strcmp(name, "tiny")) {
        d.model = (slim_model_config){.layers = 2, .dim = 64, .heads = 4, .ctx = 64};
        d.batch = 4; d.lr = 3e-3f; d.warmup = 5; d.steps = 40;
    } else if (!strcmp(name, "small")) {
        d.model = (slim_model_config){.layers = 4, .dim = 256, .heads = 4, .ctx = 256};
        d.batch = 8; d.lr = 1e-3f; d.warmup = 100; d.steps = 2000;
    } else if (!strcmp(name, "base")) {
        d.model = (slim_model_config){.layers = 8, .dim = 512, .heads = 8, .ctx = 512};
        d.batch = 16; d.lr = 6e-4f; d.warmup = 200; d.steps = 10000;
    } else {
        return -1;
    }
    d.lr_min = d.lr / 10;
    *c = d;
    return 0;
}

static const key *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name)) return &keys[i];
    return NULL;
}

int slim_train_config_set(slim_train_config *c, const char *name, const char *val,
                          char *err, size_t cap)
{
    const key *k = find_key(name);
    if (!k) { snprintf(err, cap, "unknown setting '%s'", name); return -1; }
    char *end = NULL;
    void *p = (char *)c + k->off;
    errno = 0;
    switch (k->type) {
    case K_INT: { long v = strtol(val, &end, 10); if (v < -2147483647L || v > 2147483647L) errno = ERANGE; *(int *)p = (int)v; break; }
    case K_I64: *(int64_t *)p = strtoll(val, &end, 10); break;
    case K_U64: *(uint64_t *)p = strtoull(val, &end, 10); if (*val == '-') errno = ERANGE; break;
    case K_FLOAT: *(float *)p = strtof(val, &end); break;
    case K_LOSS: { int v = slim_loss_kind_parse(val); if (v < 0) goto bad; *(int *)p = v; return 0; }
    case K_TAIL: { int v = slim_loss_tail_parse(val); if (v < 0) goto bad; *(int *)p = v; return 0; }
    case K_WEIGHT:
        if (!strcmp(val, "text")) *(int *)p = 0;
        else if (!strcmp(val, "printed")) *(int *)p = 1;
        else goto bad;
        return 0;
    }
    if (end == val || *end || errno) goto bad;
    return 0;
bad:
    snprintf(err, cap, "bad value '%s' for %s", val, name);
    return -1;
}

int slim_train_config_file(slim_train_config *c, const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) { snprintf(err, cap, "cannot open '%s': %s", path, strerror(errno)); return -1; }
    char line[512], e2[256];
    int ln = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        ln++;
        char *s = line, *eq;
        s[strcspn(s, "#\r\n")] = 0;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) continue;
        if (!(eq = strchr(s, '='))) {
            snprintf(err, cap, "'%s' line %d: expected key=value", path, ln);
            rc = -1;
            break;
        }
        *eq = 0;
        char *k = s, *v = eq + 1, *t = eq - 1;
        while (t >= k && (*t == ' ' || *t == '\t')) *t-- = 0;
        while (*v == ' ' || *v == '\t') v++;
        for (t = v + strlen(v) - 1; t >= v && (*t == ' ' || *t == '\t'); ) *t-- = 0;
        for (char *u = k; *u; u++) if (*u == '_') *u = '-';
        if (slim_train_config_set(c, k, v, e2, sizeof e2)) {
            snprintf(err, cap, "'%s' line %d: %s", path, ln, e2);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

int slim_train_config_check(slim_train_config *c, char *err, size_t cap)
{
    const char *why = NULL;
    if (!(c->lr > 0) || !isfinite(c->lr)) why = "lr must be positive";
    else if (!(c->lr_min >= 0) || c->lr_min > c->lr) why = "lr-min must be in [0, lr]";
    else if (c->batch < 1) why = "batch must be at least 1";
    else if (c->accum < 1) why = "accum must be at least 1";
    else if (c->steps < 1) why = "steps must be at least 1";
    else if (c->warmup < 0) why = "warmup must not be negative";
    else if (!(c->wd >= 0) || !isfinite(c->wd)) why = "wd must not be negative";
    else if (!(c->clip >= 0) || !isfinite(c->clip)) why = "clip must not be negative (0 = off)";
    else if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        why = "beta1 and beta2 must be in [0, 1)";
    else if (!(c->eps > 0)) why = "eps must be positive";
    else if (!(c->loss.tau > 0) || !isfinite(c->loss.tau)) why = "temperature must be positive";
    else if (!(c->loss.alpha >= 0 && c->loss.alpha <= 1)) why = "kd-weight must be in [0, 1]";
    else if (c->threads < 0) why = "threads must not be negative";
    else if (c->log_every < 0 || c->eval_every < 0 || c->ckpt_every < 0 || c->stop_after < 0 ||
             c->train_limit < 0)
        why = "--log-every, --eval-every, --ckpt-every, --stop-after and --train-limit must not "
              "be negative";
    if (why) { snprintf(err, cap, "%s", why); return -1; }
    int v = c->model.vocab;
    if (!v) c->model.vocab = 2;  /* vocabulary unknown yet: check the rest */
    int rc = slim_model_config_check(&c->model, err, cap);
    c->model.vocab = v;
    return rc;
}

static void format_value(const slim_train_config *c, const key *k, char *buf, size_t cap)
{
    const void *p = (const char *)c + k->off;
    switch (k->type) {
    case K_INT: snprintf(buf, cap, "%d", *(const int *)p); break;
    case K_I64: snprintf(buf, cap, "%lld", (long long)*(const int64_t *)p); break;
    case K_U64: snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case K_FLOAT: snprintf(buf, cap, "%.9g", *(const float *)p); break;
    case K_LOSS: snprintf(buf, cap, "%s", slim_loss_kind_name(*(const int *)p)); break;
    case K_TAIL: snprintf(buf, cap, "%s", slim_loss_tail_name(*(const int *)p)); break;
    case K_WEIGHT: snprintf(buf, cap, "%s", *(const int *)p ? "printed" : "text"); break;
    }
}

char *slim_train_config_text(const slim_train_config *c)
{
    size_t cap = 4096, n = 0;
    char *s = malloc(cap), v[64];
    if (!s) return NULL;
    n += snprintf(s + n, cap - n, "vocab=%d\n", c->model.vocab);
    for (size_t i = 0; i < NKEYS; i++) {
        if (!keys[i].in_text) continue;
        format_value(c, &keys[i], v, sizeof v);
        if (keys[i].in_text == 2 && !strcmp(v, "0")) continue;
        n += snprintf(s + n, cap - n, "%s=%s\n", keys[i].name, v);
    }
    return s;
}

char *slim_train_config_json(const slim_train_config *c)
{
    json_t *o = json_object();
    char v[64];
    json_object_set_new(o, "vocab", json_integer(c->model.vocab));
    for (size_t i = 0; i < NKEYS; i++) {
        format_value(c, &keys[i], v, sizeof v);
        int t = keys[i].type;
        json_t *j = t == K_LOSS || t == K_TAIL || t == K_WEIGHT ? json_string(v)
                    : t == K_FLOAT ? json_real(strtod(v, NULL)) : json_integer(strtoll(v, NULL, 10));
        json_object_set_new(o, keys[i].name, j);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    return s;
}

float slim_train_lr(const slim_train_config *c, int64_t t)
{
    if (t <= c->warmup) return c->lr * (float)t / (float)(c->warmup ? c->warmup : 1);
    int64_t span = c->steps - c->warmup;
    double prog = span > 0 ? (double)(t - c->warmup) / span : 1.0;
    if (prog > 1) prog = 1;
    return (float)(c->lr_min + 0.5 * (c->lr - c->lr_min) * (1 + cos(3.141592653589793 * prog)));
}
