/* serve.h — `mrag serve` internals shared by app/cmd_serve.c and app/serve_*.c:
 * options, API keys, request-body parsing, the generation slots and queue,
 * metrics. Internal to app/ (not a library header). */
#ifndef MRAG_APP_SERVE_H
#define MRAG_APP_SERVE_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/app.h"
#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

/* ------------------------------------------------------------ options */
/* Collections: one index each (`--index NAME=DIR`). */
#define APP_MAX_COLLECTIONS 32
#define APP_COLLECTION_NAME_MAX 32

typedef struct {
    const char *index, *model, *listen, *keys_file, *preamble;
    const char *indexes[APP_MAX_COLLECTIONS];   /* every --index, as given (NAME=DIR or DIR) */
    size_t n_indexes;
    const char *rules[16];
    size_t n_rules;
    size_t max_body;            /* bytes, default 1 MiB */
    int max_prompt_tokens;      /* question (or chat messages) tokens; default and
                                   upper bound: n_ctx - max_tokens */
    int max_tokens;             /* answer budget and clamp, default 512 */
    int slots, queue;           /* generation slots (1), waiting requests (8) */
    int search_handles;         /* read-only store handles for /api/search (2) */
    int embed_slots;            /* contexts for /v1/embeddings (1) */
    int timeout_s;              /* per request, default 120 */
    int grace_s;                /* shutdown: running answers get this long (10) */
    int threads;                /* engine threads per slot, 0 = all cores */
    int n_ctx;                  /* generation context, 0 = min(model, 4096) */
    int k;                      /* default passages, 5 */
    bool debug_prompts;         /* responses carry the prompt (tests) */
    bool extractive;            /* --extractive: every answer quotes the evidence */
    bool keep_quarantined;
    bool guard_llm;             /* --guard-llm: the model judges what the detector is unsure of */
    const char *llm_url, *llm_key_file, *llm_model;   /* gateway mode (remote engine) */
    bool llm_embeddings;        /* query embeddings from the remote server too */
    int head_timeout_s;         /* a request head must arrive within this (10) */
    int max_conns;              /* open connections (256) */
    int max_conns_per_addr;     /* per client address, 0 = no cap (32) */
    const char *allowed_hosts[16];  /* --allowed-host: Host names answered besides loopback */
    size_t n_allowed_hosts;
    app_lora_opts lora;         /* --lora FILE[:SCALE] */
} app_serve_opts;

/* ------------------------------------------------------------ keys */
typedef struct {
    char hash[65];              /* sha256 hex of the key */
    char *name;
    char **groups;              /* owned */
    size_t n_groups;
    bool all;                   /* "*" */
    bool full_paths;            /* option `full-paths`: sources name the server's
                                   absolute paths (default: relative to the root) */
    char **collections;         /* option `collections=a+b`: the only collections
                                   the key may use (owned); none given: all */
    size_t n_collections;
} app_serve_key;

typedef struct {
    app_serve_key *keys;
    size_t n;
    size_t n_plain;             /* keys written as themselves (not sha256:) */
    unsigned mode;              /* the file's st_mode (app_serve_keys_load), 0 from memory */
} app_serve_keys;

/* Parses a keys file text (`KEY NAME GROUPS [OPTIONS]` lines, `#` comments;
 * KEY may be sha256:HEX; OPTIONS a comma list of `full-paths` and
 * `collections=NAME+NAME...`). A text
 * without keys gives an empty set (nobody gets in). On error returns -1
 * with err naming the line. *out owned (app_serve_keys_free). */
int app_serve_keys_parse(const char *name, const char *text, size_t len, app_serve_keys *out,
                         char *err, size_t errlen);
/* Reads and parses a keys file (and records its mode). Returns 0, -1 on
 * an error (err says which), or -2 when the file does not exist. */
int app_serve_keys_load(const char *path, app_serve_keys *out, char *err, size_t errlen);
/* A warning about a loaded keys file (plain keys readable by group or
 * others), or NULL. Static text. */
