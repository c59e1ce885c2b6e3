#include "hmap.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>

static char tombstone_key[1];
#define TOMBSTONE (tombstone_key)

/* FNV-1a over a per-process random basis. Keys can come from the network (remote addresses,
 * terminal ids before authentication); the random basis stops anyone from precomputing keys
 * that collide. (It is not a keyed PRF like SipHash: an attacker who can observe timing
 * adaptively could still work at it; the maps it guards are bounded in size.) */
static uint64_t basis;
static pthread_once_t basis_once = PTHREAD_ONCE_INIT;

static void basis_init(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)time_mono_ns();
    basis = 1469598103934665603ULL ^ r;
}

static uint64_t hash(const char *s)
{
    pthread_once(&basis_once, basis_init);
    uint64_t h = basis;
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
