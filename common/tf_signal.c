/*  tf_signal.c -- SIGINT/SIGTERM handling shared by every component. */
#include "tf_signal.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

volatile sig_atomic_t tf_signal_count = 0;
static int s_pipe[2] = {-1, -1};

//  Children to kill on a hard stop: the commands and co-processes a worker
//  runs (each leads its own process group). Written by the owning thread
//  only; read by the handler.
#define S_MAX_TRACKED 1024
static volatile pid_t s_tracked[S_MAX_TRACKED];

void tf_signal_track(pid_t pid)
{
    for (int i = 0; i < S_MAX_TRACKED; i++)
        if (s_tracked[i] == 0) {
            s_tracked[i] = pid;
            return;
        }
}

void tf_signal_untrack(pid_t pid)
{
    for (int i = 0; i < S_MAX_TRACKED; i++)
        if (s_tracked[i] == pid)
            s_tracked[i] = 0;
}

void tf_signal_hold(sigset_t *saved)
{
    sigset_t hard;
    sigemptyset(&hard);
    sigaddset(&hard, SIGINT);
    sigaddset(&hard, SIGTERM);
    sigaddset(&hard, TF_SIGNAL_PARENT_GONE);
    pthread_sigmask(SIG_BLOCK, &hard, saved);
}

void tf_signal_release(const sigset_t *saved)
{
    pthread_sigmask(SIG_SETMASK, saved, NULL);
}

static char s_cleanup[TF_SIGNAL_MAX_CLEANUP][PATH_MAX];
static pid_t s_parent; //  tf_signal_die_with_parent: the parent whose death we watch
static char s_owned[TF_SIGNAL_MAX_CLEANUP][PATH_MAX];

//  Sets a list the handler reads; signals are held meanwhile, so that the
//  handler never reads one half written.
static int s_paths_set(char list[][PATH_MAX], const char *const paths[], int n)
{
    if (n > TF_SIGNAL_MAX_CLEANUP)
        return -1;
    for (int i = 0; i < n; i++)
        if (strlen(paths[i]) >= PATH_MAX)
            return -1;
    sigset_t held;
    tf_signal_hold(&held);
    for (int i = 0; i < TF_SIGNAL_MAX_CLEANUP; i++)
        snprintf(list[i], PATH_MAX, "%s", i < n ? paths[i] : "");
    tf_signal_release(&held);
    return 0;
}

//  Async-signal-safe: unlink, or rmdir for a directory; errors ignored
//  (several processes may race here, and all but one find nothing left).
static void s_paths_remove(char list[][PATH_MAX])
{
    for (int i = 0; i < TF_SIGNAL_MAX_CLEANUP && list[i][0]; i++)
        if (unlink(list[i]) != 0)
            rmdir(list[i]);
}

pid_t tf_signal_die_with_parent(void)
{
    sigset_t held;
    tf_signal_hold(&held); //  its signal is handled once the parent is noted
    prctl(PR_SET_PDEATHSIG, TF_SIGNAL_PARENT_GONE);
    s_parent = getppid();
    tf_signal_release(&held);
    return s_parent;
}

int tf_signal_cleanup_on_parent_gone(const char *const paths[], int n)
{
    return s_paths_set(s_cleanup, paths, n);
}

int tf_signal_cleanup_on_hard_stop(const char *const paths[], int n)
{
    return s_paths_set(s_owned, paths, n);
}

//  Async-signal-safe: kill what we started, then leave.
static void s_hard_stop(const char *why, size_t len)
{
    for (int i = 0; i < S_MAX_TRACKED; i++) {
        pid_t pid = s_tracked[i];
        if (pid > 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
        }
    }
    s_paths_remove(s_owned);
    ssize_t rc = write(STDERR_FILENO, why, len);
    (void)rc;
    _exit(130);
}

static void s_handler(int sig, siginfo_t *info, void *context)
{
    (void)context;
    if (sig == TF_SIGNAL_PARENT_GONE) {
        //  The kernel sends it on the parent's behalf (PR_SET_PDEATHSIG) as
        //  the parent's thread that started us exits, after giving us a new
        //  parent: another of its threads while it has some (so getppid()
        //  may still name it), then a reaper. Anybody else may send it too:
        //  such a stray signal stops this process alone, and the parent's
        //  files stay (`run` replaces the worker). unlink, rmdir and getppid
        //  are async-signal-safe; several workers may race here, and all but
        //  one find nothing left to remove.
        //  A process with no parent to watch (`run`, a worker without
        //  --die-with-parent) is only stopped.
        bool from_parent = info && info->si_code == SI_USER && info->si_pid == s_parent;
        bool parent_gone = s_parent > 0 && (from_parent || getppid() != s_parent);
        if (!parent_gone) {
            static const char msg[] = "taskfarm: stopped by signal USR2, exiting now\n";
            s_hard_stop(msg, sizeof msg - 1);
        }
        s_paths_remove(s_cleanup);
        static const char msg[] = "taskfarm: parent gone, exiting now\n";
        s_hard_stop(msg, sizeof msg - 1);
    }
    tf_signal_count++;
    if (s_pipe[1] >= 0) {
        char one = 1;
        ssize_t rc = write(s_pipe[1], &one, 1); //  wakes a poll that raced the flag
        (void)rc;
    }
    if (tf_signal_count >= 2) {
        static const char msg[] = "taskfarm: second signal, exiting now\n";
        s_hard_stop(msg, sizeof msg - 1);
    }
}

static void s_open_pipe(void)
{
    if (s_pipe[0] >= 0) {
        close(s_pipe[0]);
        close(s_pipe[1]);
        s_pipe[0] = s_pipe[1] = -1;
    }
    if (pipe(s_pipe) == 0) {
        for (int i = 0; i < 2; i++) {
            fcntl(s_pipe[i], F_SETFL, fcntl(s_pipe[i], F_GETFL) | O_NONBLOCK);
            fcntl(s_pipe[i], F_SETFD, FD_CLOEXEC);
        }
    }
}

int tf_signal_fd(void)
{
    return s_pipe[0];
}

void tf_signal_after_fork(void)
{
    s_open_pipe();
    s_owned[0][0] = '\0'; //  the parent's, not ours
}

void tf_signal_install(void)
{
    s_open_pipe();
    setenv("ZSYS_SIGHANDLER", "false", 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = s_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(TF_SIGNAL_PARENT_GONE, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
