/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A string-keyed open-addressing hash map. Written here because the only
 * well-kept C alternative is GLib, which the house style keeps out. Keys are
 * copied; values are the caller's. Iteration order is unspecified. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/macro.h"

struct hashmap;

struct hashmap *hashmap_new(void) _warn_unused_result_;
/* Frees the map; free_value (may be NULL) is called on every value. */
void hashmap_free(struct hashmap *m, void (*free_value)(void *));
/* Inserts or replaces; returns the previous value through *old (may be NULL). */
int hashmap_put(struct hashmap *m, const char *key, void *value, void **old) _warn_unused_result_;
void *hashmap_get(const struct hashmap *m, const char *key);
/* Removes and returns the value (NULL when absent). */
void *hashmap_remove(struct hashmap *m, const char *key);
size_t hashmap_size(const struct hashmap *m);
/* Iteration: for (size_t i = 0; hashmap_iter(m, &i, &key, &value);) { ... }
 * Removing the current entry during iteration is allowed. */
bool hashmap_iter(const struct hashmap *m, size_t *i, const char **key, void **value);
