/*  tf_config.h -- command line and JSON configuration, from one option table.

    Each subcommand accepts a subset of the long options below. The same
    names are the keys of a --config JSON file; options given on the command
    line win over the file. Errors are one line naming the option (or the
    file and key) and parsing returns -1; nothing here exits or asserts.
*/
#ifndef TF_CONFIG_H_INCLUDED
#define TF_CONFIG_H_INCLUDED

#include "tf_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TF_CMD_RUN = 1,
    TF_CMD_VENTILATOR = 2,
    TF_CMD_WORKER = 4,
    TF_CMD_SINK = 8,
    TF_CMD_KEYGEN = 16
} tf_cmd_t;

#define TF_MAX_ENDPOINTS 8

typedef struct {
    int cmd;
    //  items and results
    char *input;  //  NULL = stdin
    char *output; //  NULL = stdout
    bool null_sep;
    bool unordered;
    //  running
    int64_t workers; //  -1 = online CPUs
    char *listen;
    char *bind;
    char *connect;
    char *sink;       //  worker: sink endpoint override
    char *ventilator; //  sink: ventilator endpoint
    char *advertise;  //  sink: endpoint workers should use
    bool pipe;
    bool no_pty;
    bool pty;
    char *plugin;
    bool once;
    bool die_with_parent;
    int64_t retries;
    int64_t timeout_ms;
    int64_t heartbeat_ms;
    int64_t heartbeat_timeout_ms;
    int64_t ack_timeout_ms;
    int64_t window;
    int64_t window_bytes;
    int64_t max_item;
    int64_t max_result;
    char *failed;
    int progress; //  -1 auto, 0 off, 1 on
    char *stats;
    char *journal;
    bool resume;
    char *config;
    char *curve_server_key;
    char *curve_client_key;
    char *curve_server_public;
    char *curve_allow;
    int64_t verbose;
    bool quiet;
    //  COMMAND [ARG...] (owned copies, NULL-terminated)
    char **argv;
    int argc;
    //  keygen NAME
    char *name;
    //  which options were given on the command line (by table index)
    uint64_t set_mask;
    bool help;
} tf_config_t;

//  Fills defaults for subcommand `cmd`.
void tf_config_init(tf_config_t *self, int cmd);
void tf_config_free(tf_config_t *self);

//  Parses argv (argv[0] is the subcommand name). On error writes a one-line
//  message into err and returns -1. Also loads --config when given.
int tf_config_parse(tf_config_t *self, int argc, char **argv, char *err, size_t errlen);
//  Applies a JSON config file: keys not already set on the command line.
int tf_config_load_json(tf_config_t *self, const char *path, char *err, size_t errlen);
//  Applies a JSON text (for tests); `origin` names it in errors.
int tf_config_apply_json(tf_config_t *self, const char *text, const char *origin, char *err,
                         size_t errlen);
//  Checks cross-option rules (required endpoints, command present, ...).
int tf_config_check(tf_config_t *self, char *err, size_t errlen);
//  True when `path` (-i / -o) means standard input or output: unset or "-".
bool tf_config_is_std(const char *path);

//  Prints --help for the subcommand to `out` (a FILE *).
void tf_config_usage(int cmd, void *out);
const char *tf_cmd_name(int cmd);
int tf_cmd_from_name(const char *name);

//  Validates a ZeroMQ endpoint (tcp://host:port, ipc://path, inproc://name).
int tf_endpoint_check(const char *endpoint, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
