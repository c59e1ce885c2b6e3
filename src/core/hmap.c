#include "hmap.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char tombstone_key[1];
#define TOMBSTONE (tombstone_key)

/* FNV-1a: fast and good enough for short ids; the map is not exposed to keys chosen to collide
 * before authentication except for per-address counters, which are small. */
static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void hmap_init(hmap_t *m)
{
    memset(m, 0, sizeof *m);
}

void hmap_free(hmap_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key && m->slots[i].key != TOMBSTONE)
            free(m->slots[i].key);
    }
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static hmap_slot_t *find(const hmap_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
        hmap_slot_t *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != TOMBSTONE && strcmp(s->key, key) == 0)
            return s;
    }
}

static void grow(hmap_t *m)
{
    size_t ncap = m->cap ? m->cap : 16;
    while (m->count * 2 >= ncap)
        ncap *= 2;
    hmap_slot_t *old = m->slots;
    size_t ocap = m->cap;
    m->slots = xcalloc(ncap, sizeof *m->slots);
    m->cap = ncap;
    m->used = m->count;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].key || old[i].key == TOMBSTONE)
            continue;
        size_t mask = ncap - 1;
        size_t j = hash(old[i].key) & mask;
        while (m->slots[j].key)
            j = (j + 1) & mask;
        m->slots[j] = old[i];
    }
    free(old);
}

void *hmap_get(const hmap_t *m, const char *key)
{
    hmap_slot_t *s = find(m, key);
    return s ? s->value : NULL;
}

void *hmap_put(hmap_t *m, const char *key, void *value)
{
    hmap_slot_t *s = find(m, key);
    if (s) {
        void *prev = s->value;
        s->value = value;
        return prev;
    }
    if ((m->used + 1) * 4 >= m->cap * 3)
        grow(m);
    size_t mask = m->cap - 1;
    size_t i = hash(key) & mask;
    while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
        i = (i + 1) & mask;
    if (!m->slots[i].key)
        m->used++;
    m->slots[i].key = xstrdup(key);
    m->slots[i].value = value;
    m->count++;
    return NULL;
}

void *hmap_del(hmap_t *m, const char *key)
{
    hmap_slot_t *s = find(m, key);
    if (!s)
        return NULL;
    void *v = s->value;
    free(s->key);
    s->key = TOMBSTONE;
    s->value = NULL;
    m->count--;
    return v;
}

int hmap_next(const hmap_t *m, size_t *pos, const char **key, void **value)
{
    for (; *pos < m->cap; (*pos)++) {
        hmap_slot_t *s = &m->slots[*pos];
        if (s->key && s->key != TOMBSTONE) {
            *key = s->key;
            *value = s->value;
            (*pos)++;
            return 1;
        }
    }
    return 0;
}
