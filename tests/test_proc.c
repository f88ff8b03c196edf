/*  test_proc.c -- child processes: PATH lookup, {} substitution, spawn,
    raw pseudo-terminals, pidfds. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "tf_proc.h"

static char s_dir[64];

static void s_mkdir(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/tf_test_proc_XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
}

static void s_rmdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    cr_assert_eq(system(cmd), 0);
}

static void s_make_file(const char *path, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs("#!/bin/sh\nexit 0\n", f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(path, mode), 0);
}

//  A pipe whose ends are not inherited by children (they get dup2'd ends).
static void s_pipe(int fds[2])
{
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(fcntl(fds[0], F_SETFD, FD_CLOEXEC), 0);
    cr_assert_eq(fcntl(fds[1], F_SETFD, FD_CLOEXEC), 0);
}

static int s_wait(pid_t pid)
{
    int status = 0;
    pid_t r;
    do
        r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    cr_assert_eq(r, pid, "waitpid: %s", strerror(errno));
    return status;
}

//  Reads until `want` bytes arrived or `ms` passed without any; returns count.
static size_t s_read_for(int fd, char *buf, size_t cap, size_t want, int ms)
{
    size_t got = 0;
    while (got < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, got >= want ? 50 : ms);
        if (r <= 0)
            break;
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

//  --------------------------------------------------------------------------
//  tf_proc_which

Test(proc, which_absolute_path)
{
    char *p = tf_proc_which("/bin/sh");
    cr_assert_not_null(p);
    cr_assert_str_eq(p, "/bin/sh");
    free(p);
    errno = 0;
    cr_assert_null(tf_proc_which("/no/such/program"));
    cr_assert_eq(errno, ENOENT);
    errno = 0;
    cr_assert_null(tf_proc_which(""));
    cr_assert_eq(errno, ENOENT);
    errno = 0;
    cr_assert_null(tf_proc_which(NULL));
    cr_assert_eq(errno, ENOENT);
    //  A directory is not an executable.
    cr_assert_null(tf_proc_which("/tmp"));
    cr_assert(errno == ENOENT || errno == EACCES);
}

Test(proc, which_not_executable, .init = s_mkdir, .fini = s_rmdir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/plain", s_dir);
    s_make_file(path, 0644);
    errno = 0;
    cr_assert_null(tf_proc_which(path));
    cr_assert_eq(errno, EACCES);
    //  Relative paths with a slash are not looked up in PATH.
    cr_assert_eq(chdir(s_dir), 0);
    cr_assert_null(tf_proc_which("./plain"));
    cr_assert_eq(errno, EACCES);
    s_make_file(path, 0755);
    char *p = tf_proc_which("./plain");
    cr_assert_not_null(p);
    cr_assert_str_eq(p, "./plain");
    free(p);
}

Test(proc, which_path_lookup, .init = s_mkdir, .fini = s_rmdir)
{
    //  d1/tool is a directory, d2/tool is not executable, d3/tool is the one.
    char d1[96], d2[96], d3[96], path[128], env[400];
    snprintf(d1, sizeof d1, "%s/d1", s_dir);
    snprintf(d2, sizeof d2, "%s/d2", s_dir);
    snprintf(d3, sizeof d3, "%s/d3", s_dir);
    cr_assert_eq(mkdir(d1, 0755), 0);
    cr_assert_eq(mkdir(d2, 0755), 0);
    cr_assert_eq(mkdir(d3, 0755), 0);
    snprintf(path, sizeof path, "%s/tool", d1);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/tool", d2);
    s_make_file(path, 0644);
    snprintf(path, sizeof path, "%s/tool", d3);
    s_make_file(path, 0755);
    snprintf(env, sizeof env, "/no/such/dir:%s:%s:%s:/bin", d1, d2, d3);
    cr_assert_eq(setenv("PATH", env, 1), 0);
    char *p = tf_proc_which("tool");
    cr_assert_not_null(p);
    cr_assert_str_eq(p, path);
    free(p);
    p = tf_proc_which("sh");
    cr_assert_not_null(p);
    cr_assert_str_eq(p, "/bin/sh");
    free(p);
    errno = 0;
    cr_assert_null(tf_proc_which("tf-no-such-program"));
    cr_assert_eq(errno, ENOENT);
    //  Only the non-executable one left: not found.
    snprintf(env, sizeof env, "%s:%s", d1, d2);
    cr_assert_eq(setenv("PATH", env, 1), 0);
    errno = 0;
    cr_assert_null(tf_proc_which("tool"));
    cr_assert(errno == ENOENT || errno == EACCES);
    //  An empty PATH element is the current directory.
    cr_assert_eq(chdir(d3), 0);
    cr_assert_eq(setenv("PATH", "/no/such/dir::/bin", 1), 0);
    p = tf_proc_which("tool");
    cr_assert_not_null(p);
    cr_assert_str_eq(p, "./tool");
    free(p);
    //  No PATH at all: the default search path.
    cr_assert_eq(unsetenv("PATH"), 0);
    p = tf_proc_which("sh");
    cr_assert_not_null(p);
    cr_assert(strcmp(p, "/usr/bin/sh") == 0 || strcmp(p, "/bin/sh") == 0, "%s", p);
    free(p);
}

//  --------------------------------------------------------------------------
//  tf_proc_argv

typedef struct {
    const char *name;
    const char *tmpl[4];
    int argc;
    const char *item;
    size_t len;
    const char *want[4];
} s_argv_case_t;

#define ITEM(s) (s), sizeof(s) - 1

static const s_argv_case_t s_argv_cases[] = {
    {"no braces", {"echo", "hello"}, 2, ITEM("x"), {"echo", "hello"}},
    {"one", {"echo", "{}"}, 2, ITEM("abc"), {"echo", "abc"}},
    {"several in one arg", {"cmd", "a{}b{}c{}"}, 2, ITEM("X"), {"cmd", "aXbXcX"}},
    {"in several args", {"cmd", "{}", "-o", "{}.out"}, 4, ITEM("f"), {"cmd", "f", "-o", "f.out"}},
    {"adjacent", {"cmd", "{}{}"}, 2, ITEM("ab"), {"cmd", "abab"}},
    {"empty item", {"cmd", "{}", "pre-{}-post"}, 3, ITEM(""), {"cmd", "", "pre--post"}},
    {"program name", {"{}", "x"}, 2, ITEM("prog"), {"prog", "x"}},
    {"not braces", {"cmd", "{", "}", "{ }"}, 4, ITEM("Z"), {"cmd", "{", "}", "{ }"}},
    {"nested", {"cmd", "{{}}", "}{}{", "{}}"}, 4, ITEM("Z"), {"cmd", "{Z}", "}Z{", "Z}"}},
    {"braces in the item", {"cmd", "{}"}, 2, ITEM("{}"), {"cmd", "{}"}},
    {"shell characters", {"cmd", "{}"}, 2, ITEM("a b'c\"$(x);\n*"), {"cmd", "a b'c\"$(x);\n*"}},
    {"UTF-8 and binary",
     {"cmd", "<{}>"},
     2,
     ITEM("\xc3\xa9\xff\x01"),
     {"cmd", "<\xc3\xa9\xff\x01>"}},
    {"NUL item, no braces", {"cat", "-n"}, 2, ITEM("a\0b"), {"cat", "-n"}},
    {"no args", {NULL}, 0, ITEM("x"), {NULL}},
};

Test(proc, argv_substitution)
{
    for (size_t i = 0; i < sizeof s_argv_cases / sizeof s_argv_cases[0]; i++) {
        const s_argv_case_t *c = &s_argv_cases[i];
        char *tmpl[5] = {NULL};
        for (int k = 0; k < c->argc; k++)
            tmpl[k] = tf_strdup(c->tmpl[k]);
        char **argv = tf_proc_argv(tmpl, c->argc, (const uint8_t *)c->item, c->len);
        cr_assert_not_null(argv, "%s: NULL (%s)", c->name, strerror(errno));
        for (int k = 0; k < c->argc; k++) {
            cr_assert_not_null(argv[k], "%s: arg %d missing", c->name, k);
            cr_assert_str_eq(argv[k], c->want[k], "%s: arg %d is '%s', expected '%s'", c->name, k,
                             argv[k], c->want[k]);
        }
        cr_assert_null(argv[c->argc], "%s: not NULL-terminated", c->name);
        tf_proc_argv_free(argv);
        for (int k = 0; k < c->argc; k++)
            free(tmpl[k]);
    }
    tf_proc_argv_free(NULL);
}

Test(proc, argv_nul_item_rejected)
{
    char a0[] = "echo", a1[] = "x", a2[] = "[{}]";
    char *tmpl[] = {a0, a1, a2, NULL};
    errno = 0;
    cr_assert_null(tf_proc_argv(tmpl, 3, (const uint8_t *)"a\0b", 3));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(tf_proc_argv(tmpl, 3, (const uint8_t *)"\0", 1));
    cr_assert_eq(errno, EINVAL);
    //  NULL item of length 0 is the empty item.
    char **argv = tf_proc_argv(tmpl, 3, NULL, 0);
    cr_assert_not_null(argv);
    cr_assert_str_eq(argv[2], "[]");
    tf_proc_argv_free(argv);
}

Test(proc, has_braces)
{
    char a[] = "echo", b[] = "x{}y", c[] = "{", d[] = "}{";
    char *t1[] = {a, b};
    char *t2[] = {a, c, d};
    cr_assert(tf_proc_has_braces(t1, 2));
    cr_assert_not(tf_proc_has_braces(t1, 1));
    cr_assert_not(tf_proc_has_braces(t2, 3));
    cr_assert_not(tf_proc_has_braces(t2, 0));
}

//  --------------------------------------------------------------------------
//  tf_proc_spawn

Test(proc, spawn_exit_status)
{
    int in[2], out[2];
    s_pipe(in);
    s_pipe(out);
    char a0[] = "/bin/sh", a1[] = "-c", a2[] = "exit 3";
    char *argv[] = {a0, a1, a2, NULL};
    pid_t pid = tf_proc_spawn("/bin/sh", argv, in[0], out[1], TF_SPAWN_GROUP);
    cr_assert_gt(pid, 0, "spawn: %s", strerror(errno));
    close(in[0]);
    close(out[1]);
    int status = s_wait(pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 3);
    //  Its stdout was our pipe: EOF, nothing written.
    char buf[8];
    cr_assert_eq(read(out[0], buf, sizeof buf), 0);
    close(in[1]);
    close(out[0]);
}

Test(proc, spawn_stdin_stdout)
{
    int in[2], out[2];
    s_pipe(in);
    s_pipe(out);
    char a0[] = "sh", a1[] = "-c", a2[] = "tr a-z A-Z; echo done";
    char *argv[] = {a0, a1, a2, NULL};
    pid_t pid = tf_proc_spawn("/bin/sh", argv, in[0], out[1], TF_SPAWN_GROUP);
    cr_assert_gt(pid, 0);
    close(in[0]);
    close(out[1]);
    cr_assert_eq(write(in[1], "hello\n", 6), 6);
    close(in[1]);
    char buf[64];
    size_t n = s_read_for(out[0], buf, sizeof buf, 11, 5000);
    cr_assert_eq(n, 11);
    cr_assert_eq(memcmp(buf, "HELLO\ndone\n", 11), 0);
    int status = s_wait(pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0);
    close(out[0]);
}

Test(proc, spawn_missing_program)
{
    char a0[] = "nothing";
    char *argv[] = {a0, NULL};
    errno = 0;
    cr_assert_eq(
        tf_proc_spawn("/no/such/program", argv, STDIN_FILENO, STDOUT_FILENO, TF_SPAWN_GROUP), -1);
    cr_assert_eq(errno, ENOENT);
}

Test(proc, spawn_resets_signals)
{
    //  The parent ignores SIGTERM and blocks SIGUSR1; the child must not
    //  inherit either, so it dies of the signal it sends itself.
    cr_assert_neq(signal(SIGTERM, SIG_IGN), SIG_ERR);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    cr_assert_eq(sigprocmask(SIG_BLOCK, &set, NULL), 0);
    static const struct {
        const char *script;
        int sig;
    } cases[] = {{"kill -TERM $$; exit 0", SIGTERM}, {"kill -USR1 $$; exit 0", SIGUSR1}};
    for (size_t i = 0; i < 2; i++) {
        char a0[] = "sh", a1[] = "-c";
        char *argv[] = {a0, a1, tf_strdup(cases[i].script), NULL};
        pid_t pid = tf_proc_spawn("/bin/sh", argv, STDIN_FILENO, STDOUT_FILENO, TF_SPAWN_GROUP);
        free(argv[2]);
        cr_assert_gt(pid, 0);
        int status = s_wait(pid);
        cr_assert(WIFSIGNALED(status), "%s: exited with %d", cases[i].script,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        cr_assert_eq(WTERMSIG(status), cases[i].sig);
    }
}

Test(proc, spawn_process_group_and_session)
{
    static const tf_spawn_group_t modes[] = {TF_SPAWN_GROUP, TF_SPAWN_SESSION, TF_SPAWN_OURS};
    for (int m = 0; m < 3; m++) {
        int in[2];
        s_pipe(in);
        char a0[] = "cat";
        char *argv[] = {a0, NULL};
        pid_t pid = tf_proc_spawn("/bin/cat", argv, in[0], STDOUT_FILENO, modes[m]);
        cr_assert_gt(pid, 0);
        close(in[0]);
        //  The child leads its own group (and session, when asked), or
        //  stays in ours.
        if (modes[m] == TF_SPAWN_OURS)
            cr_assert_eq(getpgid(pid), getpgrp());
        else
            cr_assert_eq(getpgid(pid), pid);
        if (modes[m] == TF_SPAWN_SESSION)
            cr_assert_eq(getsid(pid), pid);
        else
            cr_assert_eq(getsid(pid), getsid(0));
        close(in[1]); //  EOF: cat exits
        int status = s_wait(pid);
        cr_assert(WIFEXITED(status));
        cr_assert_eq(WEXITSTATUS(status), 0);
    }
}

Test(proc, kill_whole_group)
{
    //  We adopt orphans, so that the grandchild can be waited for too.
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    int out[2];
    s_pipe(out);
    char a0[] = "sh", a1[] = "-c", a2[] = "sleep 30 & echo $!; wait";
    char *argv[] = {a0, a1, a2, NULL};
    pid_t pid = tf_proc_spawn("/bin/sh", argv, STDIN_FILENO, out[1], TF_SPAWN_GROUP);
    cr_assert_gt(pid, 0);
    close(out[1]);
    char buf[32] = "";
    size_t n = s_read_for(out[0], buf, sizeof buf - 1, 2, 5000);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    pid_t grandchild = (pid_t)atoi(buf);
    cr_assert_gt(grandchild, 1);
    tf_proc_kill(pid);
    int status = s_wait(pid);
    cr_assert(WIFSIGNALED(status));
    cr_assert_eq(WTERMSIG(status), SIGKILL);
    status = s_wait(grandchild);
    cr_assert(WIFSIGNALED(status));
    cr_assert_eq(WTERMSIG(status), SIGKILL);
    close(out[0]);
}

//  --------------------------------------------------------------------------
//  Pseudo-terminals and pidfds

//  A machine without pseudo-terminal support skips (visibly), any other
//  failure fails.
static void s_pty_open(int *m, int *s)
{
    if (tf_pty_open(m, s) == 0)
        return;
    int e = errno;
    if (e == ENOENT || e == ENODEV || e == ENXIO)
        cr_skip_test("no pseudo-terminals here: %s", strerror(e));
    cr_assert_fail("tf_pty_open: %s", strerror(e));
}

Test(proc, pty_raw_mode)
{
    int m = -1, s = -1;
    s_pty_open(&m, &s);
    struct termios tio;
    cr_assert_eq(tcgetattr(s, &tio), 0);
    cr_assert_eq(tio.c_lflag & (ECHO | ICANON | ISIG | IEXTEN), 0);
    cr_assert_eq(tio.c_oflag & OPOST, 0);
    cr_assert_eq(tio.c_iflag & (ICRNL | INLCR | IGNCR | IXON | ISTRIP), 0);
    cr_assert_eq(tio.c_cflag & CSIZE, CS8);
    cr_assert_eq(tio.c_cc[VMIN], 1);
    cr_assert_eq(fcntl(m, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    cr_assert_eq(fcntl(s, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

    char a0[] = "cat";
    char *argv[] = {a0, NULL};
    pid_t pid = tf_proc_spawn("/bin/cat", argv, s, s, TF_SPAWN_SESSION);
    cr_assert_gt(pid, 0, "spawn: %s", strerror(errno));
    close(s);
    //  LF, CR LF, ^C and ^D go through untouched: no echo, no CR/LF
    //  mapping, no signal, no end-of-file.
    const char sent[] = "a\nb\r\n\x03\x04";
    const size_t len = sizeof sent - 1;
    cr_assert_eq(write(m, sent, len), (ssize_t)len);
    char got[64];
    size_t n = s_read_for(m, got, sizeof got, len, 5000);
    cr_assert_eq(n, len, "read back %zu bytes, expected %zu", n, len);
    cr_assert_eq(memcmp(got, sent, len), 0, "bytes differ");
    //  cat is still running (^C did not kill it, ^D did not end it).
    cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0);
    tf_proc_kill(pid);
    int status = s_wait(pid);
    cr_assert(WIFSIGNALED(status));
    cr_assert_eq(WTERMSIG(status), SIGKILL);
    close(m);
}

Test(proc, pty_binary_round_trip)
{
    //  Every byte value survives the terminal both ways.
    int m = -1, s = -1;
    s_pty_open(&m, &s);
    char a0[] = "cat";
    char *argv[] = {a0, NULL};
    pid_t pid = tf_proc_spawn("/bin/cat", argv, s, s, TF_SPAWN_SESSION);
    cr_assert_gt(pid, 0);
    close(s);
    char sent[256];
    for (int i = 0; i < 256; i++)
        sent[i] = (char)i;
    cr_assert_eq(write(m, sent, sizeof sent), (ssize_t)sizeof sent);
    char got[512];
    size_t n = s_read_for(m, got, sizeof got, sizeof sent, 5000);
    cr_assert_eq(n, sizeof sent);
    cr_assert_eq(memcmp(got, sent, sizeof sent), 0);
    tf_proc_kill(pid);
    s_wait(pid);
    close(m);
}

Test(proc, pidfd_readable_on_exit)
{
    int in[2];
    s_pipe(in);
    char a0[] = "cat";
    char *argv[] = {a0, NULL};
    pid_t pid = tf_proc_spawn("/bin/cat", argv, in[0], STDOUT_FILENO, TF_SPAWN_GROUP);
    cr_assert_gt(pid, 0);
    close(in[0]);
    int fd = tf_proc_pidfd(pid);
    if (fd < 0) {
        close(in[1]);
        s_wait(pid);
        cr_skip_test("no pidfd_open on this kernel (%s)", strerror(errno));
    }
    cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    struct pollfd p = {fd, POLLIN, 0};
    cr_assert_eq(poll(&p, 1, 0), 0, "readable while the child runs");
    close(in[1]); //  cat sees EOF and exits
    p.revents = 0;
    cr_assert_eq(poll(&p, 1, 5000), 1);
    cr_assert(p.revents & POLLIN);
    int status = s_wait(pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0);
    close(fd);
}
