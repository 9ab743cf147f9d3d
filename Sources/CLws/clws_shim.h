/*
 * Thin C shim for HearthTransport and the load generator: only what Swift
 * cannot import directly from libwebsockets 4.1.6 / libev / OpenSSL
 * (function-like macros, variadic logging, 64-bit option constants, SSL_OP_*
 * bit macros).  Everything is
 * `static inline` or a constant, so no C target is needed.
 */
#ifndef CLWS_SHIM_H
#define CLWS_SHIM_H

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/engine.h>
#include <ev.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

/* LWS_PRE is a function-like macro (_LWS_PAD(...)). */
static inline size_t clws_pre(void) { return LWS_PRE; }

// accept4(2) is declared only under _GNU_SOURCE, which Swift's Glibc module does not define.
extern int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
/// The next waiting connection, already non-blocking and close-on-exec (-1 and errno as accept).
static inline int clws_accept_nonblocking(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

// pthread_setname_np(3), also a GNU extension. Linux keeps at most 15 bytes of a name.
extern int pthread_setname_np(pthread_t thread, const char *name);
/// Names the calling thread, as `top -H`, perf and /proc/<pid>/task show it.
static inline void clws_name_this_thread(const char *name) { (void)pthread_setname_np(pthread_self(), name); }

/* lws context options (imported as Int64 otherwise; info.options is uint64_t). */
static const uint64_t CLWS_OPT_DO_SSL_GLOBAL_INIT = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
static const uint64_t CLWS_OPT_VALIDATE_UTF8 = LWS_SERVER_OPTION_VALIDATE_UTF8;
static const uint64_t CLWS_OPT_LIBEV = LWS_SERVER_OPTION_LIBEV;
static const uint64_t CLWS_OPT_FAIL_UPON_UNABLE_TO_BIND = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
static const uint64_t CLWS_OPT_DISABLE_IPV6 = LWS_SERVER_OPTION_DISABLE_IPV6;
static const uint64_t CLWS_OPT_DISABLE_OS_CA_CERTS = LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
static const uint64_t CLWS_OPT_UNIX_SOCK = LWS_SERVER_OPTION_UNIX_SOCK;

/* OpenSSL protocol exclusions (SSL_OP_* are function-like macros in OpenSSL 3). */
static const long CLWS_SSL_OP_NO_OLD_TLS =
    (long)(SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);

/* lwsl_* are macros over the variadic _lws_log(). */
static inline void clws_log(int level, const char *msg) { _lws_log(level, "%s\n", msg); }

/*
 * A libwebsockets timer with a back pointer: lws sul callbacks only receive
 * the sul, so the owner is found at a fixed offset (the sul is the first
 * member).
 */
typedef struct clws_timer {
    lws_sorted_usec_list_t sul;
    void *owner;
} clws_timer;

/* libev: the loop is created by us ("foreign loop" for lws) so that lws does
 * not install its own SIGINT watcher and so that the owner can break it. */
static inline void *clws_ev_loop_new(void) { return ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK); }
static inline void clws_ev_run(void *loop) { (void)ev_run((struct ev_loop *)loop, 0); }
static inline void clws_ev_break_all(void *loop) { ev_break((struct ev_loop *)loop, EVBREAK_ALL); }
static inline void clws_ev_loop_destroy(void *loop) { ev_loop_destroy((struct ev_loop *)loop); }
static inline const char *clws_ev_backend_name(void *loop) {
    switch (ev_backend((struct ev_loop *)loop)) {
    case EVBACKEND_EPOLL: return "epoll";
    case EVBACKEND_POLL: return "poll";
    case EVBACKEND_SELECT: return "select";
    default: return "other";
    }
}

/*
 * An ev_prepare watcher with a plain C callback and a context pointer: libev runs it once
 * per loop iteration, after every callback of the iteration and before the loop blocks.
 * The transport flushes the output its callbacks queued there (one write per connection per
 * iteration). Unreferenced, so it never keeps the loop alive by itself.
 */
typedef void (*clws_prepare_fn)(void *owner);
typedef struct clws_prepare {
    ev_prepare watcher; /* first member: the watcher pointer is the struct pointer */
    clws_prepare_fn fn;
    void *owner;
} clws_prepare;

