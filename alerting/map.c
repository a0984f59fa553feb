/* A small open-addressing hash map from byte-string keys to pointers
 * (linear probing, backward-shift deletion, no tombstones). Lookups take
 * the key as pointer and length, so the ingest thread looks up strings
 * that point into a datagram without copying them. */
#include "alert_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t amap_hash(const void *p, size_t len, uint64_t seed)
{
    /* FNV-1a, then a final mix so low bits are usable as an index. */
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static bool ent_is(const struct amap_ent *e, const void *key, size_t klen, uint64_t h)
{
    return e->key && e->h == h && e->klen == klen && memcmp(e->key, key, klen) == 0;
}

void *amap_get(const struct amap *m, const void *key, size_t klen, uint64_t h)
{
    if (!m->cap) return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const struct amap_ent *e = &m->e[i];
        if (!e->key) return NULL;
        if (ent_is(e, key, klen, h)) return e->val;
    }
}

static int grow(struct amap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    struct amap_ent *ne = calloc(ncap, sizeof *ne);
    if (!ne) return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->e[i].key) continue;
        size_t j = m->e[i].h & (ncap - 1);
        while (ne[j].key) j = (j + 1) & (ncap - 1);
        ne[j] = m->e[i];
    }
    free(m->e);
    m->e = ne;
    m->cap = ncap;
    return 0;
}

int amap_put(struct amap *m, const void *key, size_t klen, uint64_t h, void *val)
{
    if ((m->n + 1) * 4 > m->cap * 3 && grow(m)) return -ENOMEM; /* load <= 3/4 */
    char *k = malloc(klen + 1);
    if (!k) return -ENOMEM;
    memcpy(k, key, klen);
    k[klen] = '\0';
    size_t i = h & (m->cap - 1);
    while (m->e[i].key) i = (i + 1) & (m->cap - 1);
    m->e[i] = (struct amap_ent){h, k, klen, val};
    m->n++;
    return 0;
}

void *amap_del(struct amap *m, const void *key, size_t klen, uint64_t h)
{
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1, i = h & mask;
    while (m->e[i].key && !ent_is(&m->e[i], key, klen, h)) i = (i + 1) & mask;
    if (!m->e[i].key) return NULL;
    void *val = m->e[i].val;
    free(m->e[i].key);
    /* Shift back the entries after i that would not be found past the hole. */
    for (size_t j = (i + 1) & mask; m->e[j].key; j = (j + 1) & mask) {
        size_t home = m->e[j].h & mask;
        bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->e[i] = m->e[j];
            i = j;
        }
    }
    m->e[i] = (struct amap_ent){0};
    m->n--;
    return val;
}

void amap_free(struct amap *m)
{
    for (size_t i = 0; i < m->cap; i++) free(m->e[i].key);
    free(m->e);
    memset(m, 0, sizeof *m);
}
