/* String-keyed hash map (open addressing, linear probing, power-of-two capacity).
 *
 * Keys can be chosen by a peer (remote addresses, terminal ids before authentication), so slots
 * come from a keyed PRF, SipHash-2-4 (libsodium crypto_shorthash), under a random key drawn per
 * map when its first entry is inserted: nobody outside the process can compute which keys
 * collide, and two maps (or two processes) place the same key differently.
 *
 * Keys are copied into the map; values are opaque pointers owned by the caller. Not thread-safe.
 * Iteration order is unspecified; the map must not be modified while iterating except through
 * hmap_iter_remove-free patterns (collect keys first).
 */
#ifndef GS_CORE_HMAP_H
#define GS_CORE_HMAP_H

#include <stddef.h>
#include <stdint.h>

#define HMAP_KEYBYTES 16 /* crypto_shorthash_KEYBYTES (SipHash-2-4) */

typedef struct {
    char *key;
    void *value;
} hmap_slot_t;

typedef struct {
    hmap_slot_t *slots;               /* NULL key = empty; TOMBSTONE key = deleted */
    size_t cap;                       /* power of two */
    size_t count;                     /* live entries */
    size_t used;                      /* live + tombstones */
    int keyed;                        /* key below has been drawn */
    unsigned char key[HMAP_KEYBYTES]; /* SipHash key of this map, random */
} hmap_t;

/* Initialises an empty map (no allocation and no key until first insert; a zeroed hmap_t is an
 * empty map too). */
void hmap_init(hmap_t *m);
/* Frees the map's memory (keys included, values untouched). */
void hmap_free(hmap_t *m);
/* Returns the value for key or NULL. */
void *hmap_get(const hmap_t *m, const char *key);
/* Inserts or replaces; returns the previous value or NULL. */
void *hmap_put(hmap_t *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *hmap_del(hmap_t *m, const char *key);
/* Iteration: for (size_t i = 0; hmap_next(m, &i, &k, &v);) visits every entry. */
int hmap_next(const hmap_t *m, size_t *pos, const char **key, void **value);
/* The 64-bit SipHash-2-4 of key under the map's key (drawing the key first if the map has none
 * yet). Exposed for tests; slot = hash & (cap - 1). */
uint64_t hmap_hash(hmap_t *m, const char *key);

#endif
