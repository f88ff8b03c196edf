/*  tf_proc.h -- child processes for workers: PATH lookup, posix_spawn with
    redirected stdin/stdout, raw pseudo-terminals, pidfds, {} substitution. */
#ifndef TF_PROC_H_INCLUDED
#define TF_PROC_H_INCLUDED

#include "tf_common.h"

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Resolves `cmd` like execvp does. Caller owns the returned string; NULL
//  with errno ENOENT/EACCES when there is no such executable.
char *tf_proc_which(const char *cmd);

//  Where a spawned child runs: leading a new process group (items and
//  co-processes: tf_proc_kill reaches everything they start), a new session
//  (pty co-processes), or in our own process group (a replacement local
//  worker, like the forked ones: a terminal's Ctrl-C reaches it).
typedef enum { TF_SPAWN_GROUP, TF_SPAWN_SESSION, TF_SPAWN_OURS } tf_spawn_group_t;

//  Spawns `path` with argv, stdin from in_fd and stdout to out_fd (stderr is
//  inherited), placed as `group` says. Signal dispositions and mask are
//  reset. Returns the pid, or -1 with errno.
pid_t tf_proc_spawn(const char *path, char *const argv[], int in_fd, int out_fd,
                    tf_spawn_group_t group);

//  A pollable descriptor that becomes readable when `pid` exits, or -1 when
//  the kernel has no pidfd_open.
int tf_proc_pidfd(pid_t pid);

//  Kills the process group of `pid` (and pid itself) with SIGKILL.
void tf_proc_kill(pid_t pid);

//  Opens a pseudo-terminal pair in raw mode (no echo, no line editing, no
//  signals, no CR/LF mapping, 8-bit clean). Returns 0, or -1 with errno.
int tf_pty_open(int *master, int *slave);

//  Builds argv for one item: every "{}" in template args replaced by the
//  item. Returns a NULL-terminated array the caller frees with
//  tf_proc_argv_free, or NULL (errno EINVAL if the item has a NUL byte and
//  a {} needs it, ENOMEM otherwise).
char **tf_proc_argv(char *const tmpl[], int argc, const uint8_t *item, size_t len);
void tf_proc_argv_free(char **argv);
//  True if any template arg contains "{}".
bool tf_proc_has_braces(char *const tmpl[], int argc);

#ifdef __cplusplus
}
#endif
#endif
