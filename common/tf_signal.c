/*  tf_signal.c -- SIGINT/SIGTERM handling shared by every component. */
#include "tf_signal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t tf_signal_count = 0;

static void s_handler(int sig)
{
    (void)sig;
    tf_signal_count++;
    if (tf_signal_count >= 2) {
        static const char msg[] = "taskfarm: second signal, exiting now\n";
        ssize_t rc = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)rc;
        _exit(130);
    }
}

void tf_signal_install(void)
{
    setenv("ZSYS_SIGHANDLER", "false", 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
