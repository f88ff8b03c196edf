/*  tf_proc.c -- child processes for workers. */
#define _GNU_SOURCE
#include "tf_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

static bool s_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *tf_proc_which(const char *cmd)
{
    if (!cmd || !*cmd) {
        errno = ENOENT;
        return NULL;
    }
    if (strchr(cmd, '/')) {
        if (!s_executable(cmd)) {
            if (errno != EACCES)
                errno = ENOENT;
            return NULL;
        }
        return tf_strdup(cmd);
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    size_t clen = strlen(cmd);
    const char *p = path;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        char *full = malloc(dlen + clen + 3);
        if (!full)
            return NULL;
        if (dlen == 0)
            snprintf(full, dlen + clen + 3, "./%s", cmd);
        else
            snprintf(full, dlen + clen + 3, "%.*s/%s", (int)dlen, p, cmd);
        if (s_executable(full))
            return full;
        free(full);
        if (!colon)
            break;
        p = colon + 1;
    }
    errno = ENOENT;
    return NULL;
}

pid_t tf_proc_spawn(const char *path, char *const argv[], int in_fd, int out_fd,
                    tf_spawn_group_t group)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    pid_t pid = -1;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc)
        goto fail_fa;
    rc = posix_spawnattr_init(&attr);
    if (rc)
        goto fail_attr;
    if (in_fd != STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO);
    if (out_fd != STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
#ifdef POSIX_SPAWN_SETSID
    if (group == TF_SPAWN_SESSION)
        flags |= POSIX_SPAWN_SETSID;
    else
#endif
        if (group != TF_SPAWN_OURS) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&attr, 0);
    }
    posix_spawnattr_setflags(&attr, flags);
    rc = posix_spawn(&pid, path, &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
fail_attr:
    posix_spawn_file_actions_destroy(&fa);
fail_fa:
    if (rc) {
        errno = rc;
        return -1;
    }
    return pid;
}

int tf_proc_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#else
    TF_UNUSED(pid);
    return -1;
#endif
}

void tf_proc_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

int tf_pty_open(int *master, int *slave)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return -1;
    char name[128];
    if (grantpt(m) || unlockpt(m) || ptsname_r(m, name, sizeof name)) {
        int e = errno;
        close(m);
        errno = e;
        return -1;
    }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        int e = errno;
        close(m);
        errno = e;
        return -1;
    }
    struct termios tio;
    if (tcgetattr(s, &tio) == 0) {
        cfmakeraw(&tio);
        tio.c_cc[VMIN] = 1;
        tio.c_cc[VTIME] = 0;
        tcsetattr(s, TCSANOW, &tio);
    }
    *master = m;
    *slave = s;
    return 0;
}

bool tf_proc_has_braces(char *const tmpl[], int argc)
{
    for (int i = 0; i < argc; i++)
        if (strstr(tmpl[i], "{}"))
            return true;
    return false;
}

void tf_proc_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

char **tf_proc_argv(char *const tmpl[], int argc, const uint8_t *item, size_t len)
{
    char **argv = calloc((size_t)argc + 1, sizeof(char *));
    if (!argv) {
        errno = ENOMEM;
        return NULL;
    }
    bool nul = memchr(item ? (const void *)item : "", 0, len) != NULL;
    for (int i = 0; i < argc; i++) {
        const char *t = tmpl[i];
        size_t count = 0;
        for (const char *p = strstr(t, "{}"); p; p = strstr(p + 2, "{}"))
            count++;
        if (count && nul) {
            tf_proc_argv_free(argv);
            errno = EINVAL;
            return NULL;
        }
        size_t tlen = strlen(t);
        size_t n = tlen - 2 * count + count * len;
        char *out = malloc(n + 1);
        if (!out) {
            tf_proc_argv_free(argv);
            errno = ENOMEM;
            return NULL;
        }
        char *o = out;
        const char *p = t;
        for (const char *hit = strstr(p, "{}"); hit; hit = strstr(p, "{}")) {
            memcpy(o, p, (size_t)(hit - p));
            o += hit - p;
            if (len)
                memcpy(o, item, len);
            o += len;
            p = hit + 2;
        }
        memcpy(o, p, strlen(p) + 1);
        argv[i] = out;
    }
    return argv;
}
