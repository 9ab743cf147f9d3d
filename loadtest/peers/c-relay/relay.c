/*
 * c-relay: a minimal WebSocket "room relay" on libwebsockets 4.1 + libev (foreign loop).
 * A benchmark peer for the Hearth load tests, not a product: no auth, no limits.
 * Every text message is relayed to every connection in the same room (the request path),
 * sender included, in order. Usage: relay --port P --cert C.pem --key K.pem [--plain]
 * OpenSSL's default TLS session tickets (two per handshake) unless RELAY_NO_TICKETS is set.
 */
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 4096
struct msg { unsigned refs; size_t len; unsigned char buf[]; };  /* buf: LWS_PRE + len */
struct room { struct room *next; lws_dll2_owner_t members; char path[]; };
struct vhd { struct room *bucket[NBUCKETS]; };
struct pss {
	struct lws *wsi; struct room *room; lws_dll2_t list;
	struct msg **q; unsigned qhead, qlen, qcap;         /* FIFO ring, qcap a power of 2 */
	struct msg *rx;                                     /* message being reassembled */
};

static void unref(struct msg *m) { if (--m->refs == 0) free(m); }

static struct room **slot(struct vhd *v, const char *path) {
	unsigned h = 5381;
	for (const char *c = path; *c; c++) h = h * 33 + (unsigned char)*c;
	struct room **r = &v->bucket[h % NBUCKETS];
	while (*r && strcmp((*r)->path, path)) r = &(*r)->next;
	return r;
}

static int push(struct pss *p, struct msg *m) {
	if (p->qlen == p->qcap) {
		unsigned ncap = p->qcap ? p->qcap * 2 : 8;
		struct msg **n = malloc(ncap * sizeof *n);
		if (!n) return -1;
		for (unsigned i = 0; i < p->qlen; i++) n[i] = p->q[(p->qhead + i) & (p->qcap - 1)];
		free(p->q); p->q = n; p->qcap = ncap; p->qhead = 0;
	}
	p->q[(p->qhead + p->qlen++) & (p->qcap - 1)] = m;
	m->refs++;
	return 0;
}

static int callback_relay(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
	struct pss *pss = user;
	struct vhd *vhd = lws_protocol_vh_priv_get(lws_get_vhost(wsi), lws_get_protocol(wsi));
	char path[512];

	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* RELAY_NO_TICKETS=1: no TLS session tickets and no session cache, as hearthd */
		if (getenv("RELAY_NO_TICKETS") && user) {
			SSL_CTX_set_num_tickets(user, 0);
			SSL_CTX_set_options(user, SSL_OP_NO_TICKET);
			SSL_CTX_set_session_cache_mode(user, SSL_SESS_CACHE_OFF);
		}
		break;
	case LWS_CALLBACK_PROTOCOL_INIT:
		return lws_protocol_vh_priv_zalloc(lws_get_vhost(wsi), lws_get_protocol(wsi), sizeof(struct vhd)) ? 0 : -1;
	case LWS_CALLBACK_ESTABLISHED: {
		if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) < 0) return -1;
		struct room **r = slot(vhd, path);
		if (!*r) {
			if (!(*r = calloc(1, sizeof **r + strlen(path) + 1))) return -1;
			strcpy((*r)->path, path);
		}
		pss->wsi = wsi; pss->room = *r;
		lws_dll2_add_tail(&pss->list, &pss->room->members);
		break;
	}
	case LWS_CALLBACK_RECEIVE: {
		size_t have = pss->rx ? pss->rx->len : 0;
		struct msg *m = realloc(pss->rx, sizeof *m + LWS_PRE + have + len);
		if (!m) return -1;
		if (len) memcpy(m->buf + LWS_PRE + have, in, len);
		m->len = have + len; m->refs = 0; pss->rx = m;
		if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) break;
		pss->rx = NULL;
		lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&pss->room->members)) {
			struct pss *o = lws_container_of(d, struct pss, list);
			if (push(o, m)) lws_set_timeout(o->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
			else lws_callback_on_writable(o->wsi);
		} lws_end_foreach_dll(d);
		if (!m->refs) free(m);
		break;
	}
	case LWS_CALLBACK_SERVER_WRITEABLE: {
		if (!pss->qlen) break;
		struct msg *m = pss->q[pss->qhead];
		pss->qhead = (pss->qhead + 1) & (pss->qcap - 1); pss->qlen--;
		int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT), short_write = n < (int)m->len;
		unref(m);
		if (short_write) return -1;
		if (pss->qlen) lws_callback_on_writable(wsi);
		break;
	}
	case LWS_CALLBACK_CLOSED:
		if (pss->room) {
			lws_dll2_remove(&pss->list);
			if (!pss->room->members.count) { struct room **r = slot(vhd, pss->room->path); *r = (*r)->next; free(pss->room); }
		}
		while (pss->qlen) { unref(pss->q[pss->qhead]); pss->qhead = (pss->qhead + 1) & (pss->qcap - 1); pss->qlen--; }
		free(pss->q); free(pss->rx);
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* protocols[0] must be the relay: a client that offers no subprotocol is bound to it */
static const struct lws_protocols protocols[] = {
	{ "relay", callback_relay, sizeof(struct pss), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) { (void)w; (void)revents; ev_break(loop, EVBREAK_ALL); }

int main(int argc, const char **argv) {
	const char *port = lws_cmdline_option(argc, argv, "--port");
	const char *cert = lws_cmdline_option(argc, argv, "--cert"), *key = lws_cmdline_option(argc, argv, "--key");
	int plain = lws_cmdline_option(argc, argv, "--plain") != NULL;
	if (!port || (!plain && (!cert || !key))) {
		fprintf(stderr, "usage: %s --port P --cert CERT.pem --key KEY.pem [--plain]\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

	struct ev_loop *loop = ev_default_loop(0);
	ev_signal sigterm, sigint;
	ev_signal_init(&sigterm, on_signal, SIGTERM); ev_signal_start(loop, &sigterm);
	ev_signal_init(&sigint, on_signal, SIGINT); ev_signal_start(loop, &sigint);

	void *foreign_loops[1] = { loop };
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.port = atoi(port);
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	info.foreign_loops = foreign_loops;
	info.pt_serv_buf_size = 16384;    /* one full TLS record per read */
	/* fd_limit_per_thread left 0: lws sizes its fd tables from RLIMIT_NOFILE at start */
	info.options = LWS_SERVER_OPTION_LIBEV | LWS_SERVER_OPTION_DISABLE_IPV6;
	if (!plain) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cert;
		info.ssl_private_key_filepath = key;
	}
	struct lws_context *context = lws_create_context(&info);
	if (!context) { fprintf(stderr, "lws_create_context failed\n"); return 1; }

	printf("listening on 127.0.0.1:%d\n", info.port);
	fflush(stdout);
	ev_run(loop, 0);

	lws_context_destroy(context);
	ev_signal_stop(loop, &sigterm); ev_signal_stop(loop, &sigint);
	ev_loop_destroy(loop);
	return 0;
}
