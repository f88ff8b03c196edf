/*  tf_config.c -- command line and JSON configuration, from one option table. */
#include "tf_config.h"
#include "tf_proto.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { O_FLAG, O_NOFLAG, O_STR, O_INT, O_SECS, O_TRI_ON, O_TRI_OFF, O_ENDPOINT } s_kind_t;

typedef struct {
    const char *name;
    int short_name;
    s_kind_t kind;
    size_t offset;
    int64_t min;
    int64_t max;
    int cmds;
    const char *arg;
    const char *help;
} s_option_t;

#define F(field) offsetof(tf_config_t, field)
#define ALLRUN (TF_CMD_RUN | TF_CMD_VENTILATOR | TF_CMD_WORKER | TF_CMD_SINK)
#define IN_CMDS (TF_CMD_RUN | TF_CMD_VENTILATOR)
#define OUT_CMDS (TF_CMD_RUN | TF_CMD_SINK)
#define EXEC_CMDS (TF_CMD_RUN | TF_CMD_WORKER)
#define I64MAX INT64_MAX
#define MS_MAX ((int64_t)1000 * 86400 * 365)

static const s_option_t s_options[] = {
    {"input", 'i', O_STR, F(input), 0, 0, IN_CMDS, "FILE", "read items from FILE (default stdin)"},
    {"output", 'o', O_STR, F(output), 0, 0, OUT_CMDS, "FILE",
     "write results to FILE (default stdout)"},
    {"null", '0', O_FLAG, F(null_sep), 0, 0, IN_CMDS | TF_CMD_WORKER, NULL,
     "items are NUL-separated instead of one per line"},
    {"unordered", 0, O_FLAG, F(unordered), 0, 0, OUT_CMDS, NULL,
     "write results as they arrive, not in input order"},
    {"workers", 'j', O_INT, F(workers), 0, 4096, EXEC_CMDS, "N",
     "local workers (default: online CPUs; run: 0 = remote workers only)"},
    {"listen", 0, O_ENDPOINT, F(listen), 0, 0, TF_CMD_RUN, "ENDPOINT",
     "also accept remote workers at ENDPOINT (e.g. tcp://*:5555)"},
    {"bind", 0, O_ENDPOINT, F(bind), 0, 0, TF_CMD_VENTILATOR | TF_CMD_SINK, "ENDPOINT",
     "endpoint to bind (required)"},
    {"connect", 0, O_ENDPOINT, F(connect), 0, 0, TF_CMD_WORKER, "ENDPOINT",
     "ventilator endpoint to connect to (required)"},
    {"sink", 0, O_ENDPOINT, F(sink), 0, 0, TF_CMD_WORKER, "ENDPOINT",
     "send results to this sink instead of the one the ventilator names"},
    {"ventilator", 0, O_ENDPOINT, F(ventilator), 0, 0, TF_CMD_SINK, "ENDPOINT",
     "ventilator endpoint to register with (required)"},
    {"advertise", 0, O_ENDPOINT, F(advertise), 0, 0, TF_CMD_SINK, "ENDPOINT",
     "endpoint workers should use to reach this sink (default: from --bind)"},
    {"pipe", 0, O_FLAG, F(pipe), 0, 0, EXEC_CMDS, NULL,
     "keep one COMMAND per worker; items are lines on its stdin, results lines on its stdout"},
    {"pty", 0, O_FLAG, F(pty), 0, 0, EXEC_CMDS, NULL,
     "--pipe: always give COMMAND a pseudo-terminal (default: pipes, and a pty as soon as "
     "COMMAND is seen to buffer its output)"},
    {"no-pty", 0, O_FLAG, F(no_pty), 0, 0, EXEC_CMDS, NULL,
     "--pipe: always talk to COMMAND over pipes, never a pseudo-terminal"},
    {"plugin", 0, O_STR, F(plugin), 0, 0, EXEC_CMDS, "LIB.so",
     "call the plugin's map function instead of a COMMAND"},
    {"once", 0, O_FLAG, F(once), 0, 0, TF_CMD_WORKER, NULL, "exit after one job"},
    {"die-with-parent", 0, O_FLAG, F(die_with_parent), 0, 0, TF_CMD_WORKER, NULL,
     "exit when the parent process ends (run's local workers)"},
    {"retries", 0, O_INT, F(retries), 1, 1000, IN_CMDS, "N",
     "attempts before an item fails for good (default 3)"},
    {"timeout", 0, O_SECS, F(timeout_ms), 0, MS_MAX, IN_CMDS, "SEC",
     "per-item time limit (default: none)"},
    {"heartbeat", 0, O_SECS, F(heartbeat_ms), 10, 60000, ALLRUN, "SEC",
     "heartbeat interval (default 0.5)"},
    {"heartbeat-timeout", 0, O_SECS, F(heartbeat_timeout_ms), 20, 3600000, ALLRUN, "SEC",
     "peer silent this long is lost (default 2)"},
    {"ack-timeout", 0, O_SECS, F(ack_timeout_ms), 100, 3600000, IN_CMDS, "SEC",
     "re-send a done item the sink has not acknowledged after SEC (default 10)"},
    {"window", 0, O_INT, F(window), 1, TF_MAX_WINDOW, IN_CMDS, "N",
     "items in flight at most (default 32768)"},
    {"window-bytes", 0, O_INT, F(window_bytes), 1, I64MAX, IN_CMDS, "BYTES",
     "item bytes in flight at most (default 256 MiB)"},
    {"max-item", 0, O_INT, F(max_item), 1, (int64_t)1 << 30, IN_CMDS | TF_CMD_WORKER, "BYTES",
     "longest item accepted (default 64 MiB)"},
    {"max-result", 0, O_INT, F(max_result), 1, (int64_t)1 << 31, ALLRUN, "BYTES",
     "largest result accepted (default 256 MiB)"},
    {"failed", 0, O_STR, F(failed), 0, 0, IN_CMDS, "FILE",
     "write the items that failed for good to FILE (appended to with --resume)"},
    {"progress", 0, O_TRI_ON, F(progress), 0, 0, IN_CMDS, NULL,
     "progress bar on stderr (default: when stderr is a terminal)"},
    {"no-progress", 0, O_TRI_OFF, F(progress), 0, 0, IN_CMDS, NULL, "no progress bar"},
    {"stats", 0, O_STR, F(stats), 0, 0, IN_CMDS | TF_CMD_SINK, "FILE",
     "write a JSON run report to FILE"},
    {"journal", 0, O_STR, F(journal), 0, 0, TF_CMD_RUN | TF_CMD_SINK, "FILE",
     "record committed results in FILE (for --resume)"},
    {"resume", 0, O_FLAG, F(resume), 0, 0, ALLRUN, NULL,
     "continue a run from its --journal: skip what is committed"},
    {"config", 0, O_STR, F(config), 0, 0, ALLRUN, "FILE", "read options from a JSON file"},
    {"curve-server-key", 0, O_STR, F(curve_server_key), 0, 0,
     TF_CMD_RUN | TF_CMD_VENTILATOR | TF_CMD_SINK, "FILE",
     "CURVE: this server's secret certificate (enables encryption)"},
    {"curve-client-key", 0, O_STR, F(curve_client_key), 0, 0, TF_CMD_WORKER | TF_CMD_SINK, "FILE",
     "CURVE: this client's secret certificate"},
    {"curve-server-public", 0, O_STR, F(curve_server_public), 0, 0, TF_CMD_WORKER | TF_CMD_SINK,
     "FILE", "CURVE: the server's public certificate"},
    {"curve-allow", 0, O_STR, F(curve_allow), 0, 0, TF_CMD_RUN | TF_CMD_VENTILATOR | TF_CMD_SINK,
     "DIR", "CURVE: directory of authorised client public certificates"},
    {"verbose", 'v', O_INT, F(verbose), 0, 3, ALLRUN, "LEVEL", "log more (0-3)"},
    {"quiet", 'q', O_FLAG, F(quiet), 0, 0, ALLRUN, NULL, "log only errors"},
};