const char *app_serve_keys_warning(const app_serve_keys *k);
void app_serve_keys_free(app_serve_keys *k);
/* The key matching the presented bearer token (compared by hash in constant
 * time over all keys), or NULL. Borrowed. */
const app_serve_key *app_serve_keys_find(const app_serve_keys *k, const char *token, size_t len);

typedef struct app_server app_server;
/* Re-reads o.keys_file (SIGHUP): the new set replaces the current one; the
 * old one is kept until exit (running requests point into it). An empty or
 * deleted file revokes every key (returns 0). A file that cannot be read or
 * parsed keeps the current keys, returns -1 with err saying why, and is
 * counted in /metrics (mrag_keys_file_error 1 until a reload succeeds).
 * Returns the number of keys in force. */
int app_serve_keys_reload(app_server *s, char *err, size_t errlen);

/* ------------------------------------------------------------ connections
 * (serve_conn.c) */
enum { APP_CONN_HEAD = 0, APP_CONN_BODY, APP_CONN_BUSY };

typedef struct {
    int max_conns;              /* the daemon's connection limit */
    int max_per_addr;           /* per client address; 0 = no cap */
    int max_head;               /* connections still sending a request head */
    double head_timeout_s;      /* from connect (or the previous response) to a whole head */
    double body_timeout_s;      /* from the head to the whole body */
} app_conn_params;

typedef struct {
    uint64_t head_timeouts, body_timeouts;  /* dropped by the watchdog */
    uint64_t addr_evictions;    /* dropped to make room for the same address */
    uint64_t crowd_evictions;   /* dropped because too many heads were pending */
    uint64_t addr_refusals;     /* refused: the address had its share, all busy */
    size_t open, waiting_for_head;
} app_conn_counters;

typedef struct app_conn_guard app_conn_guard;
app_conn_params app_conn_default_params(void);
/* Starts the watchdog thread. 0, or -1 when out of resources. */
int app_conn_guard_new(const app_conn_params *p, app_conn_guard **out);
/* Stops the watchdog; call after the daemon has stopped. NULL is a no-op. */
void app_conn_guard_free(app_conn_guard *g);
/* libmicrohttpd's accept policy (cls = the guard): a client address at
 * its cap makes room by dropping its oldest connection that has not sent
 * a whole request head, or is refused when it has none; past max_head
 * pending heads the oldest one is dropped. Returns MHD_YES / MHD_NO. */
enum MHD_Result app_conn_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls = the guard). */
void app_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe);
/* The connection's request moved to state (APP_CONN_*): BODY when its head
 * is in, BUSY while it is answered, HEAD again after a response. */
void app_conn_set_state(app_conn_guard *g, struct MHD_Connection *c, int state);
void app_conn_get_counters(app_conn_guard *g, app_conn_counters *out);

/* True when a request with this Host header (NULL: none) may be answered:
 * loopback names (localhost, *.localhost, 127/8, ::1) always, the allowed
 * names, and any name when !loopback_only and no names are given. */
bool app_http_host_allowed(const char *host, bool loopback_only, const char *const *allowed, size_t n_allowed);
/* Checks the framing headers of a request head (n name/value pairs):
 * 0 when fine; 400 for Content-Length values that differ or are not
 * numbers, Content-Length with Transfer-Encoding, two Transfer-Encoding
 * headers; 501 for a transfer coding other than chunked. why says which. */
int app_http_framing_check(const char *const *names, const char *const *values, size_t n, char *why, size_t whylen);

/* ------------------------------------------------------------ request bodies */
typedef struct {
    char *role, *content;
} app_serve_msg;

