/*  main.c -- the taskfarm front-end: one program, five subcommands.

    run         ventilator + sink in this process, N local worker processes
    ventilator  reads items, serves workers
    worker      runs COMMAND on items
    sink        writes results in order
    keygen      CURVE certificate pair
*/
#define _GNU_SOURCE
#include "tf_config.h"
#include "tf_curve.h"
#include "tf_log.h"
#include "tf_net.h"
#include "tf_proc.h"
#include "tf_signal.h"
#include "tf_sink.h"
#include "tf_vent.h"
#include "tf_worker.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  What run keeps in its /tmp/taskfarm.XXXXXX directory.
#define S_RUN_VENT "vent"   //  the ventilator's ipc socket
#define S_RUN_SINK "sink"   //  the sink's ipc socket
#define S_RUN_ALLOW "allow" //  with CURVE: the public keys allowed in
#define S_RUN_KEY "taskfarm-run-local"
#define S_MAX_RESPAWNS_PER_WORKER 20

static void s_usage(FILE *f)
{
    fprintf(f, "Usage: taskfarm COMMAND [OPTIONS]\n"
               "A parallel map on ZeroMQ: from all cores of one box to a cluster.\n\n"
               "Commands:\n"
               "  run [OPTIONS] -- COMMAND [ARG...]          one box: ventilator, sink, N workers\n"
               "  ventilator --bind ENDPOINT [OPTIONS]        read items, serve workers\n"
               "  worker --connect ENDPOINT [OPTIONS] -- COMMAND [ARG...]\n"
               "  sink --bind ENDPOINT --ventilator ENDPOINT  write results in input order\n"
               "  keygen NAME                                 CURVE key pair\n\n"
               "Run 'taskfarm COMMAND --help' for the options of each command.\n");
}

static void s_logging(const tf_config_t *cfg, const char *ident)
{
    tf_log_level = cfg->quiet ? 0 : (int)cfg->verbose;
    zsys_set_logstream(stderr);
    zsys_set_logsystem(false);
    zsys_set_logident(ident);
    zsys_init();
}

//  A closed standard descriptor would be taken by the next pipe or socket
//  we open, and then read as input or written with output: closed stdin
//  reads as empty, closed stderr discards (/dev/null); results for a
//  closed stdout are refused (s_output_ok).
static bool s_stdout_closed = false;

static void s_std_fds_open(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            if (fd == STDOUT_FILENO)
                s_stdout_closed = true; //  results must not vanish there
            int null = open("/dev/null", O_RDWR);
            if (null >= 0 && null != fd) {
                dup2(null, fd);
                close(null);
            }
        }
}

//  Results going to a standard output that was closed would be lost.
static bool s_output_ok(const tf_config_t *cfg, const char *cmd)
{
    if (tf_config_is_std(cfg->output) && s_stdout_closed) {
        fprintf(stderr, "taskfarm %s: cannot write output: standard output is closed\n", cmd);
        return false;
    }
    return true;
}

//  A --stats file that cannot be written is found out before the job, not
//  after it: the path must be a writable file, or creatable (probed by
//  creating it and removing it again).
static bool s_stats_ok(const tf_config_t *cfg, const char *cmd)
{
    if (!cfg->stats)
        return true;
    struct stat st;
    bool exists = stat(cfg->stats, &st) == 0;
    int fd = exists && S_ISDIR(st.st_mode)
                 ? (errno = EISDIR, -1)
                 : open(cfg->stats, O_WRONLY | O_CLOEXEC | (exists ? 0 : O_CREAT | O_EXCL), 0666);
    if (fd < 0) {
        fprintf(stderr, "taskfarm %s: cannot write --stats file '%s': %s\n", cmd, cfg->stats,
                strerror(errno));
        return false;
    }
    close(fd);
    if (!exists)
        unlink(cfg->stats);
    return true;
}

//  --------------------------------------------------------------------------
//  run: the one-box farm

typedef struct {
    pid_t pid;
    int respawns;
    int64_t started_ms;
} s_child_t;