#define S_NOPTIONS (sizeof s_options / sizeof s_options[0])
enum { S_OPT_HELP = 1000, S_OPT_BASE = 2000 };

const char *tf_cmd_name(int cmd)
{
    switch (cmd) {
    case TF_CMD_RUN:
        return "run";
    case TF_CMD_VENTILATOR:
        return "ventilator";
    case TF_CMD_WORKER:
        return "worker";
    case TF_CMD_SINK:
        return "sink";
    case TF_CMD_KEYGEN:
        return "keygen";
    default:
        return "?";
    }
}

int tf_cmd_from_name(const char *name)
{
    static const int cmds[] = {TF_CMD_RUN, TF_CMD_VENTILATOR, TF_CMD_WORKER, TF_CMD_SINK,
                               TF_CMD_KEYGEN};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (name && strcmp(name, tf_cmd_name(cmds[i])) == 0)
            return cmds[i];
    return 0;
}

void tf_config_init(tf_config_t *self, int cmd)
{
    memset(self, 0, sizeof *self);
    self->cmd = cmd;
    self->workers = -1;
    self->retries = 3;
    self->heartbeat_ms = 500;
    self->heartbeat_timeout_ms = 2000;
    self->ack_timeout_ms = 10000;
    self->window = 32768;
    self->window_bytes = (int64_t)256 << 20;
    self->max_item = TF_DEFAULT_MAX_ITEM;
    self->max_result = TF_DEFAULT_MAX_RESULT;
    self->progress = -1;
    self->verbose = 1;
}

