/*  tf_window.h -- the ventilator's table of items in flight.

    A ring of `capacity` slots indexed by seq % capacity. An item enters when
    it is read (state PENDING, queued for dispatch), is LEASED to a worker,
    becomes COMPLETED when the worker reports it done (awaiting the sink's
    ack), or is given up (FAILED, a SKIP to the sink awaiting ack). The sink's
    ack frees it. `base` is the oldest unacknowledged seq: no item with
    seq >= base + capacity can enter, which is what bounds every queue and
    the sink's reorder buffer. A byte budget bounds the memory held too.
*/
#ifndef TF_WINDOW_H_INCLUDED
#define TF_WINDOW_H_INCLUDED

#include "tf_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TF_ITEM_FREE = 0,
    TF_ITEM_PENDING,   //  in the dispatch queue
    TF_ITEM_LEASED,    //  sent to a worker
    TF_ITEM_COMPLETED, //  worker says done, waiting for the sink's ack
    TF_ITEM_FAILED,    //  failed for good, SKIP sent, waiting for ack
    TF_ITEM_ACKED      //  sink has it; slot freed when base passes it
} tf_item_state_t;

typedef struct {
    uint8_t *data;
    void *block; //  allocator block of data (see tf_window_set_release)
    uint32_t len;
    uint32_t attempt;  //  attempts started so far (1 for the first dispatch)
    uint32_t failures; //  attempts that failed
    uint8_t state;
    uint8_t last_status;
    uint32_t last_detail;
    int32_t worker;   //  index of the worker holding the lease, -1 none
    int64_t deadline; //  lease or ack deadline (ms), 0 = none
} tf_slot_t;

typedef struct _tf_window_t tf_window_t;

//  Creates a window of `capacity` items holding at most `max_bytes` of item
//  data. Returns NULL on allocation failure.
tf_window_t *tf_window_new(uint32_t capacity, size_t max_bytes);
void tf_window_destroy(tf_window_t **self_p);

//  Item data is released with fn(arg, block, data) instead of free(data).
typedef void(tf_window_release_fn)(void *arg, void *block, void *data);
void tf_window_set_release(tf_window_t *self, tf_window_release_fn *fn, void *arg);
//  Like tf_window_push, with the allocator block of the data.
int tf_window_push_block(tf_window_t *self, uint64_t seq, uint8_t *data, uint32_t len, void *block);

uint32_t tf_window_capacity(const tf_window_t *self);
//  True when an item of `len` bytes may enter now.
bool tf_window_has_room(const tf_window_t *self, size_t len);
//  Adds the item with the next seq, which must equal tf_window_next(). Takes
//  ownership of `data` (malloc'd, may be NULL when len is 0). Returns 0, or
//  -1 when there is no room.
int tf_window_push(tf_window_t *self, uint64_t seq, uint8_t *data, uint32_t len);
//  Marks `seq` (the next seq) as already done (resume): it enters as ACKED.
int tf_window_push_done(tf_window_t *self, uint64_t seq);
uint64_t tf_window_next(const tf_window_t *self);
uint64_t tf_window_base(const tf_window_t *self);
//  Sets base and next for a window that starts at `seq` (empty window only).
void tf_window_start_at(tf_window_t *self, uint64_t seq);
//  Items not yet acked (including pending ones).
uint64_t tf_window_inflight(const tf_window_t *self);
size_t tf_window_bytes(const tf_window_t *self);

//  Slot of a live (not acked) item, or NULL when seq is outside the window
//  or already acked.
tf_slot_t *tf_window_get(tf_window_t *self, uint64_t seq);

//  Dispatch queue: retries go to the front, new items to the back.
size_t tf_window_pending(const tf_window_t *self);
//  Pops the next pending seq. Returns false when none.
bool tf_window_pop(tf_window_t *self, uint64_t *seq_p);
//  Returns a live item to the queue (front), state PENDING, lease dropped.
void tf_window_requeue(tf_window_t *self, uint64_t seq);

//  Sink acknowledged `seq`: frees its data. Returns true if it was live.
bool tf_window_ack(tf_window_t *self, uint64_t seq);
//  The same for a slot the caller has already looked up (tf_window_get).
void tf_window_ack_slot(tf_window_t *self, uint64_t seq, tf_slot_t *slot);

//  Calls `fn` for each live item in state `state` (any live state when
//  state < 0; and of `worker`, when worker >= 0), oldest first. `fn` may requeue or ack the item.
typedef void(tf_window_fn)(void *arg, uint64_t seq, tf_slot_t *slot);
void tf_window_each(tf_window_t *self, int state, int32_t worker, tf_window_fn *fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