typedef struct {
    tf_config_t *cfg;
    char **argv; //  worker command line
    s_child_t *children;
    int nchildren;
    char host[200];
    tf_vent_t *vent;
    tf_sink_t *sink;
    int sink_rc;
    volatile int sink_done;
    bool all_gone;
    int lost_for_good; //  workers that died and are not replaced
    int64_t next_reap;
} s_run_t;

//  A replacement for a local worker that died: started like the forked ones
//  (s_worker_child), with the same command line, stdin on /dev/null, in
//  our process group.
static pid_t s_spawn_worker(s_run_t *run)
{
    char *exe = realpath("/proc/self/exe", NULL);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = -1;
    if (exe && null >= 0)
        pid = tf_proc_spawn(exe, run->argv, null, STDOUT_FILENO, TF_SPAWN_OURS);
    if (null >= 0)
        close(null);
    free(exe);
    return pid;
}

static volatile sig_atomic_t s_sigchld = 0;

static void s_on_sigchld(int sig)
{
    (void)sig;
    s_sigchld = 1;
}

static void s_run_tick(tf_vent_t *vent, void *arg)
{
    s_run_t *run = arg;
    if (run->sink_done && run->sink_rc >= 2)
        tf_vent_abort(vent);
    //  Reap only when a child changed state (SIGCHLD), or now and then.
    int64_t now = tf_now_ms();
    if (!s_sigchld && now < run->next_reap)
        return;
    s_sigchld = 0;
    run->next_reap = now + 500;
    for (int i = 0; i < run->nchildren; i++) {
        s_child_t *c = &run->children[i];
        if (c->pid <= 0)
            continue;
        int st;
        if (waitpid(c->pid, &st, WNOHANG) != c->pid)
            continue;
        char name[260];
        snprintf(name, sizeof name, "%s:%d", run->host, (int)c->pid);
        bool finished = WIFEXITED(st) && WEXITSTATUS(st) == 0; //  told the job is over
        if (finished)
            tf_info("run: local worker %d (pid %d) finished", i, (int)c->pid);
        else
            tf_warn("run: local worker %d (pid %d) %s %d", i, (int)c->pid,
                    WIFSIGNALED(st) ? "killed by signal" : "exited with",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        if (!finished)
            tf_vent_worker_gone(vent, name);
        c->pid = 0;
        //  A worker that cannot even start (bad command, plugin, ...: exit
        //  status 2 or 127 within a second) is not restarted; one that
        //  crashed or was stopped (a signal, a hard stop's 130) is, a
        //  bounded number of times.
        bool startup_failure = WIFEXITED(st) && (WEXITSTATUS(st) == 2 || WEXITSTATUS(st) == 127) &&
                               tf_now_ms() - c->started_ms < 1000;
        if (tf_interrupted() || finished)
            continue;
        if (startup_failure || c->respawns >= S_MAX_RESPAWNS_PER_WORKER) {
            run->lost_for_good++;
            continue;
        }
        c->respawns++;
        c->pid = s_spawn_worker(run);
        c->started_ms = tf_now_ms();
    }
    bool any = false;
    for (int i = 0; i < run->nchildren; i++)
        any = any || run->children[i].pid > 0;
    if (!any && run->lost_for_good > 0 && !run->cfg->listen && !run->all_gone) {
        run->all_gone = true;
        tf_error("run: no local worker is left and no remote ones can join (--listen); "
                 "giving up");
        tf_vent_abort(vent);
    }
}

static void *s_sink_thread(void *arg)
{
    s_run_t *run = arg;
    run->sink_rc = tf_sink_run(run->sink);
    run->sink_done = 1;
    return NULL;
}

static int s_push_arg(char ***argv, int *n, const char *a)
{
    char **v = realloc(*argv, ((size_t)*n + 2) * sizeof(char *));
    if (!v)
        return -1;
    *argv = v;
    v[*n] = tf_strdup(a);
    v[*n + 1] = NULL;
    if (!v[*n])
        return -1;
    (*n)++;
    return 0;
}

static char **s_worker_argv(const tf_config_t *cfg, const char *vent_ep, const char *sink_ep)
{
    char **argv = NULL;
    int n = 0;
    char num[64];
    int rc = 0;
    rc |= s_push_arg(&argv, &n, "taskfarm");
    rc |= s_push_arg(&argv, &n, "worker");
    rc |= s_push_arg(&argv, &n, "--connect");
    rc |= s_push_arg(&argv, &n, vent_ep);
    rc |= s_push_arg(&argv, &n, "--sink");
    rc |= s_push_arg(&argv, &n, sink_ep);
    rc |= s_push_arg(&argv, &n, "-j");
    rc |= s_push_arg(&argv, &n, "1");
    rc |= s_push_arg(&argv, &n, "--once");
    rc |= s_push_arg(&argv, &n, "--die-with-parent");
    if (cfg->pipe)
        rc |= s_push_arg(&argv, &n, "--pipe");
    if (cfg->no_pty)
        rc |= s_push_arg(&argv, &n, "--no-pty");
    if (cfg->pty)
        rc |= s_push_arg(&argv, &n, "--pty");
    if (cfg->null_sep)
        rc |= s_push_arg(&argv, &n, "-0");
    snprintf(num, sizeof num, "%.3f", (double)cfg->heartbeat_ms / 1000.0);
    rc |= s_push_arg(&argv, &n, "--heartbeat");
    rc |= s_push_arg(&argv, &n, num);
    snprintf(num, sizeof num, "%.3f", (double)cfg->heartbeat_timeout_ms / 1000.0);
    rc |= s_push_arg(&argv, &n, "--heartbeat-timeout");
    rc |= s_push_arg(&argv, &n, num);
    snprintf(num, sizeof num, "%lld", (long long)cfg->max_item);
    rc |= s_push_arg(&argv, &n, "--max-item");
    rc |= s_push_arg(&argv, &n, num);
    snprintf(num, sizeof num, "%lld", (long long)cfg->max_result);
    rc |= s_push_arg(&argv, &n, "--max-result");
    rc |= s_push_arg(&argv, &n, num);
    snprintf(num, sizeof num, "%d", cfg->quiet ? 0 : (int)cfg->verbose);
    rc |= s_push_arg(&argv, &n, "-v");
    rc |= s_push_arg(&argv, &n, num);
    if (cfg->curve_server_key) {
        rc |= s_push_arg(&argv, &n, "--curve-client-key");
        rc |= s_push_arg(&argv, &n, cfg->curve_server_key);
        rc |= s_push_arg(&argv, &n, "--curve-server-public");
        rc |= s_push_arg(&argv, &n, cfg->curve_server_key);
    }
    if (cfg->plugin) {
        rc |= s_push_arg(&argv, &n, "--plugin");
        rc |= s_push_arg(&argv, &n, cfg->plugin);
    }
    rc |= s_push_arg(&argv, &n, "--");
    for (int i = 0; i < cfg->argc; i++)
        rc |= s_push_arg(&argv, &n, cfg->argv[i]);
    if (rc) {
        tf_proc_argv_free(argv);
        return NULL;
    }
    return argv;
}

static int s_cmd_worker(tf_config_t *cfg);

//  The files of a run whose sockets are in `dir`, in the order they are
//  removed: its ipc socket files; with CURVE, its own public key in allow/
//  (copies of the --curve-allow keys stay there, and so allow/ and `dir`
//  stay then); allow/; `dir`.
enum { S_FILE_VENT, S_FILE_SINK, S_FILE_KEY, S_FILE_ALLOW, S_FILE_DIR, S_RUN_FILES };
typedef struct {
    char path[S_RUN_FILES][PATH_MAX];
    const char *list[S_RUN_FILES];
} s_run_files_t;

static void s_run_files(const char *dir, s_run_files_t *f)
{
    snprintf(f->path[S_FILE_VENT], PATH_MAX, "%s/" S_RUN_VENT, dir);
    snprintf(f->path[S_FILE_SINK], PATH_MAX, "%s/" S_RUN_SINK, dir);
    snprintf(f->path[S_FILE_KEY], PATH_MAX, "%s/" S_RUN_ALLOW "/" S_RUN_KEY, dir);
    snprintf(f->path[S_FILE_ALLOW], PATH_MAX, "%s/" S_RUN_ALLOW, dir);
    snprintf(f->path[S_FILE_DIR], PATH_MAX, "%s", dir);
    for (int i = 0; i < S_RUN_FILES; i++)
        f->list[i] = f->path[i];
}

//  run with CURVE: remote workers must be in --curve-allow (if given); the
//  local workers use the job's own key pair, so it is allowed too.
static int s_run_allow_dir(tf_config_t *cfg, const s_run_files_t *files, char *err, size_t errlen)
{
    const char *allow = files->path[S_FILE_ALLOW];
    if (mkdir(allow, 0700)) {
        snprintf(err, errlen, "cannot create '%s': %s", allow, strerror(errno));
        return -1;
    }
    if (cfg->curve_allow) {
        DIR *d = opendir(cfg->curve_allow);
        if (!d) {
            snprintf(err, errlen, "--curve-allow: cannot read '%s': %s", cfg->curve_allow,
                     strerror(errno));
            return -1;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            char from[PATH_MAX], to[PATH_MAX];
            if (e->d_name[0] == '.' ||
                snprintf(from, sizeof from, "%s/%s", cfg->curve_allow, e->d_name) >=
                    (int)sizeof from ||
                snprintf(to, sizeof to, "%s/%s", allow, e->d_name) >= (int)sizeof to)
                continue;
            zcert_t *c = zcert_load(from);
            if (c) {
                zcert_save_public(c, to);
                zcert_destroy(&c);
            }
        }
        closedir(d);
    }
    zcert_t *own = zcert_load(cfg->curve_server_key);
    if (!own) {
        snprintf(err, errlen, "--curve-server-key: cannot read CURVE certificate '%s'",
                 cfg->curve_server_key);
        return -1;
    }
    zcert_save_public(own, files->path[S_FILE_KEY]);
    zcert_destroy(&own);
    free(cfg->curve_allow);
    cfg->curve_allow = tf_strdup(allow);
    return cfg->curve_allow ? 0 : -1;
}

//  Each process's first ZeroMQ context initialises the libraries libzmq is
//  built with: OpenPGM (which looks up the "pgm" protocol through NSS:
//  nsswitch.conf, module loading, ~100 library path probes) and libsodium
//  (CPU feature probes with CPUID, which a hypervisor may trap). Together
//  ~0.25 ms of CPU per process here. Done once before the forks, every
//  local worker inherits them: both are reference-counted or idempotent
//  (pgm_init, sodium_init), open no descriptor and start no thread. Weak
//  references: libzmq may be built without either, and linked in statically
//  (TF_STATIC_ZMQ) or not; a weak reference finds them either way, where a
//  lookup by name (dlsym) misses what is linked into the program.
extern int sodium_init(void) __attribute__((weak));
extern bool pgm_init(void *error) __attribute__((weak)); //  (pgm_error_t **)

static void s_zmq_libraries_init(void)
{
    if (sodium_init)
        (void)sodium_init();
    if (pgm_init)
        (void)pgm_init(NULL);
}

//  A forked local worker of the run whose files are `files`: never returns.
static void s_worker_child(char **argv, pid_t parent, const s_run_files_t *files)
{
    tf_signal_after_fork();
    //  If `run` dies (even by SIGKILL), its local workers go too, and remove
    //  its socket files and their directory on the way.
    tf_signal_cleanup_on_parent_gone(files->list, S_RUN_FILES);
    if (tf_signal_die_with_parent() != parent)
        _exit(2);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        close(null);
    }
    //  The very command line a replacement worker is started with
    //  (s_worker_argv): one description of the local worker for both.
    int argc = 0;
    while (argv[argc])
        argc++;
    tf_config_t wc;
    tf_config_init(&wc, TF_CMD_WORKER);
    char err[512];
    if (tf_config_parse(&wc, argc - 1, argv + 1, err, sizeof err) ||
        tf_config_check(&wc, err, sizeof err)) {
        fprintf(stderr, "taskfarm run: local worker: %s\n", err);
        _exit(2);
    }
    int rc = s_cmd_worker(&wc);
    fflush(NULL);
    _exit(rc);
}