static inline void clws_prepare_trampoline(struct ev_loop *loop, ev_prepare *w, int revents) {
    (void)loop;
    (void)revents;
    clws_prepare *p = (clws_prepare *)w;
    p->fn(p->owner);
}
static inline void clws_prepare_start(void *loop, clws_prepare *p, clws_prepare_fn fn, void *owner) {
    p->fn = fn;
    p->owner = owner;
    ev_prepare_init(&p->watcher, clws_prepare_trampoline);
    ev_prepare_start((struct ev_loop *)loop, &p->watcher);
    ev_unref((struct ev_loop *)loop);
}
static inline void clws_prepare_stop(void *loop, clws_prepare *p) {
    if (!ev_is_active(&p->watcher)) return;
    ev_ref((struct ev_loop *)loop);
    ev_prepare_stop((struct ev_loop *)loop, &p->watcher);
}

/*
 * An ev_io read watcher with a plain C callback and a context pointer: the TLS listen socket,
 * which the transport owns (not lws) so that it can pause it when out of descriptors
 * (Listener.swift). libev's io watchers are level-triggered: while connections wait in the
 * accept queue it fires on every iteration.
 */
typedef void (*clws_io_fn)(void *owner);
typedef struct clws_io {
    ev_io watcher; /* first member: the watcher pointer is the struct pointer */
    clws_io_fn fn;
    void *owner;
} clws_io;

static inline void clws_io_trampoline(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    clws_io *p = (clws_io *)w;
    p->fn(p->owner);
}
static inline void clws_io_start(void *loop, clws_io *p, int fd, clws_io_fn fn, void *owner) {
    p->fn = fn;
    p->owner = owner;
    ev_io_init(&p->watcher, clws_io_trampoline, fd, EV_READ);
    ev_io_start((struct ev_loop *)loop, &p->watcher);
}
static inline void clws_io_stop(void *loop, clws_io *p) {
    if (ev_is_active(&p->watcher)) ev_io_stop((struct ev_loop *)loop, &p->watcher);
}

/* A vhost that serves adopted sockets but opens no listen socket of its own. */
static const int CLWS_PORT_NO_LISTEN_SERVER = CONTEXT_PORT_NO_LISTEN_SERVER;

/*
 * The first request line of a TLS server connection, as the client sent it (RequestLine.swift
 * explains why). Kept in the SSL object's ex_data, so OpenSSL frees it with the connection.
 * state: 0 still reading, 1 complete (bytes end with '\n'), 2 too long (over
 * CLWS_REQUEST_LINE_MAX, bytes dropped), 3 taken by the transport.
 */
#define CLWS_REQUEST_LINE_MAX 4096
typedef struct clws_request_line {
    char *bytes;
    int length;
    int state;
} clws_request_line;

static void clws_request_line_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    clws_request_line *line = (clws_request_line *)ptr;
    if (line) {
        free(line->bytes);
        free(line);
    }
}

static inline int clws_request_line_index(void) {
    return CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, clws_request_line_free);
}

/* Plaintext a server SSL object returned from SSL_read: kept up to the first '\n'. */
static inline void clws_request_line_observe(SSL *ssl, int index, const unsigned char *data, int count) {
    if (index < 0 || count <= 0 || !SSL_is_server(ssl)) return;
    clws_request_line *line = (clws_request_line *)SSL_get_ex_data(ssl, index);
    if (!line) {
        line = (clws_request_line *)calloc(1, sizeof *line);
        if (!line) return;
        if (!SSL_set_ex_data(ssl, index, line)) {
            free(line);
            return;
        }
    }
    if (line->state != 0) return;
    int take = 0, complete = 0;
    while (take < count) {
        if (data[take++] == '\n') {
            complete = 1;
            break;
        }
    }
    if (line->length + take > CLWS_REQUEST_LINE_MAX) {
        free(line->bytes);
        line->bytes = NULL;
        line->length = 0;
        line->state = 2;
        return;
    }
    char *grown = (char *)realloc(line->bytes, (size_t)(line->length + take));
    if (!grown) {
        line->state = 2;
        return;
    }
    memcpy(grown + line->length, data, (size_t)take);
    line->bytes = grown;
    line->length += take;
    if (complete) line->state = 1;
}

