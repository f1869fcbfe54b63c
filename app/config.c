/* config.c — the configuration files (GKeyFile format): /etc/mrag/mrag.conf,
 * then $XDG_CONFIG_HOME/mrag/mrag.conf (~/.config/mrag/mrag.conf), or only
 * the file of --config FILE / $MRAG_CONFIG. A key is a command's long
 * option name; [mrag] applies to every command that has the option,
 * [COMMAND] to that command. The settings become options placed before the
 * command line's own, so the command line wins; a setting whose environment
 * variable is set (MRAG_INDEX, MRAG_MODEL, MRAG_PREAMBLE, MRAG_DATA_DIR) is
 * left to it. Precedence: command line > environment > user file > system
 * file > built-in. Contracts in app.h. */
#include "app/app.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONF_MAX_FILES 2

typedef struct {
    char *path;
    GKeyFile *kf;
} conf_file;

static conf_file files[CONF_MAX_FILES];
static int n_files;
static char *data_dir_value, *data_dir_source;
/* What app_config_apply made: the new argv (the parser reorders its
 * pointers, so the words are owned apart from it) and each setting's word
 * with where it comes from. */
static char **argv_made;
static GPtrArray *words;            /* the words of argv_made, owned (g_free) */
typedef struct {
    const char *word;               /* in words */
    char *origin;                   /* "configuration FILE line N, [GROUP] KEY" */
    const app_opt *opt;             /* the option it sets */
} setting_origin;
static GArray *origins;             /* setting_origin */

/* Options given once for all that a command line may repeat. */
static bool repeatable(const char *key) {
    return !strcmp(key, "rules") || !strcmp(key, "namespace") || !strcmp(key, "allowed-host") || !strcmp(key, "stop");
}

/* The environment variable that stands for an option, or NULL. */
static const char *env_of(const char *key) {
    if (!strcmp(key, "index")) return "MRAG_INDEX";
    if (!strcmp(key, "model")) return "MRAG_MODEL";
    if (!strcmp(key, "preamble")) return "MRAG_PREAMBLE";
    if (!strcmp(key, "data-dir")) return "MRAG_DATA_DIR";
    return NULL;
}

static const char *env_set(const char *key) {
    const char *e = env_of(key);
    const char *v = e ? getenv(e) : NULL;
    return v && *v ? e : NULL;
}

const char *app_config_system_path(void) {
    const char *e = getenv("MRAG_SYSTEM_CONFIG");    /* tests */
    return e && *e ? e : "/etc/mrag/mrag.conf";
}

/* The user's file: $XDG_CONFIG_HOME/mrag/mrag.conf, else ~/.config/... */
static bool user_path(char *out, size_t cap) {
    const char *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
    if (x && *x) return (size_t)snprintf(out, cap, "%s/mrag/mrag.conf", x) < cap;
    if (h && *h) return (size_t)snprintf(out, cap, "%s/.config/mrag/mrag.conf", h) < cap;
    return false;
}

/* Loads one file; missing is fine unless required. false after printing. */
static bool load_one(const char *path, bool required) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (!required && errno == ENOENT) return true;
        app_error("configuration %s: %s", path, strerror(errno));
        return false;
    }
    GKeyFile *kf = g_key_file_new();
    GError *err = NULL;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
        app_error("configuration %s: %s", path, err ? err->message : "cannot be read");
        if (err) g_error_free(err);
        g_key_file_free(kf);
        return false;
    }
    files[n_files].path = g_strdup(path);
    files[n_files].kf = kf;
    n_files++;
    return true;
}

/* Contract: see app.h. */
bool app_config_load(const char *explicit_path) {
    if (!explicit_path) {
        const char *e = getenv("MRAG_CONFIG");
        if (e && *e) explicit_path = e;
    }
    if (explicit_path) return load_one(explicit_path, true);
    char up[4096];
    if (!load_one(app_config_system_path(), false)) return false;
    if (user_path(up, sizeof up) && !load_one(up, false)) return false;
    /* data-dir: read here, used by app_guard_dir */
    for (int i = 0; i < n_files; i++) {
        char *v = g_key_file_get_string(files[i].kf, "mrag", "data-dir", NULL);
        if (!v) continue;
        g_free(data_dir_value);
        g_free(data_dir_source);
        data_dir_value = v;
        data_dir_source = g_strdup(files[i].path);
    }
    return true;
}

/* Contract: see app.h. */
const char *app_config_data_dir(const char **source) {
    if (source) *source = data_dir_source;
    return data_dir_value;
}

/* The option a key names: its long name, or the letter of a short-only
 * option ("k"). */