void tf_config_free(tf_config_t *self)
{
    for (size_t i = 0; i < S_NOPTIONS; i++) {
        const s_option_t *o = &s_options[i];
        if (o->kind == O_STR || o->kind == O_ENDPOINT) {
            char **p = (char **)((char *)self + o->offset);
            free(*p);
            *p = NULL;
        }
    }
    for (int i = 0; i < self->argc; i++)
        free(self->argv[i]);
    free(self->argv);
    self->argv = NULL;
    self->argc = 0;
    free(self->name);
    self->name = NULL;
}

static void s_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int tf_endpoint_check(const char *ep, char *err, size_t errlen)
{
    if (!ep || !*ep) {
        s_err(err, errlen, "empty endpoint");
        return -1;
    }
    if (strlen(ep) > 255) {
        s_err(err, errlen, "endpoint '%.40s...' is longer than 255 characters", ep);
        return -1;
    }
    for (const char *c = ep; *c; c++)
        if (*c < 0x21 || *c > 0x7e) {
            s_err(err, errlen, "endpoint '%s' has a space or non-printable character", ep);
            return -1;
        }
    if (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0) {
        const char *rest = strstr(ep, "://") + 3;
        if (!*rest) {
            s_err(err, errlen, "endpoint '%s' has no path", ep);
            return -1;
        }
        return 0;
    }
    if (strncmp(ep, "tcp://", 6) != 0) {
        s_err(err, errlen, "endpoint '%s' is not tcp://HOST:PORT, ipc://PATH or inproc://NAME", ep);
        return -1;
    }
    const char *host = ep + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host) {
        s_err(err, errlen, "endpoint '%s' needs HOST:PORT", ep);
        return -1;
    }
    const char *port = colon + 1;
    int64_t p;
    if (strcmp(port, "*") != 0 && strcmp(port, "0") != 0 && tf_parse_i64(port, 1, 65535, &p) != 0) {
        s_err(err, errlen, "endpoint '%s' has a bad port '%s'", ep, port);
        return -1;
    }
    return 0;
}