/* Hands the complete line over once: its state before the call (1 when `bytes`/`length` are set). */
static inline int clws_request_line_take(SSL *ssl, int index, const char **bytes, int *length) {
    if (!ssl || index < 0) return -1;
    clws_request_line *line = (clws_request_line *)SSL_get_ex_data(ssl, index);
    if (!line) return -1;
    int state = line->state;
    if (state == 1) {
        *bytes = line->bytes;
        *length = line->length;
    }
    if (state == 0 || state == 1) line->state = 3;
    return state;
}

/* Frees the bytes of a taken line (the transport has copied what it needs). */
static inline void clws_request_line_release(SSL *ssl, int index) {
    if (!ssl || index < 0) return;
    clws_request_line *line = (clws_request_line *)SSL_get_ex_data(ssl, index);
    if (!line || line->state != 3) return;
    free(line->bytes);
    line->bytes = NULL;
    line->length = 0;
}

/*
 * The load generator's client sockets (loadtest/loadgen, ClientLink.swift): an ev_io watcher
 * for reading and/or writing with a C callback, its owner and a tag (the connection's index).
 * `events` is a mask of CLWS_EV_READ and CLWS_EV_WRITE; 0 stops the watcher. Setting the
 * events the watcher already has does nothing.
 */
static const int CLWS_EV_READ = EV_READ;
static const int CLWS_EV_WRITE = EV_WRITE;
typedef void (*clws_sock_fn)(void *owner, int tag, int revents);
typedef struct clws_sock {
    ev_io watcher; /* first member: the watcher pointer is the struct pointer */
    clws_sock_fn fn;
    void *owner;
    int tag;
} clws_sock;

static inline void clws_sock_trampoline(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    clws_sock *s = (clws_sock *)w;
    s->fn(s->owner, s->tag, revents);
}
static inline void clws_sock_watch(void *loop, clws_sock *s, int fd, int events, clws_sock_fn fn, void *owner,
                                   int tag) {
    events &= EV_READ | EV_WRITE;
    if (ev_is_active(&s->watcher)) {
        if (s->watcher.fd == fd && (s->watcher.events & (EV_READ | EV_WRITE)) == events) return;
        ev_io_stop((struct ev_loop *)loop, &s->watcher);
    }
    if (!events) return;
    s->fn = fn;
    s->owner = owner;
    s->tag = tag;
    ev_io_init(&s->watcher, clws_sock_trampoline, fd, events);
    ev_io_start((struct ev_loop *)loop, &s->watcher);
}

/* Its TLS: a client context that verifies nothing (the server's certificate is a throwaway
 * self-signed one on loopback) and takes partial writes from a buffer that may move between
 * retries. */
static inline SSL_CTX *clws_loadgen_ssl_ctx(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
    return ctx;
}
/*
 * Its certificate parsing. OpenSSL 3.0 turns the public key of every certificate it parses (the
 * server's, once per full handshake) into an EVP_PKEY through its provider decoders, and sets
 * up a decoder context for that each time: 137 us per parse of the server's P-256 certificate
 * on this machine kind, against 24 us by the legacy EC decoding (loadtest/RESULTS.md). OpenSSL
 * takes the legacy path only when an ENGINE claims the key type, so the generator registers one
 * that claims EC keys and hands back OpenSSL's own built-in EC method: the same EC code signs and
 * verifies, and nothing else changes. For the generator's process only (hearthd never calls it);
 * call once, before any TLS. Returns 0 if OpenSSL refused (the generator then parses as before).
 */
static inline int clws_loadgen_ec_methods(ENGINE *e, EVP_PKEY_METHOD **method, const int **nids, int nid) {
    (void)e;
    static const int claimed[] = {EVP_PKEY_EC};
    if (!method) {
        *nids = claimed;
        return 1;
    }
    *method = nid == EVP_PKEY_EC ? (EVP_PKEY_METHOD *)EVP_PKEY_meth_find(nid) : NULL;
    return *method != NULL;
}
static inline int clws_loadgen_legacy_ec_decoding(void) {
    ENGINE *e = ENGINE_new();
    if (!e) return 0;
    if (!ENGINE_set_id(e, "hearth-loadgen-ec") || !ENGINE_set_name(e, "legacy EC key decoding")
        || !ENGINE_set_pkey_meths(e, clws_loadgen_ec_methods) || !ENGINE_register_pkey_meths(e)) {
        ENGINE_free(e);
        return 0;
    }
    return 1; /* never freed: OpenSSL's table of engines refers to it until the process ends */
}
/* A client connection on `fd`: it writes to the socket itself, and reads from a memory BIO that
 * the generator fills with one read() of everything the socket holds (an empty BIO asks for
 * more, it is not the end). `sni`: the server name sent. */
