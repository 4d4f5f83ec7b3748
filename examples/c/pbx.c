/*
 * A tiny PBX in C that embeds modhost through its C API (crates/modhost-capi/include/modhost.h).
 *
 * It gives modules its own API, pbx:telephony (examples/wit/telephony.wit), as one C
 * callback taking and returning JSON; installs the core, voicemail and callback modules
 * from a package directory into a fresh root, granting callback the API it asks for; tells
 * the modules a voicemail was left, with the caller's channel as the dispatch's context;
 * and prints what the callback module did through the API.
 *
 *   cargo build -p modhost-capi && cargo xtask modules
 *   make -C examples/c && examples/c/pbx target/modules
 *
 * A real PBX parses JSON with a library (Asterisk has ast_json, over jansson); this one
 * reads the two string fields it needs by hand to stay one file.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modhost.h"

/* The switch: the channels modules originate, and their states. */
#define MAX_CHANNELS 64
struct channel {
    char name[64];
    const char *state; /* "down", "ringing" or "up": the WIT enum's case names */
};
struct switchboard {
    pthread_mutex_t lock; /* callbacks may run on several threads at once */
    struct channel channels[MAX_CHANNELS];
    int count;
};

/* Copies the string field `key` of the flat JSON object `json` into `out`; 0 if found. */
static int json_field(const char *json, const char *key, char *out, size_t size) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *at = strstr(json, pattern);
    if (at == NULL) {
        return -1;
    }
    at += strlen(pattern);
    size_t n = 0;
    while (at[n] != '"' && at[n] != '\0' && at[n] != '\\' && n + 1 < size) {
        out[n] = at[n];
        n++;
    }
    if (at[n] != '"') {
        return -1; /* escaped, unterminated or too long: not a name this PBX makes */
    }
    out[n] = '\0';
    return 0;
}

/* A malloc'ed copy of `text`, as modhost frees a callback's answer. */
static char *answer(const char *format, const char *value) {
    size_t size = strlen(format) + strlen(value) + 1;
    char *text = malloc(size);
    if (text != NULL) {
        snprintf(text, size, format, value);
    }
    return text;
}

/* A malloc'ed JSON string of `text`: quotes, backslashes and control characters escaped,
 * as a context the application passed may hold any of them. */
static char *json_string(const char *text) {
    size_t size = 3;
    for (const char *c = text; *c; c++) {
        size += (unsigned char)*c < 0x20 ? 6 : (*c == '"' || *c == '\\') ? 2 : 1;
    }
    char *json = malloc(size), *out = json;
    if (json == NULL) {
        return NULL;
    }
    *out++ = '"';
    for (const char *c = text; *c; c++) {
        if ((unsigned char)*c < 0x20) {
            out += sprintf(out, "\\u%04x", (unsigned char)*c);
        } else {
            if (*c == '"' || *c == '\\') {
                *out++ = '\\';
            }
            *out++ = *c;
        }
    }
    *out++ = '"';
    *out = '\0';
    return json;
}

/* pbx:telephony/calls@1.0.0: every function of the interface, told apart by `function`. */
static int telephony(void *user_data, const char *function, const char *args_json,
                     const char *context, char **result_json) {
    struct switchboard *sw = user_data;
    char caller[32], callee[32], channel[64];
    int status = 0;

    if (strcmp(function, "current-channel") == 0) {
        /* option<string>: the string as JSON, or no answer (null) for none. */
        *result_json = context ? json_string(context) : NULL;
        return 0;
    }
    pthread_mutex_lock(&sw->lock);
    if (strcmp(function, "originate") == 0) {
        if (json_field(args_json, "caller", caller, sizeof caller) != 0 ||
            json_field(args_json, "callee", callee, sizeof callee) != 0 ||
            callee[strspn(callee, "0123456789")] != '\0' || sw->count == MAX_CHANNELS) {
            /* result<string, string>: a non-zero answer is the module's err(message). */
            *result_json = answer("cannot originate %s", args_json);
            status = 1;
        } else {
            struct channel *c = &sw->channels[sw->count];
            snprintf(c->name, sizeof c->name, "PJSIP/%s-%08x", caller, (unsigned)sw->count);
            c->state = "ringing";
            sw->count++;
            *result_json = answer("{\"ok\":\"%s\"}", c->name);
        }
    } else if (json_field(args_json, "channel", channel, sizeof channel) == 0) {
        struct channel *c = NULL;
        for (int i = 0; i < sw->count; i++) {
            if (strcmp(sw->channels[i].name, channel) == 0) {
                c = &sw->channels[i];
            }
        }
        if (c == NULL) {
            *result_json = answer("no channel %s", channel);
            status = 1;
        } else if (strcmp(function, "hangup") == 0) {
            c->state = "down";
            *result_json = strdup("{\"ok\":null}"); /* result<_, string> */
        } else { /* channel-state: result<state, string> */
            *result_json = answer("{\"ok\":\"%s\"}", c->state);
        }
    } else {
        *result_json = answer("unknown call %s", function);
        status = 1;
    }
    pthread_mutex_unlock(&sw->lock);
    return status;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Where modules' log records (and modhost's own) go: the PBX's log, here the stream
 * given as user_data, at the PBX's names for the levels. It may be called on any thread
 * that calls modhost; a module's text is its own, so a real PBX escapes it for its log. */