static int s_cmd_run(tf_config_t *cfg)
{
    char err[512];
    if (!s_output_ok(cfg, "run") || !s_stats_ok(cfg, "run"))
        return 2;
    s_run_t run;
    memset(&run, 0, sizeof run);
    run.cfg = cfg;
    int nworkers = cfg->workers < 0 ? tf_online_cpus() : (int)cfg->workers;
    if (nworkers > 0 && cfg->plugin && tf_worker_check_plugin(cfg->plugin, err, sizeof err)) {
        fprintf(stderr, "taskfarm run: %s\n", err);
        return 2;
    }
    if (nworkers > 0 && cfg->argc > 0) {
        char *path = tf_proc_which(cfg->argv[0]);
        if (!path) {
            fprintf(stderr, "taskfarm run: command '%s' %s\n", cfg->argv[0],
                    errno == EACCES ? "is not executable" : "not found");
            return 127;
        }
        free(path);
    }
    char dir[] = "/tmp/taskfarm.XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "taskfarm run: cannot create a directory in /tmp: %s\n", strerror(errno));
        return 2;
    }
    //  Ours to remove, also on a hard stop (a second signal, SIGUSR2),
    //  where the local workers may be gone first.
    s_run_files_t files;
    s_run_files(dir, &files);
    tf_signal_cleanup_on_hard_stop(files.list, S_RUN_FILES);
    char vent_ipc[PATH_MAX + 8], sink_ipc[PATH_MAX + 8], vent_inproc[64]; //  "ipc://" + a path
    snprintf(vent_ipc, sizeof vent_ipc, "ipc://%s", files.path[S_FILE_VENT]);
    snprintf(sink_ipc, sizeof sink_ipc, "ipc://%s", files.path[S_FILE_SINK]);
    snprintf(vent_inproc, sizeof vent_inproc, "inproc://taskfarm-vent-%d", (int)getpid());
    gethostname(run.host, sizeof run.host - 1);
    int rc = 2;
    const char *allow_dir = NULL; //  with CURVE
    pthread_t sink_thread;
    bool sink_started = false;

    run.argv = s_worker_argv(cfg, vent_ipc, sink_ipc);
    run.children = calloc((size_t)(nworkers > 0 ? nworkers : 1), sizeof *run.children);
    if (!run.argv || !run.children) {
        fprintf(stderr, "taskfarm run: out of memory\n");
        goto done;
    }
    //  Local workers are forked now, before czmq starts any thread, so that
    //  they cost no exec and no dynamic linking (a worker that dies later is
    //  replaced through posix_spawn). They connect as soon as we bind.
    if (nworkers > 0)
        s_zmq_libraries_init();
    pid_t self_pid = getpid();
    for (int i = 0; i < nworkers; i++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "taskfarm run: cannot start worker: %s\n", strerror(errno));
            goto done;
        }
        if (pid == 0)
            s_worker_child(run.argv, self_pid, &files);
        run.children[i].pid = pid;
        run.children[i].started_ms = tf_now_ms();
        run.nchildren++;
    }
    s_logging(cfg, "taskfarm");
    if (cfg->curve_server_key) {
        allow_dir = files.path[S_FILE_ALLOW];
        if (s_run_allow_dir(cfg, &files, err, sizeof err)) {
            fprintf(stderr, "taskfarm run: %s\n", err);
            goto done;
        }
    }
    run.vent = tf_vent_new(cfg, err, sizeof err);
    if (!run.vent) {
        fprintf(stderr, "taskfarm run: %s\n", err);
        goto done;
    }
    if (tf_vent_bind(run.vent, vent_inproc, err, sizeof err) ||
        tf_vent_bind(run.vent, vent_ipc, err, sizeof err) ||
        (cfg->listen && tf_vent_bind(run.vent, cfg->listen, err, sizeof err))) {
        fprintf(stderr, "taskfarm run: %s\n", err);
        goto done;
    }
    run.sink = tf_sink_new(cfg, err, sizeof err);
    if (!run.sink) {
        fprintf(stderr, "taskfarm run: %s\n", err);
        goto done;
    }
    if (tf_sink_bind(run.sink, sink_ipc, err, sizeof err)) {
        fprintf(stderr, "taskfarm run: %s\n", err);
        goto done;
    }
    if (cfg->listen) {
        //  Remote workers send results to an ephemeral port beside --listen.
        if (tf_sink_bind_beside(run.sink, cfg->listen, err, sizeof err)) {
            fprintf(stderr, "taskfarm run: %s\n", err);
            goto done;
        }
        tf_vent_set_sink_endpoint(run.vent, tf_sink_last_endpoint(run.sink));
    }
    tf_sink_set_ventilator(run.sink, vent_inproc);
    tf_sink_set_embedded(run.sink, true);
    tf_vent_set_sink_embedded(run.vent, true);
    if (pthread_create(&sink_thread, NULL, s_sink_thread, &run)) {
        fprintf(stderr, "taskfarm run: cannot start the sink thread\n");
        goto done;
    }
    sink_started = true;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    tf_vent_set_tick(run.vent, s_run_tick, &run);
    rc = tf_vent_run(run.vent);
    if (rc >= 2)
        tf_sink_stop(run.sink);
    pthread_join(sink_thread, NULL);
    sink_started = false;
    if (run.sink_rc >= 2 && rc < 2)
        rc = run.sink_rc;
    if (cfg->stats &&
        tf_vent_write_stats(run.vent, cfg->stats, tf_sink_stats(run.sink)->malformed) && rc < 2)
        rc = 2;

