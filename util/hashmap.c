/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Open addressing with linear probing and tombstones; grows at 70 % load. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util/hashmap.h"

#define TOMBSTONE ((char *)1)

struct hashmap {
        char **keys;
        void **values;
        uint64_t *hashes;       /* of each key: most probes end on a hash mismatch, no strcmp */
        size_t cap, size, used; /* used counts tombstones too */
};

struct hashmap *hashmap_new(void) {
        return calloc(1, sizeof(struct hashmap));
}

void hashmap_free(struct hashmap *m, void (*free_value)(void *)) {
        if (!m)
                return;
        for (size_t i = 0; i < m->cap; i++)
                if (m->keys[i] && m->keys[i] != TOMBSTONE) {
                        free(m->keys[i]);
                        if (free_value)
                                free_value(m->values[i]);
                }
        free(m->keys);
        free(m->values);
        free(m->hashes);
        free(m);
}

static uint64_t hash_of(const char *key) {
        return XXH3_64bits(key, strlen(key));
}

static size_t slot_of(const struct hashmap *m, const char *key, uint64_t h, bool *found) {
        size_t mask = m->cap - 1, i = (size_t)h & mask, first_free = SIZE_MAX;
        for (;;) {
                char *k = m->keys[i];
                if (!k) {
                        *found = false;
                        return first_free != SIZE_MAX ? first_free : i;
                }
                if (k == TOMBSTONE) {
                        if (first_free == SIZE_MAX)
                                first_free = i;
                } else if (m->hashes[i] == h && strcmp(k, key) == 0) {
                        *found = true;
                        return i;
                }
                i = (i + 1) & mask;
        }
}

static int grow(struct hashmap *m) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        if (m->size * 2 < m->cap) /* mostly tombstones: rehash at the same size */
                ncap = m->cap;
        struct hashmap n = {.cap = ncap};
        n.keys = calloc(ncap, sizeof(char *));
        n.values = calloc(ncap, sizeof(void *));
        n.hashes = calloc(ncap, sizeof(uint64_t));
        if (!n.keys || !n.values || !n.hashes) {
                free(n.keys);
                free(n.values);
                free(n.hashes);
                return -ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++) {
                if (!m->keys[i] || m->keys[i] == TOMBSTONE)
                        continue;
                bool found;
                size_t s = slot_of(&n, m->keys[i], m->hashes[i], &found);
                n.keys[s] = m->keys[i];
                n.values[s] = m->values[i];
                n.hashes[s] = m->hashes[i];
                n.size++;
                n.used++;
        }
        free(m->keys);
        free(m->values);
        free(m->hashes);
        *m = n;
        return 0;
}

int hashmap_put(struct hashmap *m, const char *key, void *value, void **old) {
        if ((m->used + 1) * 10 >= m->cap * 7) {
                int r = grow(m);
                if (r < 0)
                        return r;
        }
        bool found;
        uint64_t h = hash_of(key);
        size_t s = slot_of(m, key, h, &found);
        if (found) {
                if (old)
                        *old = m->values[s];
                m->values[s] = value;
                return 0;
        }
        char *k = strdup(key);
        if (!k)
                return -ENOMEM;
        if (!m->keys[s])
                m->used++;
        m->keys[s] = k;
        m->values[s] = value;
        m->hashes[s] = h;
        m->size++;
        if (old)
                *old = NULL;
        return 0;
}

void *hashmap_get(const struct hashmap *m, const char *key) {
        if (!m || m->cap == 0)
                return NULL;
        bool found;
        size_t s = slot_of(m, key, hash_of(key), &found);
        return found ? m->values[s] : NULL;
}

void *hashmap_remove(struct hashmap *m, const char *key) {
        if (!m || m->cap == 0)
                return NULL;
        bool found;
        size_t s = slot_of(m, key, hash_of(key), &found);
        if (!found)
                return NULL;
        void *v = m->values[s];
        free(m->keys[s]);
        m->keys[s] = TOMBSTONE;
        m->values[s] = NULL;
        m->size--;
        return v;
}

size_t hashmap_size(const struct hashmap *m) {
        return m ? m->size : 0;
}

bool hashmap_iter(const struct hashmap *m, size_t *i, const char **key, void **value) {
        for (; m && *i < m->cap; (*i)++) {
                char *k = m->keys[*i];
                if (k && k != TOMBSTONE) {
                        if (key)
                                *key = k;
                        if (value)
                                *value = m->values[*i];
                        (*i)++;
                        return true;
                }
        }
        return false;
}