static void log_record(void *user_data, int level, const char *module, const char *message) {
    static const char *const levels[] = {"", "ERROR", "WARNING", "NOTICE", "DEBUG", "TRACE"};
    fprintf((FILE *)user_data, "[%s] %s: %s\n", levels[level], module ? module : "modhost",
            message);
}

/* Prints modhost's message for a failed `what`, frees it, and says whether it failed.
 * It takes the error's address, not its value: C does not say whether an argument is
 * evaluated before or after the call in another argument that sets it. */
static int failed(int status, char **error, const char *what) {
    if (status == MODHOST_OK) {
        return 0;
    }
    fprintf(stderr, "pbx: %s: %s (status %d)\n", what, *error ? *error : "?", status);
    modhost_string_free(*error);
    *error = NULL;
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PACKAGE-DIR\n", argv[0]);
        return 2;
    }
    char root[] = "/tmp/modhost-pbx-XXXXXX";
    if (mkdtemp(root) == NULL) {
        perror("pbx: mkdtemp");
        return 1;
    }
    static struct switchboard sw = {.lock = PTHREAD_MUTEX_INITIALIZER};
    int code = 1;
    char *error = NULL, *changes = NULL, *result = NULL;
    modhost_capability *telephony_api = NULL;
    modhost_host *host = NULL;

    /* The API modules may import, granted by the administrator (MODHOST_GRANT below). */
    const char *functions[] = {"originate", "hangup", "channel-state", "current-channel"};
    if (failed(modhost_capability_new("pbx:telephony", true, &telephony_api, &error), &error,
               "capability") ||
        failed(modhost_capability_add(telephony_api, "pbx:telephony/calls@1.0.0", functions, 4,
                                      telephony, &sw, &error),
               &error, "capability")) {
        goto out;
    }
    if (failed(modhost_set_log(log_record, stdout, MODHOST_LOG_INFO, &error), &error, "log")) {
        goto out;
    }
    modhost_limits limits;
    modhost_limits_default(&limits);
    limits.call_timeout_ms = 2000;
    const modhost_capability *capabilities[] = {telephony_api};
    if (failed(modhost_open(root, &limits, capabilities, 1, &host, &error), &error, "open")) {
        goto out;
    }

    const char *modules[] = {"core", "voicemail", "callback"};
    if (failed(modhost_install(host, argv[1], modules, 3, MODHOST_GRANT, &changes, &error), &error,
               "install")) {
        goto out;
    }
    printf("installed: %s\n", changes);

    /* The caller left a message: the modules hear it on the caller's channel. */
    if (failed(modhost_dispatch(host, "voicemail.left", "{\"mailbox\":\"101\",\"from\":\"2025550101\"}",
                                "PJSIP/2025550101-incoming", NULL, &result, &error),
               &error, "dispatch")) {
        goto out;
    }
    printf("voicemail.left: %s\n", result);
    for (int i = 0; i < sw.count; i++) {
        printf("channel %s: %s\n", sw.channels[i].name, sw.channels[i].state);
    }
    code = 0;

out:
    modhost_string_free(changes);
    modhost_string_free(result);
    modhost_close(host);
    modhost_capability_free(telephony_api);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return code;
}