done:
    if (sink_started) {
        tf_sink_stop(run.sink);
        pthread_join(sink_thread, NULL);
    }
    //  Our own teardown first: the workers that heard the job end are
    //  leaving meanwhile.
    tf_sink_destroy(&run.sink);
    tf_vent_destroy(&run.vent);
    if (allow_dir)
        tf_remove_dir(allow_dir);
    tf_remove_dir(dir); //  the ipc socket files
    tf_signal_cleanup_on_hard_stop(NULL, 0);
    //  The others (never connected, or busy) are told by SIGTERM, then
    //  killed a second after the time a worker gives its co-processes to
    //  end. Each exit is awaited on its pidfd (or by polling where the
    //  kernel has none).
    for (int i = 0; i < run.nchildren; i++)
        if (run.children[i].pid > 0)
            kill(run.children[i].pid, SIGTERM);
    int64_t deadline = tf_now_ms() + TF_COPROC_GRACE_MS + 1000;
    for (int i = 0; i < run.nchildren; i++) {
        s_child_t *c = &run.children[i];
        int pidfd = c->pid > 0 ? tf_proc_pidfd(c->pid) : -1;
        while (c->pid > 0) {
            int st;
            pid_t r = waitpid(c->pid, &st, WNOHANG);
            if (r == c->pid || r < 0) {
                c->pid = 0;
                break;
            }
            int64_t left = deadline - tf_now_ms();
            if (left < 0) {
                kill(c->pid, SIGKILL);
                waitpid(c->pid, &st, 0);
                c->pid = 0;
                break;
            }
            if (pidfd >= 0) {
                struct pollfd pfd = {pidfd, POLLIN, 0};
                poll(&pfd, 1, (int)left + 1);
            } else
                usleep(200);
        }
        if (pidfd >= 0)
            close(pidfd);
    }
    tf_proc_argv_free(run.argv);
    free(run.children);
    return rc;
}

