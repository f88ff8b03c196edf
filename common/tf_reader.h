/*  tf_reader.h -- streaming item reader: one item per line (or NUL-separated).

    Reads a file descriptor in chunks and hands out items without loading the
    input whole. Works on blocking and non-blocking descriptors. A final item
    without a terminator is still an item. An item longer than `max_item` is
    not buffered: it is skipped to its terminator and reported as TOOLONG
    with its 1-based line number, so the caller can refuse it clearly.
*/
#ifndef TF_READER_H_INCLUDED
#define TF_READER_H_INCLUDED

#include "tf_common.h"

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TF_RD_ITEM = 0,   //  an item is returned
    TF_RD_AGAIN = 1,  //  need more input: call tf_reader_fill
    TF_RD_EOF = 2,    //  input exhausted
    TF_RD_TOOLONG = 3 //  item over the limit, skipped
} tf_rd_status_t;

typedef struct _tf_reader_t tf_reader_t;

tf_reader_t *tf_reader_new(int fd, char delim, size_t max_item);
void tf_reader_destroy(tf_reader_t **self_p);

//  Reads once from the descriptor. Returns bytes read (>0), 0 at end of
//  input, -1 with errno EAGAIN when nothing is ready, -1 on error.
ssize_t tf_reader_fill(tf_reader_t *self);
//  Next item: *data points into the reader's buffer and stays valid until
//  the next call. Items are counted from 1 in *line_p.
tf_rd_status_t tf_reader_next(tf_reader_t *self, const uint8_t **data, size_t *len,
                              uint64_t *line_p);
//  Gives back the item just returned by tf_reader_next (TF_RD_ITEM only,
//  before any other call): the next call returns it again.
void tf_reader_unget(tf_reader_t *self);
bool tf_reader_eof(const tf_reader_t *self);

#ifdef __cplusplus
}
#endif
#endif