typedef struct {
    char *model;
    app_serve_msg *msgs;
    size_t n_msgs;
    bool stream;
    int max_tokens;             /* -1: not given */
    double temperature;         /* < 0: not given */
    bool has_seed;
    uint64_t seed;
    char **stop;                /* up to 8 */
    size_t n_stop;
    bool retrieval;             /* default true */
    int k;                      /* 0: not given */
    bool extractive;            /* mrag.extractive: quoted evidence, no model */
    char **collections;         /* mrag.collections (owned), as given */
    size_t n_collections;
    bool has_collections;
} app_chat_req;

typedef struct {
    char *question;
    int k;                      /* 0: not given */
    char **hist_q, **hist_a;
    size_t n_hist;
    bool stream;
    int max_tokens;             /* -1: not given */
    bool extractive;            /* quoted evidence, no model */
    char **collections;         /* "collections" (owned), as given */
    size_t n_collections;
    bool has_collections;
} app_ask_req;

typedef struct {
    char **inputs;
    size_t n;
    char *model;
    bool base64;                /* encoding_format "base64": little-endian float32 */
} app_embed_req;

/* Parse a JSON body of len bytes (not NUL-terminated). On failure returns -1
 * and err holds a message for the client (JSON errors name the byte
 * position). Outputs are owned; free with the matching _free (safe on a
 * zeroed or failed struct). */
int app_parse_chat(const char *body, size_t len, app_chat_req *out, char *err, size_t errlen);
int app_parse_ask(const char *body, size_t len, app_ask_req *out, char *err, size_t errlen);
int app_parse_embed(const char *body, size_t len, app_embed_req *out, char *err, size_t errlen);
/* A passage id (GET /api/passage?id=): 1 to 18 decimal digits and nothing
 * else (no sign, space, hex or NUL among the n bytes), not 0. 0 and *id
 * set, or -1 (*id = 0). */
int app_parse_passage_id(const char *s, size_t n, int64_t *id);
void app_chat_req_free(app_chat_req *r);
void app_ask_req_free(app_ask_req *r);
void app_embed_req_free(app_embed_req *r);

/* Limits the parsers enforce. */
#define APP_SERVE_MAX_MSGS 256
#define APP_SERVE_MAX_STOP 8
#define APP_SERVE_MAX_INPUTS 256
#define APP_SERVE_MAX_HIST 64

/* ------------------------------------------------------------ server */
typedef struct app_server app_server;
typedef struct app_job app_job;

/* Endpoints, as metrics labels. */
enum {
    APP_EP_PAGE = 0, APP_EP_HEALTHZ, APP_EP_METRICS, APP_EP_CHAT, APP_EP_EMBED, APP_EP_MODELS,
    APP_EP_ASK, APP_EP_SEARCH, APP_EP_PASSAGE, APP_EP_COLLECTIONS, APP_EP_OTHER, APP_EP_COUNT
};
#define APP_HIST_BUCKETS 14

typedef struct {
    uint64_t requests[APP_EP_COUNT][600];     /* by HTTP status */
    uint64_t hist[APP_EP_COUNT][APP_HIST_BUCKETS];
    double sum[APP_EP_COUNT];
    uint64_t count[APP_EP_COUNT];
    uint64_t generated_tokens;
    double last_tps;
} app_metrics;

/* One generation slot: its own engine (a context, or a remote engine),
 * answerer and read-only store. */
typedef struct {
    app_server *srv;
    int id;
    idx_store *store;           /* stores[0] */
    idx_store *stores[APP_MAX_COLLECTIONS];     /* one per collection */
    rag_answerer *ans;
    rag_engine *engine;         /* the answerer's engine (local or remote) */
    rag_remote *remote;         /* gateway mode: the remote the engine runs on */
    app_job *job;               /* the request being answered */
    pthread_t th;
    bool started;
} app_slot;

typedef struct {
    idx_store *store;           /* stores[0] */
    rag_retriever *ret;         /* rets[0] */
    idx_store *stores[APP_MAX_COLLECTIONS];     /* one per collection */
    rag_retriever *rets[APP_MAX_COLLECTIONS];
    rag_remote *remote;         /* --llm-embeddings without -m: query embeddings */
    rag_engine *engine;         /* its engine */
    bool busy;
} app_search_handle;