//  --------------------------------------------------------------------------
//  The separate components

static int s_cmd_ventilator(tf_config_t *cfg)
{
    char err[512];
    if (!s_stats_ok(cfg, "ventilator"))
        return 2;
    s_logging(cfg, "taskfarm-vent");
    tf_vent_t *vent = tf_vent_new(cfg, err, sizeof err);
    if (!vent) {
        fprintf(stderr, "taskfarm ventilator: %s\n", err);
        return 2;
    }
    int rc = tf_vent_run(vent);
    if (cfg->stats && tf_vent_write_stats(vent, cfg->stats, 0) && rc < 2)
        rc = 2;
    tf_vent_destroy(&vent);
    return rc;
}

static int s_cmd_sink(tf_config_t *cfg)
{
    char err[512];
    if (!s_output_ok(cfg, "sink") || !s_stats_ok(cfg, "sink"))
        return 2;
    s_logging(cfg, "taskfarm-sink");
    tf_sink_t *sink = tf_sink_new(cfg, err, sizeof err);
    if (!sink) {
        fprintf(stderr, "taskfarm sink: %s\n", err);
        return 2;
    }
    int rc = tf_sink_run(sink);
    if (cfg->stats && tf_sink_write_stats(sink, cfg->stats) && rc < 2)
        rc = 2;
    tf_sink_destroy(&sink);
    return rc;
}

