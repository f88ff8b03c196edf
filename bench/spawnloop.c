/*  spawnloop.c -- the floor of "a process per item" on this machine: runs
    PROG ITEM for each input line, P at a time, greedily in input order, with
    nothing else in the way (no messages, no ordering, no retries): one
    process, posix_spawn, poll on the children's stdout, waitpid. Output is
    each child's stdout as it comes (unordered, like xargs -P).

    Usage: spawnloop P PROG < items
*/
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define S_MAX_P 64

int main(int argc, char **argv)
{
    int p = argc == 3 ? atoi(argv[1]) : 0;
    if (p < 1 || p > S_MAX_P) {
        fprintf(stderr, "usage: spawnloop P(1-%d) PROG < items\n", S_MAX_P);
        return 2;
    }
    const char *prog = argv[2];
    pid_t pid[S_MAX_P] = {0};
    int out[S_MAX_P];
    int running = 0, rc = 0;
    char *line = NULL;
    size_t cap = 0;
    int eof = 0;
    for (;;) {
        while (!eof && running < p) {
            ssize_t n = getline(&line, &cap, stdin);
            if (n < 0) {
                eof = 1;
                break;
            }
            if (n > 0 && line[n - 1] == '\n')
                line[n - 1] = '\0';
            int fds[2];
            if (pipe2(fds, O_CLOEXEC))
                return 2;
            posix_spawn_file_actions_t fa;
            posix_spawn_file_actions_init(&fa);
            posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
            char *av[] = {(char *)prog, line, NULL};
            int s = 0;
            while (pid[s])
                s++;
            if (posix_spawn(&pid[s], prog, &fa, NULL, av, environ)) {
                perror("spawnloop: posix_spawn");
                return 2;
            }
            posix_spawn_file_actions_destroy(&fa);
            close(fds[1]);
            out[s] = fds[0];
            running++;
        }
        if (!running)
            break;
        struct pollfd pfd[S_MAX_P];
        int slot[S_MAX_P], k = 0;
        for (int s = 0; s < S_MAX_P; s++)
            if (pid[s]) {
                pfd[k] = (struct pollfd){out[s], POLLIN, 0};
                slot[k++] = s;
            }
        if (poll(pfd, (nfds_t)k, -1) < 0)
            continue;
        for (int i = 0; i < k; i++) {
            if (!pfd[i].revents)
                continue;
            char buf[65536];
            ssize_t r = read(pfd[i].fd, buf, sizeof buf);
            if (r > 0) {
                fwrite(buf, 1, (size_t)r, stdout);
                continue;
            }
            int s = slot[i], st;
            close(out[s]);
            waitpid(pid[s], &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                rc = 1;
            pid[s] = 0;
            running--;
        }
    }
    free(line);
    return rc;
}
