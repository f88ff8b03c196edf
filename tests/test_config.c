/*  test_config.c -- command line and JSON configuration. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_config.h"
#include "tf_proto.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ERRLEN 512

//  Parses a NULL-terminated argument list (args[0] is the subcommand) into
//  `cfg`, which the caller frees. The strings are copied first: the parser
//  gets writable argv like main's.
static int s_parse(tf_config_t *cfg, const char *const *args, char *err)
{
    int argc = 0;
    while (args[argc])
        argc++;
    char **argv = calloc((size_t)argc + 1, sizeof(char *));
    cr_assert_not_null(argv);
    for (int i = 0; i < argc; i++)
        argv[i] = tf_strdup(args[i]);
    int cmd = tf_cmd_from_name(args[0]);
    cr_assert_neq(cmd, 0, "unknown subcommand '%s'", args[0]);
    tf_config_init(cfg, cmd);
    err[0] = '\0';
    int rc = tf_config_parse(cfg, argc, argv, err, ERRLEN);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
    return rc;
}

//  Parses, expects success and an empty error.
static void s_parse_ok(tf_config_t *cfg, const char *const *args)
{
    char err[ERRLEN];
    int rc = s_parse(cfg, args, err);
    cr_assert_eq(rc, 0, "%s: parse failed: %s", args[0], err);
}

//  Parses, expects -1 and an error mentioning every one of `needles`.
static void s_parse_fails(const char *const *args, const char *needle)
{
    tf_config_t cfg;
    char err[ERRLEN];
    int rc = s_parse(&cfg, args, err);
    cr_assert_eq(rc, -1, "%s %s: accepted", args[0], args[1] ? args[1] : "");
    cr_assert_gt(strlen(err), 0);
    cr_assert_null(strchr(err, '\n'), "error is one line: %s", err);
    cr_assert_not_null(strstr(err, needle), "error '%s' does not mention '%s'", err, needle);
    tf_config_free(&cfg);
}

static void s_check_fails(const char *const *args, const char *needle)
{
    tf_config_t cfg;
    char err[ERRLEN] = "";
    s_parse_ok(&cfg, args);
    int rc = tf_config_check(&cfg, err, sizeof err);
    cr_assert_eq(rc, -1, "check accepted %s %s", args[0], args[1] ? args[1] : "");
    cr_assert_not_null(strstr(err, needle), "error '%s' does not mention '%s'", err, needle);
    tf_config_free(&cfg);
}

static void s_check_ok(const char *const *args)
{
    tf_config_t cfg;
    char err[ERRLEN] = "";
    s_parse_ok(&cfg, args);
    cr_assert_eq(tf_config_check(&cfg, err, sizeof err), 0, "check failed: %s", err);
    tf_config_free(&cfg);
}

//  --------------------------------------------------------------------------

Test(config, subcommand_names)
{
    cr_assert_eq(tf_cmd_from_name("run"), TF_CMD_RUN);
    cr_assert_eq(tf_cmd_from_name("ventilator"), TF_CMD_VENTILATOR);
    cr_assert_eq(tf_cmd_from_name("worker"), TF_CMD_WORKER);
    cr_assert_eq(tf_cmd_from_name("sink"), TF_CMD_SINK);
    cr_assert_eq(tf_cmd_from_name("keygen"), TF_CMD_KEYGEN);
    cr_assert_eq(tf_cmd_from_name("Run"), 0);
    cr_assert_eq(tf_cmd_from_name(""), 0);
    cr_assert_eq(tf_cmd_from_name(NULL), 0);
    cr_assert_str_eq(tf_cmd_name(TF_CMD_SINK), "sink");
    cr_assert_str_eq(tf_cmd_name(0), "?");
}

Test(config, defaults)
{
    tf_config_t cfg;
    s_parse_ok(&cfg, ARGS("run", "--", "echo", "{}"));
    cr_assert_eq(cfg.cmd, TF_CMD_RUN);
    cr_assert_null(cfg.input);
    cr_assert_null(cfg.output);
    cr_assert_not(cfg.null_sep);
    cr_assert_not(cfg.unordered);
    cr_assert_eq(cfg.workers, -1);
    cr_assert_null(cfg.listen);
    cr_assert_not(cfg.pipe);
    cr_assert_not(cfg.no_pty);
    cr_assert_null(cfg.plugin);
    cr_assert_eq(cfg.retries, 3);
    cr_assert_eq(cfg.timeout_ms, 0);
    cr_assert_eq(cfg.heartbeat_ms, 500);
    cr_assert_eq(cfg.heartbeat_timeout_ms, 2000);
    cr_assert_eq(cfg.ack_timeout_ms, 10000);
    cr_assert_eq(cfg.window, 32768);
    cr_assert_eq(cfg.window_bytes, (int64_t)256 << 20);
    cr_assert_eq(cfg.max_item, TF_DEFAULT_MAX_ITEM);
    cr_assert_eq(cfg.max_result, TF_DEFAULT_MAX_RESULT);
    cr_assert_eq(cfg.progress, -1);
    cr_assert_eq(cfg.verbose, 1);
    cr_assert_not(cfg.quiet);
    cr_assert_not(cfg.resume);
    cr_assert_not(cfg.help);
    cr_assert_eq(cfg.set_mask, 0);
    cr_assert_eq(cfg.argc, 2);
    cr_assert_str_eq(cfg.argv[0], "echo");
    cr_assert_str_eq(cfg.argv[1], "{}");
    cr_assert_null(cfg.argv[2]);
    tf_config_free(&cfg);
    cr_assert_null(cfg.argv);
    cr_assert_eq(cfg.argc, 0);
    tf_config_free(&cfg); //  safe twice
}

Test(config, run_all_options)
{
    tf_config_t cfg;
    s_parse_ok(&cfg, ARGS("run", "-j", "4", "-i", "in.txt", "-o", "out.txt", "-0", "--unordered",
                          "--retries", "5", "--timeout", "1.5", "--heartbeat", "0.25",
                          "--heartbeat-timeout", "3", "--ack-timeout", "20", "--window", "100",
                          "--window-bytes", "1000", "--max-item", "10", "--max-result", "20",
                          "--failed", "failed.txt", "--progress", "--stats", "s.json", "--journal",
                          "j.log", "--resume", "--listen", "tcp://*:5555", "-v", "2", "-q",
                          "--pipe", "--no-pty", "--curve-server-key", "srv_secret", "--curve-allow",
                          "keys/", "--", "tr", "a-z", "A-Z"));
    cr_assert_eq(cfg.workers, 4);
    cr_assert_str_eq(cfg.input, "in.txt");
    cr_assert_str_eq(cfg.output, "out.txt");
    cr_assert(cfg.null_sep);
    cr_assert(cfg.unordered);
    cr_assert_eq(cfg.retries, 5);
    cr_assert_eq(cfg.timeout_ms, 1500);
    cr_assert_eq(cfg.heartbeat_ms, 250);
    cr_assert_eq(cfg.heartbeat_timeout_ms, 3000);
    cr_assert_eq(cfg.ack_timeout_ms, 20000);
    cr_assert_eq(cfg.window, 100);
    cr_assert_eq(cfg.window_bytes, 1000);
    cr_assert_eq(cfg.max_item, 10);
    cr_assert_eq(cfg.max_result, 20);
    cr_assert_str_eq(cfg.failed, "failed.txt");
    cr_assert_eq(cfg.progress, 1);
    cr_assert_str_eq(cfg.stats, "s.json");
    cr_assert_str_eq(cfg.journal, "j.log");
    cr_assert(cfg.resume);
    cr_assert_str_eq(cfg.listen, "tcp://*:5555");
    cr_assert_eq(cfg.verbose, 2);
    cr_assert(cfg.quiet);
    cr_assert(cfg.pipe);
    cr_assert(cfg.no_pty);
    cr_assert_str_eq(cfg.curve_server_key, "srv_secret");
    cr_assert_str_eq(cfg.curve_allow, "keys/");
    cr_assert_eq(cfg.argc, 3);
    cr_assert_str_eq(cfg.argv[0], "tr");
    cr_assert_str_eq(cfg.argv[2], "A-Z");
    cr_assert_null(cfg.argv[3]);
    tf_config_free(&cfg);
}

Test(config, option_forms)
{
    tf_config_t cfg;
    //  --name=value, -jN, a later option overrides an earlier one, and the
    //  command may start without "--" (options stop at the first argument).
    s_parse_ok(&cfg, ARGS("run", "--workers=8", "-j3", "--output=a", "-o", "b", "--no-progress",
                          "cat", "-n", "--retries", "2"));
    cr_assert_eq(cfg.workers, 3);
    cr_assert_str_eq(cfg.output, "b");
    cr_assert_eq(cfg.progress, 0);
    cr_assert_eq(cfg.retries, 3, "options after the command belong to the command");
    cr_assert_eq(cfg.argc, 4);
    cr_assert_str_eq(cfg.argv[0], "cat");
    cr_assert_str_eq(cfg.argv[1], "-n");
    cr_assert_str_eq(cfg.argv[2], "--retries");
    tf_config_free(&cfg);
}

Test(config, help)
{
    tf_config_t cfg;
    s_parse_ok(&cfg, ARGS("sink", "--help"));
    cr_assert(cfg.help);
    tf_config_free(&cfg);
    s_parse_ok(&cfg, ARGS("worker", "-h"));
    cr_assert(cfg.help);
    tf_config_free(&cfg);
}

Test(config, per_subcommand)
{
    tf_config_t cfg;
    s_parse_ok(&cfg, ARGS("ventilator", "--bind", "tcp://*:5555", "-i", "items", "--window", "10",
                          "--retries", "1", "--timeout", "0", "-0"));
    cr_assert_eq(cfg.cmd, TF_CMD_VENTILATOR);
    cr_assert_str_eq(cfg.bind, "tcp://*:5555");
    cr_assert_str_eq(cfg.input, "items");
    cr_assert_eq(cfg.window, 10);
    cr_assert_eq(cfg.retries, 1);
    cr_assert(cfg.null_sep);
    tf_config_free(&cfg);

    s_parse_ok(&cfg,
               ARGS("worker", "--connect", "tcp://vent.example:5555", "--sink", "ipc:///tmp/sink",
                    "--once", "-j", "2", "--max-item", "1024", "--", "wc", "-c"));
    cr_assert_eq(cfg.cmd, TF_CMD_WORKER);
    cr_assert_str_eq(cfg.connect, "tcp://vent.example:5555");
    cr_assert_str_eq(cfg.sink, "ipc:///tmp/sink");
    cr_assert(cfg.once);
    cr_assert_eq(cfg.workers, 2);
    cr_assert_eq(cfg.max_item, 1024);
    cr_assert_eq(cfg.argc, 2);
    tf_config_free(&cfg);

    s_parse_ok(&cfg, ARGS("sink", "--bind", "tcp://*:5556", "--ventilator", "tcp://127.0.0.1:5555",
                          "--advertise", "tcp://10.1.1.1:5556", "-o", "out", "--journal", "j",
                          "--resume", "--unordered"));
    cr_assert_eq(cfg.cmd, TF_CMD_SINK);
    cr_assert_str_eq(cfg.bind, "tcp://*:5556");
    cr_assert_str_eq(cfg.ventilator, "tcp://127.0.0.1:5555");
    cr_assert_str_eq(cfg.advertise, "tcp://10.1.1.1:5556");
    cr_assert_str_eq(cfg.output, "out");
    cr_assert(cfg.unordered);
    cr_assert(cfg.resume);
    tf_config_free(&cfg);

    s_parse_ok(&cfg, ARGS("keygen", "server"));
    cr_assert_eq(cfg.cmd, TF_CMD_KEYGEN);
    cr_assert_str_eq(cfg.name, "server");
    tf_config_free(&cfg);
}

Test(config, keygen_arguments)
{
    s_parse_fails(ARGS("keygen"), "exactly one NAME");
    s_parse_fails(ARGS("keygen", "a", "b"), "exactly one NAME");
    s_parse_fails(ARGS("keygen", "--retries", "3", "name"), "--retries");
}

Test(config, unexpected_arguments)
{
    s_parse_fails(ARGS("ventilator", "--bind", "tcp://*:1", "extra"), "'extra'");
    s_parse_fails(ARGS("sink", "--bind", "tcp://*:1", "--", "cat"), "'cat'");
}

//  Every numeric option: bad numbers, negative, trailing garbage, overflow,
//  just outside the bounds. The error names the option.
typedef struct {
    const char *cmd;
    const char *option;
    const char *value;
} s_num_t;

static const s_num_t s_bad_numbers[] = {
    {"run", "--workers", "abc"},
    {"run", "--workers", "-1"},
    {"run", "--workers", "4097"},
    {"run", "--workers", "4x"},
    {"run", "--workers", "4.0"},
    {"run", "--workers", ""},
    {"run", "--workers", "99999999999999999999"},
    {"worker", "--workers", "-5"},
    {"run", "--retries", "0"},
    {"run", "--retries", "1001"},
    {"run", "--retries", "-3"},
    {"run", "--retries", "3 "},
    {"ventilator", "--retries", "1e3"},
    {"run", "--timeout", "-1"},
    {"run", "--timeout", "abc"},
    {"run", "--timeout", "1.5s"},
    {"run", "--timeout", ""},
    {"run", "--timeout", "nan"},
    {"run", "--timeout", "inf"},
    {"run", "--timeout", "1e300"},
    {"run", "--timeout", "31536001"},
    {"run", "--heartbeat", "0"},
    {"run", "--heartbeat", "0.009"},
    {"run", "--heartbeat", "60.001"},
    {"sink", "--heartbeat", "x"},
    {"worker", "--heartbeat", "-0.5"},
    {"run", "--heartbeat-timeout", "0.019"},
    {"run", "--heartbeat-timeout", "3600.5"},
    {"ventilator", "--heartbeat-timeout", "2,5"},
    {"run", "--ack-timeout", "0.099"},
    {"run", "--ack-timeout", "3601"},
    {"run", "--window", "0"},
    {"run", "--window", "16777217"},
    {"run", "--window", "-1"},
    {"run", "--window-bytes", "0"},
    {"run", "--window-bytes", "9223372036854775808"},
    {"run", "--window-bytes", "1k"},
    {"run", "--max-item", "0"},
    {"run", "--max-item", "1073741825"},
    {"worker", "--max-item", "0x10"},
    {"run", "--max-result", "0"},
    {"run", "--max-result", "2147483649"},
    {"sink", "--max-result", "-2147483648"},
    {"run", "--verbose", "4"},
    {"run", "--verbose", "-1"},
    {"worker", "--verbose", "two"},
};

Test(config, numeric_bounds_rejected)
{
    for (size_t i = 0; i < sizeof s_bad_numbers / sizeof s_bad_numbers[0]; i++) {
        const s_num_t *t = &s_bad_numbers[i];
        s_parse_fails(ARGS(t->cmd, t->option, t->value), t->option);
        //  Same through --name=value.
        char joined[128];
        snprintf(joined, sizeof joined, "%s=%s", t->option, t->value);
        s_parse_fails(ARGS(t->cmd, joined), t->option);
    }
    //  Short forms name the long option too.
    s_parse_fails(ARGS("run", "-j", "-1"), "--workers");
    s_parse_fails(ARGS("run", "-v", "9"), "--verbose");
}

typedef struct {
    const char *option;
    const char *value;
    size_t offset;
    int64_t expect;
} s_good_num_t;

#define OFF(f) offsetof(tf_config_t, f)
static const s_good_num_t s_good_numbers[] = {
    {"--workers", "0", OFF(workers), 0},
    {"--workers", "4096", OFF(workers), 4096},
    {"--workers", "+7", OFF(workers), 7},
    {"--retries", "1", OFF(retries), 1},
    {"--retries", "1000", OFF(retries), 1000},
    {"--timeout", "0", OFF(timeout_ms), 0},
    {"--timeout", "0.0005", OFF(timeout_ms), 1},
    {"--timeout", "2", OFF(timeout_ms), 2000},
    {"--timeout", "31536000", OFF(timeout_ms), (int64_t)31536000 * 1000},
    {"--heartbeat", "0.01", OFF(heartbeat_ms), 10},
    {"--heartbeat", "60", OFF(heartbeat_ms), 60000},
    {"--heartbeat-timeout", "0.02", OFF(heartbeat_timeout_ms), 20},
    {"--heartbeat-timeout", "3600", OFF(heartbeat_timeout_ms), 3600000},
    {"--ack-timeout", "0.1", OFF(ack_timeout_ms), 100},
    {"--window", "1", OFF(window), 1},
    {"--window", "16777216", OFF(window), 16777216},
    {"--window-bytes", "9223372036854775807", OFF(window_bytes), INT64_MAX},
    {"--max-item", "1073741824", OFF(max_item), (int64_t)1 << 30},
    {"--max-result", "2147483648", OFF(max_result), (int64_t)1 << 31},
    {"--verbose", "0", OFF(verbose), 0},
    {"--verbose", "3", OFF(verbose), 3},
};

Test(config, numeric_bounds_accepted)
{
    for (size_t i = 0; i < sizeof s_good_numbers / sizeof s_good_numbers[0]; i++) {
        const s_good_num_t *t = &s_good_numbers[i];
        tf_config_t cfg;
        s_parse_ok(&cfg, ARGS("run", t->option, t->value));
        int64_t got = *(const int64_t *)(const void *)((const char *)&cfg + t->offset);
        cr_assert_eq(got, t->expect, "%s %s: %lld, expected %lld", t->option, t->value,
                     (long long)got, (long long)t->expect);
        cr_assert_neq(cfg.set_mask, 0);
        tf_config_free(&cfg);
    }
}

Test(config, unknown_and_inapplicable_options)
{
    s_parse_fails(ARGS("run", "--bogus"), "--bogus");
    s_parse_fails(ARGS("run", "--bogus=1"), "--bogus");
    s_parse_fails(ARGS("run", "-Z"), "-Z");
    s_parse_fails(ARGS("worker", "-i", "file"), "-i");
    //  Options of other subcommands.
    s_parse_fails(ARGS("sink", "-j", "4"), "-j");
    s_parse_fails(ARGS("sink", "--workers", "4"), "--workers");
    s_parse_fails(ARGS("sink", "--input", "x"), "--input");
    s_parse_fails(ARGS("worker", "--listen", "tcp://*:1"), "--listen");
    s_parse_fails(ARGS("worker", "--bind", "tcp://*:1"), "--bind");
    s_parse_fails(ARGS("worker", "--output", "x"), "--output");
    s_parse_fails(ARGS("ventilator", "--output", "x"), "--output");
    s_parse_fails(ARGS("ventilator", "--connect", "tcp://h:1"), "--connect");
    s_parse_fails(ARGS("ventilator", "--pipe"), "--pipe");
    s_parse_fails(ARGS("run", "--bind", "tcp://*:1"), "--bind");
    s_parse_fails(ARGS("run", "--once"), "--once");
    s_parse_fails(ARGS("sink", "--journal=j", "--timeout", "3"), "--timeout");
    s_parse_fails(ARGS("keygen", "--verbose", "2", "x"), "--verbose");
}

Test(config, missing_values)
{
    s_parse_fails(ARGS("run", "-j"), "-j");
    s_parse_fails(ARGS("run", "--retries"), "--retries");
    s_parse_fails(ARGS("run", "--input"), "--input");
    s_parse_fails(ARGS("ventilator", "--bind"), "--bind");
    s_parse_fails(ARGS("worker", "--connect"), "--connect");
    s_parse_fails(ARGS("run", "-o"), "-o");
    //  An empty string is not a value either.
    s_parse_fails(ARGS("run", "--input", ""), "--input");
    s_parse_fails(ARGS("run", "--stats="), "--stats");
}

//  --------------------------------------------------------------------------
//  Endpoints

typedef struct {
    const char *endpoint;
    bool ok;
} s_ep_t;

static const s_ep_t s_endpoints[] = {
    {"tcp://host:5555", true},
    {"tcp://*:*", true},
    {"tcp://*:5555", true},
    {"tcp://127.0.0.1:1", true},
    {"tcp://localhost:65535", true},
    {"tcp://eth0:0", true},
    {"tcp://[::1]:80", true},
    {"tcp://198.18.0.1:5555", true},
    {"ipc:///tmp/taskfarm.sock", true},
    {"ipc://@abstract", true},
    {"ipc://relative/path", true},
    {"inproc://x", true},
    {"inproc://vent-1", true},
    {"", false},
    {"tcp://host", false},
    {"tcp://host:", false},
    {"tcp://:5555", false},
    {"tcp://", false},
    {"tcp://host:65536", false},
    {"tcp://host:99999999999999999999", false},
    {"tcp://host:-1", false},
    {"tcp://host:80a", false},
    {"tcp://host:port", false},
    {"tcp://ho st:80", false},
    {"tcp://host:80 ", false},
    {" tcp://host:80", false},
    {"tcp://host:80\n", false},
    {"tcp://host\t:80", false},
    {"tcp://h\xc3\xa9:80", false},
    {"udp://host:80", false},
    {"pgm://eth0;239.192.1.1:5555", false},
    {"TCP://host:80", false},
    {"host:80", false},
    {"ipc://", false},
    {"inproc://", false},
    {"inproc:/x", false},
};

Test(config, endpoint_check)
{
    for (size_t i = 0; i < sizeof s_endpoints / sizeof s_endpoints[0]; i++) {
        const s_ep_t *t = &s_endpoints[i];
        char err[ERRLEN] = "";
        int rc = tf_endpoint_check(t->endpoint, err, sizeof err);
        cr_assert_eq(rc, t->ok ? 0 : -1, "'%s': rc %d, expected %d (%s)", t->endpoint, rc,
                     t->ok ? 0 : -1, err);
        if (!t->ok)
            cr_assert_gt(strlen(err), 0, "'%s': no error message", t->endpoint);
    }
    char err[ERRLEN];
    cr_assert_eq(tf_endpoint_check(NULL, err, sizeof err), -1);
    //  Longer than 255 characters.
    char longep[300];
    memcpy(longep, "ipc://", 6);
    memset(longep + 6, 'a', sizeof longep - 7);
    longep[sizeof longep - 1] = '\0';
    cr_assert_eq(tf_endpoint_check(longep, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "255"));
    longep[255] = '\0';
    cr_assert_eq(tf_endpoint_check(longep, err, sizeof err), 0, "255 characters: %s", err);
}

Test(config, endpoint_options_checked)
{
    s_parse_fails(ARGS("worker", "--connect", "tcp://host"), "--connect");
    s_parse_fails(ARGS("worker", "--sink", "udp://x:1"), "--sink");
    s_parse_fails(ARGS("ventilator", "--bind", "tcp://*:70000"), "--bind");
    s_parse_fails(ARGS("sink", "--ventilator", "tcp://a b:1"), "--ventilator");
    s_parse_fails(ARGS("sink", "--advertise", "ipc://"), "--advertise");
    s_parse_fails(ARGS("run", "--listen", "tcp://:1"), "--listen");
}

//  --------------------------------------------------------------------------
//  Cross-option rules

Test(config, check_rules)
{
    s_check_fails(ARGS("ventilator"), "--bind");
    s_check_ok(ARGS("ventilator", "--bind", "tcp://*:5555"));
    s_check_fails(ARGS("sink", "--ventilator", "tcp://h:1"), "--bind");
    s_check_fails(ARGS("sink", "--bind", "tcp://*:5556"), "--ventilator");
    s_check_ok(ARGS("sink", "--bind", "tcp://*:5556", "--ventilator", "tcp://h:1"));
    s_check_fails(ARGS("worker", "--", "cat"), "--connect");
    s_check_fails(ARGS("worker", "--connect", "tcp://h:1"), "COMMAND");
    s_check_ok(ARGS("worker", "--connect", "tcp://h:1", "--", "cat"));
    s_check_fails(ARGS("worker", "--connect", "tcp://h:1", "-j", "0", "--", "cat"), "-j");
    s_check_fails(ARGS("run"), "COMMAND");
    s_check_fails(ARGS("run", "-j", "2"), "COMMAND");
    s_check_ok(ARGS("run", "--", "cat"));
    s_check_ok(ARGS("run", "-j", "0", "--listen", "tcp://*:5555"));
    s_check_fails(ARGS("run", "-j", "0"), "--listen");
    s_check_fails(ARGS("run", "-j", "0", "--", "cat"), "--listen");
    s_check_ok(ARGS("run", "-j", "0", "--listen", "tcp://*:1", "--", "cat"));
    s_check_fails(ARGS("run", "--plugin", "lib.so", "--", "cat"), "--plugin");
    s_check_fails(ARGS("worker", "--connect", "tcp://h:1", "--plugin", "lib.so", "--", "cat"),
                  "--plugin");
    s_check_ok(ARGS("run", "--plugin", "lib.so"));
    s_check_fails(ARGS("run", "--plugin", "lib.so", "--pipe"), "--pipe");
    s_check_fails(ARGS("run", "--resume", "--", "cat"), "--journal");
    s_check_fails(ARGS("sink", "--bind", "tcp://*:1", "--ventilator", "tcp://h:1", "--resume"),
                  "--journal");
    s_check_ok(ARGS("run", "--resume", "--journal", "j", "--", "cat"));
    s_check_fails(ARGS("run", "--heartbeat", "1", "--heartbeat-timeout", "1.999", "--", "cat"),
                  "--heartbeat-timeout");
    s_check_ok(ARGS("run", "--heartbeat", "1", "--heartbeat-timeout", "2", "--", "cat"));
}

Test(config, check_raises_window_bytes)
{
    tf_config_t cfg;
    char err[ERRLEN];
    s_parse_ok(&cfg, ARGS("run", "--window-bytes", "100", "--max-item", "1000", "--", "cat"));
    cr_assert_eq(tf_config_check(&cfg, err, sizeof err), 0);
    cr_assert_eq(cfg.window_bytes, 1000);
    tf_config_free(&cfg);
}

//  --------------------------------------------------------------------------
//  JSON configuration

static int s_json(tf_config_t *cfg, int cmd, const char *text, char *err)
{
    tf_config_init(cfg, cmd);
    err[0] = '\0';
    return tf_config_apply_json(cfg, text, "cfg.json", err, ERRLEN);
}

Test(config, json_values)
{
    tf_config_t cfg;
    char err[ERRLEN];
    int rc = s_json(&cfg, TF_CMD_RUN,
                    "{\"workers\": 4, \"retries\": \"2\", \"timeout\": 1.5, \"heartbeat\": 0.25,"
                    " \"input\": \"in.txt\", \"unordered\": true, \"null\": false,"
                    " \"no-progress\": true, \"listen\": \"tcp://*:5555\","
                    " \"window-bytes\": 4096, \"command\": [\"tr\", \"a-z\", \"A-Z\"]}",
                    err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(cfg.workers, 4);
    cr_assert_eq(cfg.retries, 2);
    cr_assert_eq(cfg.timeout_ms, 1500);
    cr_assert_eq(cfg.heartbeat_ms, 250);
    cr_assert_str_eq(cfg.input, "in.txt");
    cr_assert(cfg.unordered);
    cr_assert_not(cfg.null_sep);
    cr_assert_eq(cfg.progress, 0);
    cr_assert_str_eq(cfg.listen, "tcp://*:5555");
    cr_assert_eq(cfg.window_bytes, 4096);
    cr_assert_eq(cfg.argc, 3);
    cr_assert_str_eq(cfg.argv[0], "tr");
    cr_assert_str_eq(cfg.argv[2], "A-Z");
    cr_assert_null(cfg.argv[3]);
    tf_config_free(&cfg);

    rc = s_json(&cfg, TF_CMD_RUN, "{\"progress\": false, \"pipe\": true}", err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(cfg.progress, 0);
    cr_assert(cfg.pipe);
    tf_config_free(&cfg);

    rc = s_json(&cfg, TF_CMD_RUN, "{}", err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(cfg.workers, -1);
    tf_config_free(&cfg);
}

typedef struct {
    int cmd;
    const char *json;
    const char *needle;
} s_bad_json_t;

static const s_bad_json_t s_bad_json[] = {
    {TF_CMD_RUN, "{\"bogus\": 1}", "'bogus'"},
    {TF_CMD_RUN, "{\"workers\": 2, \"wokrers\": 3}", "'wokrers'"},
    {TF_CMD_RUN, "{\"config\": \"other.json\"}", "'config'"},
    {TF_CMD_RUN, "{\"workers\": \"many\"}", "workers"},
    {TF_CMD_RUN, "{\"workers\": true}", "workers"},
    {TF_CMD_RUN, "{\"workers\": null}", "workers"},
    {TF_CMD_RUN, "{\"workers\": [4]}", "workers"},
    {TF_CMD_RUN, "{\"workers\": 2.5}", "workers"},
    {TF_CMD_RUN, "{\"workers\": -1}", "workers"},
    {TF_CMD_RUN, "{\"workers\": 5000}", "workers"},
    {TF_CMD_RUN, "{\"retries\": 0}", "retries"},
    {TF_CMD_RUN, "{\"timeout\": -2}", "timeout"},
    {TF_CMD_RUN, "{\"timeout\": \"soon\"}", "timeout"},
    {TF_CMD_RUN, "{\"heartbeat\": 0}", "heartbeat"},
    {TF_CMD_RUN, "{\"unordered\": 1}", "unordered"},
    {TF_CMD_RUN, "{\"unordered\": \"yes\"}", "unordered"},
    {TF_CMD_RUN, "{\"progress\": \"on\"}", "progress"},
    {TF_CMD_RUN, "{\"input\": 5}", "input"},
    {TF_CMD_RUN, "{\"input\": \"\"}", "input"},
    {TF_CMD_RUN, "{\"listen\": \"tcp://host\"}", "listen"},
    {TF_CMD_RUN, "{\"command\": \"echo hi\"}", "command"},
    {TF_CMD_RUN, "{\"command\": []}", "command"},
    {TF_CMD_RUN, "{\"command\": [\"echo\", 1]}", "command"},
    {TF_CMD_RUN, "{\"command\": [null]}", "command"},
    {TF_CMD_SINK, "{\"command\": [\"cat\"]}", "command"},
    {TF_CMD_SINK, "{\"workers\": 4}", "workers"},
    {TF_CMD_WORKER, "{\"output\": \"x\"}", "output"},
    {TF_CMD_VENTILATOR, "{\"journal\": \"j\"}", "journal"},
    {TF_CMD_RUN, "[1, 2]", "object"},
    {TF_CMD_RUN, "\"workers\"", "object"},
    {TF_CMD_RUN, "", "line 1"},
    {TF_CMD_RUN, "{\"workers\": 4", "invalid JSON"},
    {TF_CMD_RUN, "{\n  \"workers\": 4,\n  \"retries\": ,\n  \"timeout\": 1\n}", "line 3"},
    {TF_CMD_RUN, "{\n\n\n\n  \"workers\" 4\n}", "line 5"},
    {TF_CMD_RUN, "{\"workers\": 4,}", "invalid JSON"},
    {TF_CMD_RUN, "{'workers': 4}", "invalid JSON"},
};

Test(config, json_errors)
{
    for (size_t i = 0; i < sizeof s_bad_json / sizeof s_bad_json[0]; i++) {
        const s_bad_json_t *t = &s_bad_json[i];
        tf_config_t cfg;
        char err[ERRLEN];
        int rc = s_json(&cfg, t->cmd, t->json, err);
        cr_assert_eq(rc, -1, "accepted: %s", t->json);
        cr_assert_not_null(strstr(err, "cfg.json"), "error '%s' does not name the file", err);
        cr_assert_not_null(strstr(err, t->needle), "%s: error '%s' does not mention '%s'", t->json,
                           err, t->needle);
        cr_assert_null(strchr(err, '\n'), "error is one line: %s", err);
        tf_config_free(&cfg);
    }
}

Test(config, command_line_wins_over_json)
{
    tf_config_t cfg;
    char err[ERRLEN];
    s_parse_ok(&cfg, ARGS("run", "-j", "2", "--no-progress", "-i", "cli.txt", "--", "echo"));
    int rc = tf_config_apply_json(&cfg,
                                  "{\"workers\": 8, \"retries\": 7, \"progress\": true,"
                                  " \"input\": \"file.txt\", \"output\": \"out.txt\","
                                  " \"command\": [\"cat\", \"-n\"]}",
                                  "cfg.json", err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(cfg.workers, 2);
    cr_assert_eq(cfg.progress, 0);
    cr_assert_str_eq(cfg.input, "cli.txt");
    cr_assert_eq(cfg.retries, 7, "keys not on the command line apply");
    cr_assert_str_eq(cfg.output, "out.txt");
    cr_assert_eq(cfg.argc, 1);
    cr_assert_str_eq(cfg.argv[0], "echo");
    tf_config_free(&cfg);
}

//  A scratch directory for config files, removed at the end.
static char s_dir[64];

static void s_mkdir(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/tf_test_config_XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
}

static void s_rmdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    cr_assert_eq(system(cmd), 0);
}

static void s_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

Test(config, load_json_file, .init = s_mkdir, .fini = s_rmdir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/taskfarm.json", s_dir);
    const char text[] = "{\n  \"workers\": 6,\n  \"output\": \"results.txt\"\n}\n";
    s_write_file(path, text, sizeof text - 1);
    tf_config_t cfg;
    char err[ERRLEN] = "";
    tf_config_init(&cfg, TF_CMD_RUN);
    cr_assert_eq(tf_config_load_json(&cfg, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.workers, 6);
    cr_assert_str_eq(cfg.output, "results.txt");
    tf_config_free(&cfg);

    //  --config on the command line loads it, and the command line wins.
    s_parse_ok(&cfg, ARGS("run", "-o", "cli.txt", "--config", path, "--", "cat"));
    cr_assert_eq(cfg.workers, 6);
    cr_assert_str_eq(cfg.output, "cli.txt");
    cr_assert_str_eq(cfg.config, path);
    tf_config_free(&cfg);

    //  Errors name the file.
    const char bad[] = "{\n  \"workers\": 6,\n  \"colour\": \"blue\"\n}\n";
    s_write_file(path, bad, sizeof bad - 1);
    s_parse_fails(ARGS("run", "--config", path, "--", "cat"), "'colour'");
    s_parse_fails(ARGS("run", "--config", path, "--", "cat"), path);
}

Test(config, load_json_missing_file, .init = s_mkdir, .fini = s_rmdir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/missing.json", s_dir);
    tf_config_t cfg;
    char err[ERRLEN] = "";
    tf_config_init(&cfg, TF_CMD_RUN);
    cr_assert_eq(tf_config_load_json(&cfg, path, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, path), "error '%s' does not name the file", err);
    cr_assert_not_null(strstr(err, "No such file"), "error '%s' does not give the reason", err);
    tf_config_free(&cfg);
    s_parse_fails(ARGS("run", "--config", path, "--", "cat"), "missing.json");
}

Test(config, load_json_nul_and_size, .init = s_mkdir, .fini = s_rmdir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/odd.json", s_dir);
    tf_config_t cfg;
    char err[ERRLEN] = "";
    //  A NUL byte would hide the rest of the file from the JSON parser.
    const char nul[] = "{\"workers\": 2}\0{\"bogus\": 1}";
    s_write_file(path, nul, sizeof nul - 1);
    tf_config_init(&cfg, TF_CMD_RUN);
    cr_assert_eq(tf_config_load_json(&cfg, path, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "NUL"), "%s", err);
    tf_config_free(&cfg);
    //  Larger than 1 MiB.
    size_t big = (1u << 20) + 10;
    char *text = malloc(big);
    memset(text, ' ', big);
    text[0] = '{';
    text[big - 1] = '}';
    s_write_file(path, text, big);
    free(text);
    tf_config_init(&cfg, TF_CMD_RUN);
    cr_assert_eq(tf_config_load_json(&cfg, path, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "1 MiB"), "%s", err);
    tf_config_free(&cfg);
    //  Empty file: invalid JSON.
    s_write_file(path, "", 0);
    tf_config_init(&cfg, TF_CMD_RUN);
    cr_assert_eq(tf_config_load_json(&cfg, path, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "invalid JSON"), "%s", err);
    tf_config_free(&cfg);
    //  A directory is not a config file.
    tf_config_init(&cfg, TF_CMD_RUN);
    cr_assert_eq(tf_config_load_json(&cfg, s_dir, err, sizeof err), -1);
    tf_config_free(&cfg);
}

Test(config, usage_lists_options)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    tf_config_usage(TF_CMD_SINK, f);
    fclose(f);
    cr_assert_not_null(strstr(buf, "--ventilator"));
    cr_assert_not_null(strstr(buf, "--bind"));
    cr_assert_null(strstr(buf, "--workers"), "run-only option listed for sink");
    free(buf);
}
