/*
 * test_server_e2e: the real shoal-server binary on 127.0.0.1 port 0, driven by two tiny
 * clients built from ctrlchan: url= on stdout and in DIR/url, HELLO/WELCOME, CREATE, JOIN with
 * a wrong and a right password, deltas, UDP probe, PING, and state surviving kill -9.
 * The binary is $SHOAL_BUILDDIR/shoal-server (set by `make check`), else ./shoal-server.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mproto/ctrlchan.h"
#include "crypto/identity.h"
#include "tests/unit/unit.h"

#define MAX_GOT 64

struct client {                          /* one test client */
	struct ctrlchan *ch;
	struct noise_keypair kp;
	int ready, closed;
	struct msg got[MAX_GOT];
	int n;
	uint32_t next_req;
};

struct server_proc {                     /* the spawned server */
	pid_t pid;
	uint16_t port;
	uint8_t pub[KEY_LEN];
	char url[600];
};

static struct ev_loop *loop;
static char state_dir[64];

static void
c_ready(void *arg, const uint8_t rs[KEY_LEN])
{
	(void)rs;
	((struct client *)arg)->ready = 1;
}

static void
c_msg(void *arg, const struct msg *m)
{
	struct client *c = arg;

	if (c->n < MAX_GOT)
		c->got[c->n++] = *m;
}

static void
c_close(void *arg, const char *why)
{
	(void)why;
	((struct client *)arg)->closed = 1;
}

static const struct ctrlchan_cbs cbs = { c_ready, c_msg, c_close };

static void
tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
}

/* Runs the loop until c has at least want messages of type (0: until ready), or 5 s pass. */
static const struct msg *
wait_msg(struct client *c, uint8_t type, int want)
{
	ev_timer t;
	ev_tstamp deadline;
	int k, have;

	ev_timer_init(&t, tick_cb, 0.02, 0.02);
	ev_timer_start(loop, &t);
	ev_now_update(loop);
	deadline = ev_now(loop) + 5.0;
	for (;;) {
		const struct msg *last = NULL;

		have = 0;
		if (type == 0) {
			if (c->ready)
				break;
		} else {
			for (k = 0; k < c->n; k++)
				if (c->got[k].type == type) {
					have++;
					last = &c->got[k];
				}
			if (have >= want) {
				ev_timer_stop(loop, &t);
				return last;
			}
		}
		if (c->closed || ev_now(loop) > deadline)
			break;
		ev_run(loop, EVRUN_ONCE);
	}
	ev_timer_stop(loop, &t);
	return NULL;
}

/* Runs the loop for a short while (to let stray messages arrive). */
static void
settle(double secs)
{
	ev_tstamp end;
	ev_timer t;

	ev_timer_init(&t, tick_cb, 0.02, 0.02);
	ev_timer_start(loop, &t);
	ev_now_update(loop);
	end = ev_now(loop) + secs;
	while (ev_now(loop) < end)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &t);
}

