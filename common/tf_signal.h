/*  tf_signal.h -- SIGINT/SIGTERM handling shared by every component.

    The first signal asks the components to finish cleanly (stop taking
    items, flush, exit); the second exits at once with status 130. czmq's own
    handler is disabled (ZSYS_SIGHANDLER=false) so that this one is in charge.
*/
#ifndef TF_SIGNAL_H_INCLUDED
#define TF_SIGNAL_H_INCLUDED

#include <signal.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

extern volatile sig_atomic_t tf_signal_count;

//  Delivered to run's local workers when run dies (PR_SET_PDEATHSIG): a
//  hard stop, like a second SIGINT: kill the tracked children, exit.
#define TF_SIGNAL_PARENT_GONE SIGUSR2

//  Children killed (process group and pid, SIGKILL) on a hard stop.
void tf_signal_track(pid_t pid);
void tf_signal_untrack(pid_t pid);
//  Blocks the signals that can cause a hard stop (SIGINT, SIGTERM, parent
//  gone) until tf_signal_release: between starting a child and tracking
//  it, a hard stop would leave that child running.
void tf_signal_hold(sigset_t *saved);
void tf_signal_release(const sigset_t *saved);

//  Arms TF_SIGNAL_PARENT_GONE for the death of this process's parent
//  (PR_SET_PDEATHSIG) and notes that parent: the same signal from anybody
//  else then reads as a plain hard stop. Returns the parent noted (not the
//  expected one if it died before: the caller checks).
pid_t tf_signal_die_with_parent(void);
//  Paths removed when the parent noted by tf_signal_die_with_parent is gone,
//  in order (unlink, or rmdir for a directory; errors ignored): a local
//  worker cleans up after a `run` that was killed (its ipc socket files and
//  their directory). At most TF_SIGNAL_MAX_CLEANUP paths, each shorter than
//  PATH_MAX; set before the signal can arrive. Returns -1 when one does not
//  fit.
#define TF_SIGNAL_MAX_CLEANUP 8
int tf_signal_cleanup_on_parent_gone(const char *const paths[], int n);
//  Paths this process owns, removed the same way on any hard stop (a second
//  SIGINT/SIGTERM, SIGUSR2): `run` and its ipc socket files. A child forked
//  after this owns none of them (tf_signal_after_fork). Same limits.
int tf_signal_cleanup_on_hard_stop(const char *const paths[], int n);

//  Installs the handlers and ignores SIGPIPE. Call before any czmq call.
void tf_signal_install(void);
//  A descriptor that becomes readable when a signal arrives (self-pipe), so
//  that a poll cannot miss a signal that came just before it; -1 when the
//  handlers are not installed (library use).
int tf_signal_fd(void);
//  A forked child gets a pipe of its own.
void tf_signal_after_fork(void);
static inline int tf_interrupted(void)
{
    return tf_signal_count > 0;
}

#ifdef __cplusplus
}
#endif
#endif