typedef struct {
    rag_engine *engine;         /* a local engine pooling the index's layer */
    bool busy;
} app_embed_handle;

typedef struct {
    char name[APP_COLLECTION_NAME_MAX + 1];
    const char *dir;            /* the index directory */
    idx_store *stat_store;      /* counts (serve_http.c's lock) */
    int64_t docs, chunks;       /* cached counts */
    double counted_at;
} app_collection;

struct app_server {
    app_serve_opts o;
    const char *index_dir;      /* the first collection's (audit log) */
    app_collection coll[APP_MAX_COLLECTIONS];
    int n_coll;
    llm_model *model;           /* NULL in gateway mode without -m */
    llm_model_info mi;
    char model_name[256];
    char model_sha[65];
    int layer;                  /* the index's embedding layer */
    bool can_dense;             /* a local model or remote query embeddings */
    int embed_dim;              /* remote query embeddings: the index dimension */
    rag_guard *guard;
    FILE *audit;
    char *preamble;             /* --preamble file contents, or NULL */
    app_serve_keys keys;        /* the current key set (under keys_mu) */
    bool have_keys;
    pthread_mutex_t keys_mu;    /* keys and retired_keys */
    app_serve_keys *retired_keys;   /* sets replaced by a SIGHUP reload: requests may
                                       still point into them; freed at exit */
    size_t n_retired_keys;
    uint64_t keys_reloads, keys_reload_errors;   /* SIGHUPs that replaced / kept the keys */
    bool keys_file_error;       /* the last reload failed: the keys in force are older */
    int n_ctx;                  /* generation context size */
    int embed_ctx;              /* embedding context size */

    pthread_mutex_t mu;         /* everything below, and every job's state */
    pthread_cond_t work_cv;
    app_job **fifo;             /* waiting jobs (ring) */
    size_t fifo_head, fifo_n, fifo_cap;
    app_slot *slots;
    int n_slots, active;
    int inflight;               /* requests between their first byte and their completion */
    bool stopping;
    double ewma_gen_s;          /* mean generation time, for Retry-After */
    app_search_handle *search;
    int n_search;
    pthread_cond_t search_cv;
    app_embed_handle *embed;
    int n_embed;
    pthread_cond_t embed_cv;
    idx_store *stat_store;      /* healthz/metrics counts (own lock in serve_http.c) */
    app_conn_guard *conns;      /* admission and deadlines of connections */
    app_metrics m;
    uint64_t next_id;
    struct MHD_Daemon *daemon;
};

typedef enum { APP_JOB_QUEUED = 0, APP_JOB_RUNNING, APP_JOB_DONE } app_job_state;
typedef enum { APP_JOB_ASK = 0, APP_JOB_CHAT } app_job_kind;

/* A generation request. Shared by the HTTP thread and a slot worker
 * (refcounted under srv->mu). */
struct app_job {
    app_server *srv;
    int refs;
    pthread_cond_t cv;
    app_job_state state;
    app_job_kind kind;
    bool retrieval, stream;
    bool extractive;            /* answer with the quoted evidence */
    /* input (owned) */
    char *question;
    rag_turn *hist;
    size_t n_hist;
    char **hist_own;            /* strings the turns point to */
    size_t n_hist_own;
    char *system;               /* replaces the preamble, or NULL */
    app_chat_req chat;          /* plain chat: the messages; stops */
    int max_tokens, k;
    float temperature;
    uint64_t seed;
    const app_serve_key *key;   /* borrowed (NULL: anonymous) */
    uint64_t colls;             /* the collections searched (bit i = srv->coll[i]) */
    char key_name[64];
    char req_id[32];
    char chat_id[48];
    long created;
    double t_arrival, deadline; /* monotonic seconds */
    volatile int cancel;
    bool timed_out, client_gone;
    /* output */
    rag_answer res;
    bool have_res;
    int err;                    /* non-zero: the pipeline failed; errmsg says why */
    int err_status;             /* its HTTP status (0: 500) */
    char errmsg[512];
    char **titles;              /* per source, owned */
    size_t n_titles;
    char *sources_json;         /* the SOURCE array, built once */
    char *evidence_json;        /* the EVIDENCE array, built when chosen */
    bool head_sent;             /* stream: the first chunk / sources event */
    char *out;                  /* stream: SSE bytes not yet sent */
    size_t out_len, out_cap, out_sent;
    int n_prompt, n_generated;  /* of the engine's run (0 when it did not run) */
    int n_reused;               /* prompt tokens whose KV cache the slot's engine kept */
    rag_stop_reason stop_reason;
    double prefill_ms, decode_ms, t_start, t_end;
};

