/*
 * storesrc.h — a slim_tsrc over the members of a store snapshot.
 */
#ifndef SLIM_STORESRC_H
#define SLIM_STORESRC_H

#include "data.h"
#include "slim.h"

/* Members of `split` (SLIM_SPLIT_TRAIN / SLIM_SPLIT_VALID, -1 = all) of an
 * open snapshot.  vocab and kind come from the member datasets, which must
 * agree (SLIM_EMISMATCH otherwise, message in err).  st and snap must
 * outlive the source. */
int slim_storesrc_new(slim_tsrc *out, slim_store *st, const slim_snapshot *snap, int split,
                      char *err, size_t cap);
void slim_storesrc_free(slim_tsrc *src);

/* Keep only the first n members (in snapshot order) of a source made by
 * slim_storesrc_new: slim-train --train-limit, so one snapshot serves several
 * data sizes with the same held-out split.  n = 0 or n >= src->n keeps all. */
void slim_storesrc_limit(slim_tsrc *src, size_t n);

#endif