static int
server_start(struct server_proc *sp)
{
	char bin[1024], line[600], host[64], err[128];
	const char *bd = getenv("SHOAL_BUILDDIR");
	int pfd[2];
	FILE *f;

	snprintf(bin, sizeof(bin), "%s/shoal-server", bd ? bd : ".");
	if (pipe(pfd) < 0)
		return -1;
	if ((sp->pid = fork()) < 0)
		return -1;
	if (sp->pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl(bin, bin, "--listen", "127.0.0.1:0", "--state", state_dir, "--pwhash-fast",
		    (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
		fprintf(stderr, "no url line from %s\n", bin);
		return -1;
	}
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	if (strncmp(line, "url=", 4) != 0)
		return -1;
	snprintf(sp->url, sizeof(sp->url), "%s", line + 4);
	if (conn_string_parse(sp->url, host, sizeof(host), &sp->port, sp->pub, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "bad url %s: %s\n", sp->url, err);
		return -1;
	}
	return 0;
}

static int
client_connect(struct client *c, const struct server_proc *sp)
{
	struct sockaddr_in sin;
	int fd;

	c->ready = c->closed = 0;
	c->n = 0;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(sp->port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	c->ch = ctrlchan_new(loop, fd, 1, &c->kp, sp->pub, &cbs, c);
	if (c->ch == NULL)
		return -1;
	wait_msg(c, 0, 0);
	return c->ready ? 0 : -1;
}

static const struct msg *
hello(struct client *c, const char *nick)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_HELLO;
	m.u.hello.version = SHOAL_PROTO_VERSION;
	snprintf(m.u.hello.nick, sizeof(m.u.hello.nick), "%s", nick);
	m.u.hello.udp_port = 4242;
	m.u.hello.n_local = 1;
	m.u.hello.local[0].addr = 0xc0a80102u;
	m.u.hello.local[0].port = 4242;
	if (ctrlchan_send(c->ch, &m) < 0)
		return NULL;
	return wait_msg(c, MSG_WELCOME, 1);
}

static int
request(struct client *c, uint8_t op, const char *net, const char *pw)
{
	const struct msg *r;
	struct msg m;
	int results = 0, k;

	for (k = 0; k < c->n; k++)
		results += c->got[k].type == MSG_RESULT;
	memset(&m, 0, sizeof(m));
	m.type = MSG_REQUEST;
	m.u.request.req_id = ++c->next_req;
	m.u.request.op = op;
	snprintf(m.u.request.network, sizeof(m.u.request.network), "%s", net);
	snprintf(m.u.request.password, sizeof(m.u.request.password), "%s", pw);
	if (ctrlchan_send(c->ch, &m) < 0)
		return -1;
	if ((r = wait_msg(c, MSG_RESULT, results + 1)) == NULL)
		return -1;
	CHECK_EQ(r->u.result.req_id, c->next_req);
	return r->u.result.status;
}

static const struct msg_member *
member_about(const struct client *c, const struct client *about)
{
	int k;

	for (k = c->n - 1; k >= 0; k--)
		if (c->got[k].type == MSG_MEMBER &&
		    memcmp(c->got[k].u.member.key, about->kp.pub, KEY_LEN) == 0)
			return &c->got[k].u.member;
	return NULL;
}

static void
test_e2e(void)
{
	struct server_proc sp = { 0 }, sp2 = { 0 };
	struct client a, b;
	const struct msg *w;
	const struct msg_member *mm;
	char urlfile[128], buf[600];
	uint8_t token[UDP_TOKEN_LEN], pkt[64];
	struct endpoint ep;
	struct sockaddr_in sin, me;
	socklen_t len;
	FILE *f;
	int ufd, status, n;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	noise_keypair_generate(&a.kp);
	noise_keypair_generate(&b.kp);

	CHECK(server_start(&sp) == 0);
	if (sp.port == 0)
		return;
	snprintf(urlfile, sizeof(urlfile), "%s/url", state_dir);
	f = fopen(urlfile, "r");
	CHECK(f != NULL);
	if (f) {
		CHECK(fgets(buf, sizeof(buf), f) != NULL);
		buf[strcspn(buf, "\n")] = '\0';
		CHECK(strcmp(buf, sp.url) == 0);
		fclose(f);
	}

	CHECK(client_connect(&a, &sp) == 0);
	w = hello(&a, "alice");
	CHECK(w && w->u.welcome.address == 0x05000001u && strcmp(w->u.welcome.nick, "alice") == 0);
	CHECK_EQ(request(&a, OP_CREATE, "lan", "pw"), RES_OK);
	CHECK(wait_msg(&a, MSG_NETWORK, 1) != NULL);

	CHECK(client_connect(&b, &sp) == 0);
	w = hello(&b, "bob");
	CHECK(w && w->u.welcome.address == 0x05000002u);
	if (w)
		memcpy(token, w->u.welcome.udp_token, UDP_TOKEN_LEN);
	CHECK_EQ(request(&b, OP_JOIN, "lan", "nope"), RES_ERR_BAD_PASSWORD);
	CHECK_EQ(request(&b, OP_JOIN, "lan", "pw"), RES_OK);
	CHECK(member_about(&b, &a) != NULL);
	CHECK(wait_msg(&a, MSG_MEMBER, 2) != NULL);
	mm = member_about(&a, &b);
	CHECK(mm && mm->flags == (MEMF_ONLINE | MEMF_ACTIVE) && mm->address == 0x05000002u);

	/* UDP probe: the reply carries our endpoint, and alice learns it as bob's first one */
	ufd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(sp.port);
	n = probe_encode(token, pkt, sizeof(pkt));
	CHECK(n == UDP_PROBE_LEN);
	CHECK(sendto(ufd, pkt, (size_t)n, 0, (struct sockaddr *)&sin, sizeof(sin)) == n);
	n = (int)recv(ufd, pkt, sizeof(pkt), 0);
	CHECK(probe_reply_decode(pkt, n > 0 ? (size_t)n : 0, &ep) == 0);
	len = sizeof(me);
	getsockname(ufd, (struct sockaddr *)&me, &len);
	CHECK(ep.addr == 0x7f000001u && ep.port == ntohs(me.sin_port));
	CHECK(wait_msg(&a, MSG_MEMBER, 3) != NULL);
	mm = member_about(&a, &b);
	CHECK(mm && mm->n_endpoints == 2 && mm->endpoints[0].port == ep.port &&
	    mm->endpoints[1].addr == 0xc0a80102u);
	close(ufd);

	/* ping */
	{
		struct msg p;

		memset(&p, 0, sizeof(p));
		p.type = MSG_PING;
		p.u.ping.nonce = 0x1234;
		CHECK(ctrlchan_send(b.ch, &p) == 0);
		w = wait_msg(&b, MSG_PONG, 1);
		CHECK(w && w->u.ping.nonce == 0x1234);
	}

	/* kill -9, restart on the same state: same key, same address, same memberships */
	kill(sp.pid, SIGKILL);
	waitpid(sp.pid, &status, 0);
	settle(0.1);
	ctrlchan_free(a.ch);
	ctrlchan_free(b.ch);
	CHECK(server_start(&sp2) == 0);
	CHECK_MEM(sp2.pub, sp.pub, KEY_LEN);
	CHECK(client_connect(&b, &sp2) == 0);
	w = hello(&b, "");
	CHECK(w && w->u.welcome.address == 0x05000002u && strcmp(w->u.welcome.nick, "bob") == 0);
	CHECK(wait_msg(&b, MSG_MEMBER, 2) != NULL);
	CHECK(wait_msg(&b, MSG_NETWORK, 1) != NULL);
	mm = member_about(&b, &a);
	CHECK(mm && mm->flags == (MEMF_OWNER | MEMF_ACTIVE) && mm->n_endpoints == 0);
	CHECK_EQ(request(&b, OP_LEAVE, "lan", ""), RES_OK);
	CHECK(wait_msg(&b, MSG_NETWORK_GONE, 1) != NULL);
	ctrlchan_free(b.ch);

	kill(sp2.pid, SIGTERM);
	CHECK(waitpid(sp2.pid, &status, 0) == sp2.pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int
main(void)
{
	char cmd[128];
	int rc;

	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	loop = ev_default_loop(0);
	snprintf(state_dir, sizeof(state_dir), "/tmp/test_server_e2e.XXXXXX");
	if (mkdtemp(state_dir) == NULL)
		return 1;
	/* The server creates DIR itself on first start: start from a missing one. */
	rmdir(state_dir);
	RUN(test_e2e);
	rc = unit_finish();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", state_dir);
	return rc;
}