double app_now_s(void);
/* Server lifecycle pieces (serve_gen.c). */
int app_slots_start(app_server *s, char *err, size_t errlen);
void app_slots_stop(app_server *s);
/* Queues a job (takes a reference). Returns 0, or -1 when the queue is full
 * (*retry_after set) or the server is stopping. */
int app_job_submit(app_server *s, app_job *j, int *retry_after);
app_job *app_job_new(app_server *s);
void app_job_unref(app_job *j);
/* Stops a job (timeout, or the client went away): sets its cancel flag;
 * a job still waiting is taken out of the queue and finished at once (its
 * stream gets the closing events). True when it was still waiting. */
bool app_job_cancel(app_server *s, app_job *j, bool timeout);
/* JSON bodies of a finished job (owned strings). */
char *app_job_ask_json(app_job *j);
char *app_job_chat_json(app_job *j);
/* What a caller with key (NULL: anonymous) is shown for a document URI:
 * web URLs as they are; file paths relative to the ingested root they are
 * under ("docs/it/vpn.md" for /srv/docs/it/vpn.md; the roots are the
 * index's "rag.root:" records), or their last two parts when no root is
 * recorded; the absolute path only for a key with `full-paths`. Owned. */
char *app_serve_display_uri(idx_store *store, const app_serve_key *key, const char *uri);
/* Searches the collections of mask with a pooled read-only handle. hits
 * owned JSON text. */
char *app_search_json(app_server *s, const app_serve_key *key, uint64_t mask, const char *q, int k, int mode,
                      int *http_status, char *err, size_t errlen);
/* GET /api/passage: chunk id of collection coll (s->coll[coll]): its text, document (title, the path shown to
 * this caller, URL), heading, lines/page and the ids of the chunks before
 * and after it in the same document (null at an end), when key (NULL:
 * anonymous, public documents only) may read its document. A chunk that
 * does not exist and one the caller may not read give the same 404 and
 * message. */
char *app_passage_json(app_server *s, const app_serve_key *key, int coll, int64_t id, int *http_status, char *err,
                       size_t errlen);
/* (app_collection_name_ok, app.h: names are compared byte for byte, no
 * case or Unicode folding.) */
/* The collections key (NULL: anonymous) may use: bit i = s->coll[i]. */
uint64_t app_key_collections(const app_server *s, const app_serve_key *key);
/* The collections a request names (names[0..n), duplicates allowed)
 * resolved within allowed: 0 and *mask set, or 404 with err saying which
 * name is not a collection — the same answer for a name that does not
 * exist and one the caller may not use. */
int app_collections_pick(const app_server *s, uint64_t allowed, const char *const *names, size_t n, uint64_t *mask,
                         char *err, size_t errlen);
char *app_embed_json(app_server *s, const app_embed_req *r, int *http_status, char *err, size_t errlen);
/* HTTP (serve_http.c). */
int app_http_start(app_server *s, const char *host, int port, char *err, size_t errlen);
int app_http_port(app_server *s);
void app_http_quiesce(app_server *s);
void app_http_stop(app_server *s);

#endif