static const app_opt *find_opt(const app_opt *const *tables, const char *key) {
    for (const app_opt *const *t = tables; t && *t; t++)
        for (const app_opt *o = *t; o->id; o++)
            if ((o->name && !strcmp(o->name, key)) || (!o->name && o->short_name && key[0] == o->short_name && !key[1]))
                return o;
    return NULL;
}

/* The command-line form of a setting. */
static char *as_arg(const app_opt *o, const char *key, const char *val) {
    if (!o->name) return g_strdup_printf("-%c%s", o->short_name, val);
    return val ? g_strdup_printf("--%s=%s", key, val) : g_strdup_printf("--%s", key);
}

/* The line of `key =` in [group] of the file at path (the last one, as
 * GKeyFile keeps the last), or 0 when not found. */
static int key_line(const char *path, const char *group, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    int n = 0, found = 0;
    bool in_group = false;
    size_t kl = strlen(key), gl = strlen(group);
    while (getline(&line, &cap, f) > 0) {
        n++;
        const char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '[') {
            in_group = strncmp(s + 1, group, gl) == 0 && s[1 + gl] == ']';
            continue;
        }
        if (!in_group || strncmp(s, key, kl) != 0) continue;
        s += kl;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '=') found = n;
    }
    free(line);
    fclose(f);
    return found;
}

/* Drops setting i (its word from out too). */
static void drop_setting(GPtrArray *out, guint i) {
    setting_origin *so = &g_array_index(origins, setting_origin, i);
    g_ptr_array_remove(out, (gpointer)so->word);        /* frees the word */
    g_free(so->origin);
    g_array_remove_index(origins, i);
}

/* Adds a setting's word to out, remembering where it comes from. A
 * setting of an option given once replaces the one an earlier file (or
 * [mrag] before [COMMAND]) made: options such as --index that a command
 * may repeat on purpose would otherwise add up across files. */
static void add_setting(GPtrArray *out, char *word, const app_opt *o, const char *path, const char *group,
                        const char *key) {
    if (!origins) origins = g_array_new(FALSE, FALSE, sizeof(setting_origin));
    if (!repeatable(key))
        for (guint i = 0; i < origins->len; i++)
            if (g_array_index(origins, setting_origin, i).opt == o) { drop_setting(out, i); break; }
    g_ptr_array_add(out, word);
    int line = key_line(path, group, key);
    setting_origin so = {word, line ? g_strdup_printf("configuration %s line %d, [%s] %s", path, line, group, key)
                                    : g_strdup_printf("configuration %s, [%s] %s", path, group, key), o};
    g_array_append_val(origins, so);
}

/* The command line gives option o itself (before any "--"). */
static bool on_command_line(const app_opt *o, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) break;
        if (o->name && a[0] == '-' && a[1] == '-') {
            size_t n = strlen(o->name);
            if (!strncmp(a + 2, o->name, n) && (a[2 + n] == 0 || a[2 + n] == '=')) return true;
        }
        if (o->short_name && a[0] == '-' && a[1] == o->short_name) return true;
    }
    return false;
}

/* Contract: see app.h. */
const char *app_config_origin(const char *arg) {
    for (guint i = 0; origins && i < origins->len; i++) {
        const setting_origin *so = &g_array_index(origins, setting_origin, i);
        if (so->word == arg) return so->origin;
    }
    return NULL;
}

static void forget_origins(void) {
    for (guint i = 0; origins && i < origins->len; i++) g_free(g_array_index(origins, setting_origin, i).origin);
    if (origins) g_array_free(origins, TRUE);
    origins = NULL;
}

/* Contract: see app.h. */
void app_config_free(void) {
    app_arg_origin = NULL;
    forget_origins();
    if (words) g_ptr_array_free(words, TRUE);
    words = NULL;
    g_free(argv_made);
    argv_made = NULL;
    for (int i = 0; i < n_files; i++) {
        g_free(files[i].path);
        g_key_file_free(files[i].kf);
    }
    n_files = 0;
    g_free(data_dir_value);
    g_free(data_dir_source);
    data_dir_value = data_dir_source = NULL;
}

/* Appends the options of one [group] of kf that cmd has to out (grows).
 * For [COMMAND] an unknown key is an error; for [mrag] keys of no command
 * are checked by the caller. */