//  Sets one option from a textual value (command line) or JSON item.
static int s_set(tf_config_t *self, const s_option_t *o, const char *text, const cJSON *json,
                 const char *where, char *err, size_t errlen)
{
    void *field = (char *)self + o->offset;
    switch (o->kind) {
    case O_FLAG:
    case O_NOFLAG: {
        bool v = o->kind == O_FLAG;
        if (json) {
            if (!cJSON_IsBool(json)) {
                s_err(err, errlen, "%s: '%s' must be true or false", where, o->name);
                return -1;
            }
            v = cJSON_IsTrue(json) ? v : !v;
        }
        *(bool *)field = v;
        return 0;
    }
    case O_TRI_ON:
    case O_TRI_OFF: {
        int v = o->kind == O_TRI_ON ? 1 : 0;
        if (json) {
            if (!cJSON_IsBool(json)) {
                s_err(err, errlen, "%s: '%s' must be true or false", where, o->name);
                return -1;
            }
            v = cJSON_IsTrue(json) ? v : !v;
        }
        *(int *)field = v;
        return 0;
    }
    case O_STR:
    case O_ENDPOINT: {
        if (json) {
            if (!cJSON_IsString(json)) {
                s_err(err, errlen, "%s: '%s' must be a string", where, o->name);
                return -1;
            }
            text = json->valuestring;
        }
        if (!text || !*text) {
            s_err(err, errlen, "%s: --%s needs a non-empty value", where, o->name);
            return -1;
        }
        if (o->kind == O_ENDPOINT) {
            char why[200];
            if (tf_endpoint_check(text, why, sizeof why)) {
                s_err(err, errlen, "%s: --%s: %s", where, o->name, why);
                return -1;
            }
        }
        char *copy = tf_strdup(text);
        if (!copy) {
            s_err(err, errlen, "out of memory");
            return -1;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case O_INT:
    case O_SECS: {
        char num[64];
        if (json) {
            if (cJSON_IsNumber(json))
                snprintf(num, sizeof num, o->kind == O_INT ? "%.0f" : "%.6f", json->valuedouble);
            else if (cJSON_IsString(json))
                snprintf(num, sizeof num, "%s", json->valuestring);
            else {
                s_err(err, errlen, "%s: '%s' must be a number", where, o->name);
                return -1;
            }
            if (o->kind == O_INT && cJSON_IsNumber(json) &&
                (!(json->valuedouble >= -0x1p63 && json->valuedouble < 0x1p63) ||
                 json->valuedouble != (double)(int64_t)json->valuedouble)) {
                s_err(err, errlen, "%s: '%s' must be a whole number", where, o->name);
                return -1;
            }
            text = num;
        }
        int64_t v;
        if (o->kind == O_INT) {
            if (tf_parse_i64(text, o->min, o->max, &v)) {
                s_err(err, errlen, "%s: --%s: '%s' is not a whole number from %lld to %lld", where,
                      o->name, text ? text : "", (long long)o->min, (long long)o->max);
                return -1;
            }
        } else if (tf_parse_seconds_ms(text, o->max, &v) || v < o->min) {
            s_err(err, errlen, "%s: --%s: '%s' is not a number of seconds from %g to %g", where,
                  o->name, text ? text : "", (double)o->min / 1000.0, (double)o->max / 1000.0);
            return -1;
        }
        *(int64_t *)field = v;
        return 0;
    }
    }
    return -1;
}

static int s_set_command(tf_config_t *self, int argc, char *const *argv)
{
    self->argv = calloc((size_t)argc + 1, sizeof(char *));
    if (!self->argv)
        return -1;
    for (int i = 0; i < argc; i++) {
        self->argv[i] = tf_strdup(argv[i]);
        if (!self->argv[i])
            return -1;
        self->argc = i + 1;
    }
    return 0;
}

int tf_config_parse(tf_config_t *self, int argc, char **argv, char *err, size_t errlen)
{
    struct option longopts[S_NOPTIONS + 2];
    char shortopts[64] = "+:";
    size_t nlong = 0;
    for (size_t i = 0; i < S_NOPTIONS; i++) {
        const s_option_t *o = &s_options[i];
        if (!(o->cmds & self->cmd))
            continue;
        bool arg =
            o->kind == O_STR || o->kind == O_INT || o->kind == O_SECS || o->kind == O_ENDPOINT;
        longopts[nlong].name = o->name;
        longopts[nlong].has_arg = arg ? required_argument : no_argument;
        longopts[nlong].flag = NULL;
        longopts[nlong].val = S_OPT_BASE + (int)i;
        nlong++;
        if (o->short_name) {
            size_t n = strlen(shortopts);
            shortopts[n] = (char)o->short_name;
            shortopts[n + 1] = arg ? ':' : '\0';
            shortopts[n + 2] = '\0';
        }
    }
    longopts[nlong++] = (struct option){"help", no_argument, NULL, S_OPT_HELP};
    longopts[nlong] = (struct option){NULL, 0, NULL, 0};
    strcat(shortopts, "h");

    const char *cmd = tf_cmd_name(self->cmd);
    optind = 0; //  full reset of getopt state
    opterr = 0;
    for (;;) {
        int longindex = -1;
        int c = getopt_long(argc, argv, shortopts, longopts, &longindex);
        if (c == -1)
            break;
        if (c == 'h' || c == S_OPT_HELP) {
            self->help = true;
            return 0;
        }
        if (c == '?') {
            if (optopt && optopt < 256)
                s_err(err, errlen, "%s: unknown option '-%c' (see taskfarm %s --help)", cmd, optopt,
                      cmd);
            else
                s_err(err, errlen, "%s: unknown option '%s' (see taskfarm %s --help)", cmd,
                      argv[optind - 1], cmd);
            return -1;
        }
        if (c == ':') {
            s_err(err, errlen, "%s: option '%s' needs a value", cmd, argv[optind - 1]);
            return -1;
        }
        size_t idx = SIZE_MAX;
        if (c >= S_OPT_BASE)
            idx = (size_t)(c - S_OPT_BASE);
        else
            for (size_t i = 0; i < S_NOPTIONS; i++)
                if (s_options[i].short_name == c && (s_options[i].cmds & self->cmd))
                    idx = i;
        if (idx >= S_NOPTIONS) {
            s_err(err, errlen, "%s: unexpected option", cmd);
            return -1;
        }
        if (s_set(self, &s_options[idx], optarg, NULL, cmd, err, errlen))
            return -1;
        self->set_mask |= (uint64_t)1 << idx;
    }
    int rest = argc - optind;
    if (self->cmd == TF_CMD_KEYGEN) {
        if (rest != 1) {
            s_err(err, errlen, "keygen: expects exactly one NAME");
            return -1;
        }
        self->name = tf_strdup(argv[optind]);
        return self->name ? 0 : -1;
    }
    if (rest > 0) {
        if (!(self->cmd & EXEC_CMDS)) {
            s_err(err, errlen, "%s: unexpected argument '%s'", cmd, argv[optind]);
            return -1;
        }
        if (s_set_command(self, rest, argv + optind)) {
            s_err(err, errlen, "out of memory");
            return -1;
        }
    }
    if (self->config && tf_config_load_json(self, self->config, err, errlen))
        return -1;
    return 0;
}

int tf_config_apply_json(tf_config_t *self, const char *text, const char *origin, char *err,
                         size_t errlen)
{
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        int line = 1;
        for (const char *c = text; at && c < at && *c; c++)
            line += *c == '\n';
        s_err(err, errlen, "%s: invalid JSON near line %d", origin, line);
        return -1;
    }
    int rc = 0;
    if (!cJSON_IsObject(root)) {
        s_err(err, errlen, "%s: top level must be a JSON object", origin);
        rc = -1;
        goto done;
    }
    cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        const char *key = item->string;
        char where[512];
        snprintf(where, sizeof where, "%s: key '%s'", origin, key);
        if (strcmp(key, "command") == 0) {
            if (!(self->cmd & EXEC_CMDS) || !cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0) {
                s_err(err, errlen, "%s: must be a non-empty array of strings", where);
                rc = -1;
                goto done;
            }
            int n = cJSON_GetArraySize(item);
            char **args = calloc((size_t)n + 1, sizeof(char *));
            for (int i = 0; args && i < n; i++) {
                cJSON *a = cJSON_GetArrayItem(item, i);
                if (!cJSON_IsString(a)) {
                    free(args);
                    s_err(err, errlen, "%s: must be a non-empty array of strings", where);
                    rc = -1;
                    goto done;
                }
                args[i] = a->valuestring;
            }
            if (self->argc > 0) { //  command line wins (checked above)
                free(args);
                continue;
            }
            if (!args || s_set_command(self, n, args)) {
                free(args);
                s_err(err, errlen, "out of memory");
                rc = -1;
                goto done;
            }
            free(args);
            continue;
        }
        size_t idx = SIZE_MAX;
        for (size_t i = 0; i < S_NOPTIONS; i++)
            if (strcmp(s_options[i].name, key) == 0)
                idx = i;
        if (idx == SIZE_MAX || strcmp(key, "config") == 0) {
            s_err(err, errlen, "%s: unknown key '%s'", origin, key);
            rc = -1;
            goto done;
        }
        if (!(s_options[idx].cmds & self->cmd)) {
            s_err(err, errlen, "%s: key '%s' does not apply to '%s'", origin, key,
                  tf_cmd_name(self->cmd));
            rc = -1;
            goto done;
        }
        if (self->set_mask & ((uint64_t)1 << idx)) {
            //  Command line wins, but the file's value must still be valid.
            tf_config_t scratch;
            tf_config_init(&scratch, self->cmd);
            int bad = s_set(&scratch, &s_options[idx], NULL, item, where, err, errlen);
            tf_config_free(&scratch);
            if (bad) {
                rc = -1;
                goto done;
            }
            continue;
        }
        //  progress/no-progress share a field: either on the line wins.
        if (s_options[idx].kind == O_TRI_ON || s_options[idx].kind == O_TRI_OFF) {
            bool line_set = false;
            for (size_t i = 0; i < S_NOPTIONS; i++)
                if (s_options[i].offset == s_options[idx].offset &&
                    (self->set_mask & ((uint64_t)1 << i)))
                    line_set = true;
            if (line_set)
                continue;
        }
        if (s_set(self, &s_options[idx], NULL, item, where, err, errlen)) {
            rc = -1;
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    return rc;
}

int tf_config_load_json(tf_config_t *self, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        s_err(err, errlen, "--config: cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    tf_buf_t buf;
    tf_buf_init(&buf);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (buf.len + n > (1u << 20)) {
            s_err(err, errlen, "--config: '%s' is larger than 1 MiB", path);
            rc = -1;
            break;
        }
        if (tf_buf_append(&buf, chunk, n)) {
            rc = -1;
            break;
        }
    }
    if (ferror(f) && rc == 0) {
        s_err(err, errlen, "--config: cannot read '%s'", path);
        rc = -1;
    }
    fclose(f);
    if (rc == 0) {
        if (memchr(buf.data ? (const void *)buf.data : "", 0, buf.len)) {
            s_err(err, errlen, "--config: '%s' contains a NUL byte", path);
            rc = -1;
        } else {
            tf_buf_append(&buf, "", 1);
            rc = tf_config_apply_json(self, (const char *)buf.data, path, err, errlen);
        }
    }
    tf_buf_free(&buf);
    return rc;
}

bool tf_config_is_std(const char *path)
{
    return !path || strcmp(path, "-") == 0;
}

int tf_config_check(tf_config_t *self, char *err, size_t errlen)
{
    const char *cmd = tf_cmd_name(self->cmd);
    if (self->cmd == TF_CMD_VENTILATOR && !self->bind) {
        s_err(err, errlen, "ventilator: --bind ENDPOINT is required");
        return -1;
    }
    if (self->cmd == TF_CMD_SINK && !self->bind) {
        s_err(err, errlen, "sink: --bind ENDPOINT is required");
        return -1;
    }
    if (self->cmd == TF_CMD_SINK && !self->ventilator) {
        s_err(err, errlen, "sink: --ventilator ENDPOINT is required");
        return -1;
    }
    if (self->cmd == TF_CMD_WORKER && !self->connect) {
        s_err(err, errlen, "worker: --connect ENDPOINT is required");
        return -1;
    }
    if (self->cmd & EXEC_CMDS) {
        if (self->plugin && self->argc > 0) {
            s_err(err, errlen, "%s: give either --plugin or a COMMAND, not both", cmd);
            return -1;
        }
        if (self->pty && self->no_pty) {
            s_err(err, errlen, "%s: give either --pty or --no-pty", cmd);
            return -1;
        }
        if (self->plugin && self->pipe) {
            s_err(err, errlen, "%s: --pipe does not apply to --plugin", cmd);
            return -1;
        }
        bool remote_only = self->cmd == TF_CMD_RUN && self->workers == 0;
        if (!self->plugin && self->argc == 0 && !remote_only) {
            s_err(err, errlen, "%s: missing COMMAND (taskfarm %s [OPTIONS] -- COMMAND [ARG...])",
                  cmd, cmd);
            return -1;
        }
        if (self->cmd == TF_CMD_RUN && self->workers == 0 && !self->listen) {
            s_err(err, errlen, "run: -j 0 needs --listen ENDPOINT for remote workers");
            return -1;
        }
    }
    if (self->cmd == TF_CMD_WORKER && self->workers == 0) {
        s_err(err, errlen, "worker: -j must be at least 1");
        return -1;
    }
    if (self->resume && !self->journal && (self->cmd & OUT_CMDS)) {
        s_err(err, errlen, "%s: --resume needs --journal FILE", cmd);
        return -1;
    }
    if (self->heartbeat_timeout_ms < 2 * self->heartbeat_ms) {
        s_err(err, errlen, "%s: --heartbeat-timeout must be at least twice --heartbeat", cmd);
        return -1;
    }
    if (self->max_item > self->window_bytes)
        self->window_bytes = self->max_item;
    return 0;
}

void tf_config_usage(int cmd, void *out)
{
    FILE *f = out;
    switch (cmd) {
    case TF_CMD_RUN:
        fprintf(f, "Usage: taskfarm run [OPTIONS] -- COMMAND [ARG...]\n"
                   "Run COMMAND over every item on this box (ventilator, sink and N local\n"
                   "workers), results in input order. Each {} in ARGs is replaced by the item,\n"
                   "which is also given on COMMAND's stdin; its stdout is the result.\n");
        break;
    case TF_CMD_VENTILATOR:
        fprintf(f, "Usage: taskfarm ventilator --bind ENDPOINT [OPTIONS]\n"
                   "Read items and serve them to workers; a sink registers here too.\n");
        break;
    case TF_CMD_WORKER:
        fprintf(f, "Usage: taskfarm worker --connect ENDPOINT [OPTIONS] -- COMMAND [ARG...]\n"
                   "Take items from a ventilator, run COMMAND on each, send results to the\n"
                   "sink. Stays for the next job unless --once.\n");
        break;
    case TF_CMD_SINK:
        fprintf(f, "Usage: taskfarm sink --bind ENDPOINT --ventilator ENDPOINT [OPTIONS]\n"
                   "Collect results from workers and write them in input order.\n");
        break;
    case TF_CMD_KEYGEN:
        fprintf(f, "Usage: taskfarm keygen NAME\n"
                   "Write a CURVE certificate pair: NAME (public) and NAME_secret (secret).\n");
        return;
    default:
        return;
    }
    fprintf(f, "\nOptions:\n");
    for (size_t i = 0; i < S_NOPTIONS; i++) {
        const s_option_t *o = &s_options[i];
        if (!(o->cmds & cmd))
            continue;
        char left[64];
        if (o->short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(f, "  %-30s %s\n", left, o->help);
    }
    fprintf(f, "  %-30s %s\n", "-h, --help", "show this help");
}