static int s_cmd_worker(tf_config_t *cfg)
{
    char err[512];
    if (cfg->die_with_parent && tf_signal_die_with_parent() == 1)
        return 2;
    tf_worker_t *worker = tf_worker_new(cfg, err, sizeof err);
    if (!worker) {
        fprintf(stderr, "taskfarm %s\n", err);
        return errno == ENOENT || errno == EACCES ? 127 : 2;
    }
    s_logging(cfg, "taskfarm-worker");
    int rc = tf_worker_run(worker);
    tf_worker_destroy(&worker);
    return rc;
}

static int s_cmd_keygen(tf_config_t *cfg)
{
    s_logging(cfg, "taskfarm");
    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(stderr, "taskfarm keygen: cannot create a certificate\n");
        return 2;
    }
    zcert_set_meta(cert, "name", "%s", cfg->name);
    int rc = zcert_save(cert, cfg->name);
    zcert_destroy(&cert);
    if (rc) {
        fprintf(stderr, "taskfarm keygen: cannot write '%s' / '%s_secret': %s\n", cfg->name,
                cfg->name, strerror(errno));
        return 2;
    }
    printf("wrote %s (public) and %s_secret (secret)\n", cfg->name, cfg->name);
    return 0;
}

int main(int argc, char **argv)
{
    s_std_fds_open();
    tf_signal_install();
    if (argc < 2) {
        fprintf(stderr, "taskfarm: missing command (run, ventilator, worker, sink, keygen); "
                        "see taskfarm --help\n");
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        s_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("taskfarm %s (protocol %d)\n", TF_VERSION_STRING, 1);
        return 0;
    }
    int cmd = tf_cmd_from_name(argv[1]);
    if (!cmd) {
        fprintf(stderr, "taskfarm: unknown command '%s' (run, ventilator, worker, sink, keygen)\n",
                argv[1]);
        return 2;
    }
    tf_config_t cfg;
    tf_config_init(&cfg, cmd);
    char err[512];
    if (tf_config_parse(&cfg, argc - 1, argv + 1, err, sizeof err)) {
        fprintf(stderr, "taskfarm %s\n", err);
        tf_config_free(&cfg);
        return 2;
    }
    if (cfg.help) {
        tf_config_usage(cmd, stdout);
        tf_config_free(&cfg);
        return 0;
    }
    if (tf_config_check(&cfg, err, sizeof err)) {
        fprintf(stderr, "taskfarm %s\n", err);
        tf_config_free(&cfg);
        return 2;
    }
    int rc;
    switch (cmd) {
    case TF_CMD_RUN:
        rc = s_cmd_run(&cfg);
        break;
    case TF_CMD_VENTILATOR:
        rc = s_cmd_ventilator(&cfg);
        break;
    case TF_CMD_WORKER:
        rc = s_cmd_worker(&cfg);
        break;
    case TF_CMD_SINK:
        rc = s_cmd_sink(&cfg);
        break;
    default:
        rc = s_cmd_keygen(&cfg);
    }
    bool quick = cmd == TF_CMD_RUN || (cmd == TF_CMD_WORKER && cfg.once);
    tf_config_free(&cfg);
    tf_curve_shutdown(); //  before czmq's own teardown
    if (quick) {
        //  Everything is written and the job is over: skip czmq's teardown
        //  (milliseconds of socket and context shutdown that nobody waits on).
        fflush(NULL);
        _exit(rc);
    }
    return rc;
}
