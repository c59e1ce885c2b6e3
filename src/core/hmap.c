#include "hmap.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

_Static_assert(HMAP_KEYBYTES == crypto_shorthash_KEYBYTES, "hmap key is a SipHash-2-4 key");

static char tombstone_key[1];
#define TOMBSTONE (tombstone_key)

/* libsodium must be initialised once before randombytes_buf (sodium_init is idempotent and
 * thread-safe; the server calls it at start too). */
static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void sodium_start(void)
{
    if (sodium_init() < 0)
        abort(); /* no random source: nothing in the process can be keyed */
}

static void draw_key(hmap_t *m)
{
    pthread_once(&sodium_once, sodium_start);
    randombytes_buf(m->key, sizeof m->key);
    m->keyed = 1;
}

/* SipHash-2-4 (crypto_shorthash): a PRF under the map's random key, so an attacker who picks the
 * keys (ids, addresses) cannot aim them at one probe chain, even adaptively. */
static uint64_t hash(const hmap_t *m, const char *s)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;
    crypto_shorthash(out, (const unsigned char *)s, strlen(s), m->key);
    memcpy(&h, out, sizeof h);
    return h;
}

uint64_t hmap_hash(hmap_t *m, const char *key)
{
    if (!m->keyed)
        draw_key(m);
    return hash(m, key);
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
    for (size_t i = hash(m, key) & mask;; i = (i + 1) & mask) {
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
        size_t j = hash(m, old[i].key) & mask;
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
    if (!m->keyed)
        draw_key(m);
    if ((m->used + 1) * 4 >= m->cap * 3)
        grow(m);
    size_t mask = m->cap - 1;
    size_t i = hash(m, key) & mask;
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