static bool add_group(GKeyFile *kf, const char *path, const char *group, const char *cmd,
                      const app_opt *const *tables, bool strict, GPtrArray *out) {
    if (!g_key_file_has_group(kf, group)) return true;
    gsize n = 0;
    gchar **keys = g_key_file_get_keys(kf, group, &n, NULL);
    bool ok = true;
    for (gsize i = 0; keys && i < n; i++) {
        const char *key = keys[i];
        if (!strcmp(key, "data-dir") && !strcmp(group, "mrag")) continue;
        const app_opt *o = find_opt(tables, key);
        if (!o) {
            if (strict) {
                app_error("configuration %s: [%s] %s: not an option of `mrag %s` (see `mrag %s --help`)", path, group,
                          key, cmd, cmd);
                ok = false;
            }
            continue;
        }
        if (env_set(key)) continue;                   /* the environment wins */
        gchar *val = g_key_file_get_string(kf, group, key, NULL);
        if (!val) continue;
        if (!o->arg) {
            if (!strcmp(val, "true") || !strcmp(val, "yes") || !strcmp(val, "1"))
                add_setting(out, as_arg(o, key, NULL), o, path, group, key);
            else if (strcmp(val, "false") && strcmp(val, "no") && strcmp(val, "0")) {
                app_error("configuration %s: [%s] %s: '%s' is not true or false", path, group, key, val);
                ok = false;
            }
        } else if (repeatable(key)) {
            gchar **parts = g_strsplit(val, ";", -1);
            for (gchar **p = parts; *p; p++) {
                g_strstrip(*p);
                if (**p) add_setting(out, as_arg(o, key, *p), o, path, group, key);
            }
            g_strfreev(parts);
        } else {
            add_setting(out, as_arg(o, key, val), o, path, group, key);
        }
        g_free(val);
    }
    g_strfreev(keys);
    return ok;
}

/* Contract: see app.h. */
int app_config_apply(const app_command *cmds, size_t n_cmds, const app_command *c, int *argc, char ***argv) {
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(out, g_strdup((*argv)[0]));
    bool ok = true;
    for (int i = 0; i < n_files; i++) {
        GKeyFile *kf = files[i].kf;
        /* [mrag]: a key no command has is a mistake worth saying */
        gsize n = 0;
        gchar **keys = g_key_file_get_keys(kf, "mrag", &n, NULL);
        for (gsize k = 0; keys && k < n; k++) {
            bool known = !strcmp(keys[k], "data-dir");
            for (size_t j = 0; j < n_cmds && !known; j++) known = find_opt(cmds[j].opts, keys[k]) != NULL;
            if (!known) {
                app_error("configuration %s: [mrag] %s: not an option of any command", files[i].path, keys[k]);
                ok = false;
            }
        }
        g_strfreev(keys);
        gsize ng = 0;
        gchar **groups = g_key_file_get_groups(kf, &ng);
        for (gsize g = 0; groups && g < ng; g++) {
            bool known = !strcmp(groups[g], "mrag");
            for (size_t j = 0; j < n_cmds && !known; j++) known = !strcmp(groups[g], cmds[j].name);
            if (!known) {
                app_error("configuration %s: [%s]: not a command (sections are [mrag] and command names)", files[i].path,
                          groups[g]);
                ok = false;
            }
        }
        g_strfreev(groups);
        ok = add_group(kf, files[i].path, "mrag", c->name, c->opts, false, out) && ok;
        ok = add_group(kf, files[i].path, c->name, c->name, c->opts, true, out) && ok;
    }
    if (!ok) {
        g_ptr_array_free(out, TRUE);
        forget_origins();
        return 2;
    }
    /* the command line wins: a setting of an option it gives (other than
     * the repeatable ones, which add up) is dropped, so an option that may
     * be given several times (--index of ask, chat and search) is not
     * given twice */
    for (guint i = origins ? origins->len : 0; i-- > 0;) {
        const setting_origin *so = &g_array_index(origins, setting_origin, i);
        char key[2] = {so->opt->short_name, 0};
        if (!repeatable(so->opt->name ? so->opt->name : key) && on_command_line(so->opt, *argc, *argv))
            drop_setting(out, i);
    }
    for (int i = 1; i < *argc; i++) g_ptr_array_add(out, g_strdup((*argv)[i]));
    /* the parser reorders argv's pointers: it gets its own array, the
     * words stay owned by `words` until app_config_free */
    if (words) g_ptr_array_free(words, TRUE);
    g_free(argv_made);
    words = out;
    app_arg_origin = app_config_origin;
    argv_made = g_new(char *, out->len + 1);
    for (guint i = 0; i < out->len; i++) argv_made[i] = out->pdata[i];
    argv_made[out->len] = NULL;
    *argc = (int)out->len;
    *argv = argv_made;
    return 0;
}