static inline SSL *clws_loadgen_ssl_new(SSL_CTX *ctx, int fd, const char *sni) {
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return NULL;
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new_socket(fd, BIO_NOCLOSE);
    if (!rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(ssl);
        return NULL;
    }
    BIO_set_mem_eof_return(rbio, -1);
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_tlsext_host_name(ssl, sni);
    SSL_set_connect_state(ssl);
    return ssl;
}
/*
 * The loop thread's CPU time spent in TLS handshakes after the accept (the server's key
 * exchange and signature run when the ClientHello arrives, often in a later iteration), so
 * that the accept budget can count it. OpenSSL's info callback brackets each call into the
 * handshake: from its first state change (SSL_CB_LOOP) to its return (SSL_CB_EXIT). The
 * clock is the SSL_CTX's app data (ex_data index 0, which OpenSSL reserves for it; lws uses
 * an index of its own). One loop thread per SSL_CTX, and calls on it do not nest.
 */
typedef struct clws_handshake_clock {
    uint64_t nanos; /* CPU time counted so far */
    uint64_t mark;  /* the thread's CPU time at the current call's first step, 0 outside one */
} clws_handshake_clock;

static inline uint64_t clws_thread_cpu_nanos(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void clws_handshake_info(const SSL *ssl, int where, int ret) {
    (void)ret;
    clws_handshake_clock *c = (clws_handshake_clock *)SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (!c) return;
    if ((where & SSL_CB_LOOP) && c->mark == 0) {
        c->mark = clws_thread_cpu_nanos();
    } else if ((where & SSL_CB_EXIT) && c->mark != 0) {
        c->nanos += clws_thread_cpu_nanos() - c->mark;
        c->mark = 0;
    }
}

/* No TLS session resumption: no TLS 1.3 session tickets, no TLS 1.2 tickets or session cache.
 * OpenSSL's default of two TLS 1.3 tickets after every handshake cost hearthd two socket writes
 * and about 15% of its CPU per admitted connection (loadtest/RESULTS.md); every connection does
 * a full handshake with its own key exchange. */
static inline void clws_tls_no_resumption(SSL_CTX *ctx) {
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

static inline void clws_handshake_clock_install(SSL_CTX *ctx, clws_handshake_clock *clock) {
    SSL_CTX_set_app_data(ctx, clock);
    SSL_CTX_set_info_callback(ctx, clws_handshake_info);
}
/* The reason of the last OpenSSL error on this thread (and clears the queue), or NULL. */
static inline const char *clws_ssl_error_reason(void) {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    return e ? ERR_reason_error_string(e) : NULL;
}

/* OpenSSL's allocator for a process whose malloc is jemalloc (hearthd). libwebsockets clears
 * OpenSSL's error queue before every SSL_read and SSL_write; ERR_clear_error() hands each of
 * the queue's 16 slots' two strings to free(), NULL nearly always, 32 calls, and jemalloc's
 * free(NULL) costs about 46 instructions (callgrind; glibc's returns at once). These skip the
 * NULLs; the rest is plain malloc. */
static void *clws_openssl_malloc(size_t n, const char *file, int line) {
    (void)file; (void)line;
    return malloc(n);
}
static void *clws_openssl_realloc(void *p, size_t n, const char *file, int line) {
    (void)file; (void)line;
    return realloc(p, n);
}
static void clws_openssl_free(void *p, const char *file, int line) {
    (void)file; (void)line;
    if (p != NULL) free(p);
}
/* 1 if installed; 0 if OpenSSL already allocated in this process (then it keeps its own). */
static inline int clws_openssl_skip_null_frees(void) {
    return CRYPTO_set_mem_functions(clws_openssl_malloc, clws_openssl_realloc, clws_openssl_free);
}

#endif
