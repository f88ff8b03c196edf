/*  tf_journal.h -- the sink's commit journal for --journal / --resume.

    An append-only text file: a header line, then one record per output
    flush, "C <next> <offset> <failed>\n": every result of an item below
    <next> is in the output file, which is exactly <offset> bytes long at
    that point, and <failed> of the items below <next> failed (they have no
    result). A record is written only after the output bytes it counts were
    written, so after a crash (SIGKILL at any moment) the last complete
    record tells how far to cut the output back, where to resume, and how
    many failures the resumed run inherits. A torn last line is ignored.
    Journals of version 1 (records without <failed>) are read as having
    no failures.
*/
#ifndef TF_JOURNAL_H_INCLUDED
#define TF_JOURNAL_H_INCLUDED

#include "tf_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t next;   //  first item not committed
    uint64_t offset; //  output length holding exactly the committed items
    uint64_t failed; //  items below `next` that failed (no output)
} tf_journal_state_t;

typedef struct _tf_journal_t tf_journal_t;

//  Reads the last complete record of `path` into *state. A missing file is
//  an empty state. Returns -1 with a one-line error for a file that is not a
//  journal.
int tf_journal_read(const char *path, tf_journal_state_t *state, char *err, size_t errlen);
//  Opens `path` afresh (rewritten with a header and `state` as its first
//  record). Returns NULL with a one-line error.
tf_journal_t *tf_journal_open(const char *path, const tf_journal_state_t *state, char *err,
                              size_t errlen);
//  Appends a record (none if nothing changed). Returns 0, or -1 with errno.
int tf_journal_commit(tf_journal_t *self, const tf_journal_state_t *state);
void tf_journal_close(tf_journal_t **self_p);

#ifdef __cplusplus
}
#endif
#endif