/* What a setting is and where it comes from, for `mrag config`. */
static void show(const char *cmd, const char *key, const char *builtin) {
    const char *e = env_set(key);
    if (e) { printf("%-28s %-40s (environment %s)\n", key, getenv(env_of(key)), e); return; }
    const char *val = NULL, *from = NULL;
    gchar *owned[CONF_MAX_FILES * 2] = {0};
    int n_owned = 0;
    for (int i = 0; i < n_files; i++) {
        const char *groups[2] = {"mrag", cmd};
        for (int g = 0; g < 2; g++) {
            if (!groups[g]) continue;
            gchar *v = g_key_file_get_string(files[i].kf, groups[g], key, NULL);
            if (!v) continue;
            owned[n_owned++] = v;
            val = v;
            from = files[i].path;
        }
    }
    if (val) printf("%-28s %-40s (%s)\n", key, val, from);
    else if (builtin) printf("%-28s %-40s (built-in)\n", key, builtin);
    for (int i = 0; i < n_owned; i++) g_free(owned[i]);
}

/* Contract: see app.h. */
int app_config_print(const app_command *cmds, size_t n_cmds, int argc, char **argv) {
    static const char *usage =
        "usage: mrag config [COMMAND]\n"
        "\n"
        "Prints the effective settings and where each comes from: the environment,\n"
        "a configuration file, or built in. With COMMAND, every setting that command\n"
        "takes from the files; without, the common ones.\n"
        "\n"
        "Files, read in this order (a later one wins; `--config FILE` or\n"
        "$MRAG_CONFIG reads only FILE): /etc/mrag/mrag.conf, then\n"
        "$XDG_CONFIG_HOME/mrag/mrag.conf (default ~/.config/mrag/mrag.conf).\n"
        "Format (GKeyFile, docs/building.md): a key is a long option name;\n"
        "[mrag] applies to every command that has the option, [COMMAND] to one:\n"
        "\n"
        "  [mrag]\n"
        "  index = /var/lib/mrag/index\n"
        "  model = /var/lib/mrag/models/mistral-7b-instruct-v0.2.Q4_K_M.gguf\n"
        "  threads = 8\n"
        "  [serve]\n"
        "  listen = 127.0.0.1:8080\n"
        "\n"
        "Precedence: command line > environment (MRAG_INDEX, MRAG_MODEL,\n"
        "MRAG_PREAMBLE, MRAG_DATA_DIR) > user file > system file > built-in.\n";
    if (app_wants_help(argc, argv)) { fputs(usage, stdout); return 0; }
    const app_command *c = NULL;
    if (argc > 2) { fprintf(stderr, "mrag config: one COMMAND at most (see `mrag config --help`)\n"); return 2; }
    if (argc == 2 && argv[1][0] == '-') {
        fprintf(stderr, "mrag config: unknown option '%s' (see `mrag config --help`)\n", argv[1]);
        return 2;
    }
    if (argc == 2) {
        for (size_t i = 0; i < n_cmds; i++)
            if (!strcmp(cmds[i].name, argv[1])) c = &cmds[i];
        if (!c) { fprintf(stderr, "mrag config: '%s' is not a command (see `mrag --help`)\n", argv[1]); return 2; }
    }
    printf("configuration files:\n");
    const char *e = getenv("MRAG_CONFIG");
    if (n_files == 0) printf("  (none)\n");
    for (int i = 0; i < n_files; i++) printf("  %s\n", files[i].path);
    if (!e || !*e) {
        char up[4096];
        struct stat st;
        if (stat(app_config_system_path(), &st) != 0) printf("  (%s: absent)\n", app_config_system_path());
        if (user_path(up, sizeof up) && stat(up, &st) != 0) printf("  (%s: absent)\n", up);
    }
    printf("\nsettings%s%s:\n", c ? " of mrag " : " (common)", c ? c->name : "");
    char dd[4096], why[700];
    const char *src;
    const char *idx = app_index_path(NULL);
    show(c ? c->name : NULL, "index", idx);
    show(c ? c->name : NULL, "model", "none (then the model `mrag ingest` recorded in the index)");
    if (app_guard_dir(dd, sizeof dd, &src, why, sizeof why)) {
        if (!strcmp(src, "installed") || !strcmp(src, "build tree"))
            printf("%-28s %-40s (built-in: %s)\n", "data-dir: guardrails", dd, src);
        else
            printf("%-28s %-40s (%s)\n", "data-dir: guardrails", dd, src);
    } else {
        printf("%-28s %-40s\n", "data-dir: guardrails", why);
    }
    if (c) {
        for (const app_opt *const *t = c->opts; t && *t; t++)
            for (const app_opt *o = *t; o->id; o++) {
                char key[2] = {o->short_name, 0};
                const char *k = o->name ? o->name : key;
                if (strcmp(k, "index") && strcmp(k, "model")) show(c->name, k, NULL);
            }
    } else {
        show(NULL, "threads", NULL);
        show(NULL, "k", NULL);
    }
    printf("\n(settings not listed are built in: see `mrag %s --help`)\n", c ? c->name : "COMMAND");
    return 0;
}
