/*
 * check_cluster.c: three ringlb instances behind ECMP (make cluster-test).
 *
 * tools/cluster/cluster.sh builds the namespaces: a client with 10.1/16,
 * a router running bird2 (BGP from each balancer, BFD, ECMP on the
 * 5-tuple), three balancers with the VIP 10.99.0.1 on lo and a bird each,
 * and four backends.  The test starts the backends (H_PEER: they answer
 * "<name> <balancer address>", so a client knows who carried it), a real
 * ringlb in each balancer namespace (maglev over the four backends,
 * listed in a different order in each), and tools/cluster/vip-hook.sh for
 * each, which announces the VIP while GET /ready says 200.  Then, with
 * measured numbers printed:
 *
 * - spread: 1,000 client addresses over the three instances, within 15%;
 * - agreement: an address reaches the same backend through every instance
 *   that carries it, for at least 99% of 1,000 addresses;
 * - withdraw, drain, stop: with 200 streams open and new connections
 *   coming, `ringlbctl withdraw` on instance 1 moves new flows away within
 *   a second, its streams finish byte-exact, it stops; nothing fails;
 * - an instance dies (kill -9): only its streams are lost, new
 *   connections work again within a second, the others lose nothing;
 * - membership changes under plain ECMP (no flow pinning in the router):
 *   what a withdraw and a rejoin cost the open streams, against 0 with
 *   pinning.
 *
 * Needs root, ip netns, bird2 and nftables (installed when missing);
 * skipped otherwise.  Every address is inside the test's namespaces.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"

#define PREFIX "rlct"	/* fixed: a run cleans what a killed one left */
#define VIP "10.99.0.1"
#define VPORT 8000
#define VIP2 "10.0.10.100"	/* the VRRP setup's */
#define VPORT2 8001
#define BPORT 7000
#define NLB 3
#define NBE 4
#define NSTREAMS 200

static char dir[256];
static int home_ns = -1;
static struct h_backend be[NBE];
static struct h_lb lb[NLB];
static pid_t hook[NLB];
static bool up;

/* ---- namespaces ---- */

static void
ns_enter(const char *ns)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/" PREFIX "%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_msg(setns(fd, CLONE_NEWNET) == 0, "setns %s: %s", path,
		      strerror(errno));
	close(fd);
}

static void
ns_home(void)
{
	ck_assert_int_eq(setns(home_ns, CLONE_NEWNET), 0);
}

/* Run a command to completion; its exit status, output in r. */
static int
run(const char *const argv[], int timeout_ms, struct h_run *r)
{
	ck_assert_int_eq(h_run(argv, timeout_ms, r), 0);
	ck_assert_msg(!r->timed_out, "%s: timed out", argv[0]);
	return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128;
}

static void
cluster_down(void)
{
	const char *argv[] = { "tools/cluster/cluster.sh", "down", dir, NULL };
	struct h_run *r;

	if (!up)
		return;
	up = false;
	for (int i = 0; i < NLB; i++)
		if (hook[i] > 0)
			h_kill(hook[i]);
	r = calloc(1, sizeof(*r));
	if (r && h_run(argv, 30000, r) == 0 && WIFEXITED(r->status) &&
	    WEXITSTATUS(r->status) != 0)
		fprintf(stderr, "cluster.sh down: %s\n", r->err);
	free(r);
}

/* Next hops of the router's route to the VIP. */
static int
nexthops(void)
{
	const char *argv[] = { "ip", "-n", PREFIX "r", "route", "show", VIP,
			       NULL };
	struct h_run *r = calloc(1, sizeof(*r));
	int n = 0;

	ck_assert_ptr_nonnull(r);
	if (run(argv, 5000, r) == 0) {
		for (const char *p = r->out; (p = strstr(p, "nexthop")); p++)
			n++;
		if (n == 0 && strstr(r->out, VIP))
			n = 1;	/* a single path has no "nexthop" lines */
	}
	free(r);
	return n;
}

/* Wait until the route has n next hops; how long that took, in ms. */
static uint64_t
wait_nexthops(int n, int timeout_ms)
{
	uint64_t t0 = h_now_ms();

	while (nexthops() != n) {
		ck_assert_msg(h_now_ms() - t0 < (uint64_t)timeout_ms,
			      "the router has %d next hops to the VIP after %d "
			      "ms, want %d",
			      nexthops(), timeout_ms, n);
		h_sleep_ms(20);
	}
	return h_now_ms() - t0;
}

static void
pin(bool on)
{
	const char *argv[] = { "tools/cluster/cluster.sh", "pin", dir,
			       on ? "on" : "off", NULL };
	struct h_run *r = calloc(1, sizeof(*r));

	ck_assert_ptr_nonnull(r);
	ck_assert_msg(run(argv, 10000, r) == 0, "pin: %s", r->err);
	free(r);
}

/* ---- ringlb instances and their hooks ---- */

/*
 * Instance i's config: a maglev pool over the four backends, listed from
 * a different one in each instance; listener "vip" on the ECMP VIP and
 * "vip2" on the VRRP one (bound before it is held: ip_nonlocal_bind).
 */
static json_t *
lb_cfg(int i)
{
	json_t *cfg = hc_new(), *p, *bs;

	hc_set(cfg, "workers", json_integer(1));
	hc_set(cfg, "shutdown_grace_ms", json_integer(30000));
	p = hc_json("{ \"name\": \"vip\", \"algorithm\": \"maglev\", "
		    "\"health_check\": { \"interval_ms\": 500, "
		    "\"timeout_ms\": 400 } }");
	bs = json_array();
	for (int k = 0; k < NBE; k++) {
		int j = (k + i) % NBE;
		char addr[32];

		snprintf(addr, sizeof(addr), "%s:%d", be[j].host, BPORT);
		json_array_append_new(bs, json_pack("{s:s,s:s}", "name",
						    be[j].name, "address",
						    addr));
	}
	json_object_set_new(p, "backends", bs);
	json_object_set_new(cfg, "pools", json_pack("[o]", p));
	json_array_append_new(json_object_get(cfg, "listeners"),
			      json_pack("{s:s,s:s,s:s}", "name", "vip",
					"listen", VIP ":8000", "pool", "vip"));
	json_array_append_new(json_object_get(cfg, "listeners"),
			      json_pack("{s:s,s:s,s:s}", "name", "vip2",
					"listen", VIP2 ":8001", "pool", "vip"));
	return cfg;
}

static void
lb_start(int i)
{
	char ns[8];
	json_t *cfg = lb_cfg(i);

	snprintf(ns, sizeof(ns), "lb%d", i + 1);
	ns_enter(ns);
	ck_assert_int_eq(h_lb_start_cfg(&lb[i], cfg, 0, NULL), 0);
	ns_home();
	json_decref(cfg);
	ck_assert_msg(h_lb_log_wait(&lb[i], 1, 10000, "ringlb started"),
		      "instance %d did not start", i + 1);
}

/* Instance i's health hook: for bird (BGP), or a keepalived track file. */
static pid_t
hook_spawn(int i, bool vrrp)
{
	char sock[200], bird[300], log[300];
	const char *argv[] = { "tools/cluster/vip-hook.sh", sock, bird, NULL,
			       NULL };
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/admin.sock", lb[i].dir);
	if (vrrp) {
		argv[2] = "--file";
		argv[3] = bird;
		snprintf(bird, sizeof(bird), "%s/ready%d", dir, i + 1);
	} else {
		snprintf(bird, sizeof(bird), "%s/lb%d.ctl", dir, i + 1);
	}
	snprintf(log, sizeof(log), "%s/hook%d%s.log", dir, i + 1,
		 vrrp ? "-vrrp" : "");
	pid = h_spawn(argv, log);
	ck_assert_int_gt(pid, 0);
	return pid;
}

static void
hook_start(int i)
{
	hook[i] = hook_spawn(i, false);
}

/* ringlbctl on instance i; must succeed. */
static void
ctl(int i, const char *cmd)
{
	struct h_run *r = h_ctl(&lb[i], cmd);

	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
		      "ringlbctl %s on instance %d: %s", cmd, i + 1, r->err);
	free(r);
}

static void
cluster_up(void)
{
	const char *argv[] = { "tools/cluster/cluster.sh", "up", dir, NULL };
	struct h_run *r;

	if (geteuid() != 0)
		h_skip("needs root for ip netns and bird");
	h_need("/usr/sbin/bird", "bird2");
	h_need("/usr/sbin/nft", "nftables");
	home_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(home_ns, 0);
	ck_assert_int_eq(h_tempdir(dir, sizeof(dir)), 0);
	setenv("CLUSTER_PREFIX", PREFIX, 1);
	setenv("RINGLBCTL", h_ctl_bin(), 1);
	setenv("BIRDC", "/usr/sbin/birdc", 1);
	r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	up = true;
	atexit(cluster_down);
	if (run(argv, 60000, r) != 0) {
		if (strstr(r->err, "ip netns") || strstr(r->err, "netns"))
			h_skip("no network namespaces here: %.200s", r->err);
		ck_abort_msg("cluster.sh up: %s%s", r->out, r->err);
	}
	free(r);

	ns_enter("be");
	for (int i = 0; i < NBE; i++) {
		char name[8], host[16];

		snprintf(name, sizeof(name), "b%d", i + 1);
		snprintf(host, sizeof(host), "10.2.0.%d", 11 + i);
		h_backend_up_at(&be[i], H_PEER, name, host, BPORT);
	}
	ns_home();
	for (int i = 0; i < NLB; i++)
		lb_start(i);
	for (int i = 0; i < NLB; i++)
		hook_start(i);
	fprintf(stderr, "cluster: up, VIP announced by all 3 in %llu ms\n",
		(unsigned long long)wait_nexthops(NLB, 15000));
}

/* ---- clients ---- */

/* Client address k of 10.1.0.0/16 (k < 60,000). */
static void
client_addr(int k, char *out, size_t size)
{
	snprintf(out, size, "10.1.%d.%d", 1 + k / 250, 1 + k % 250);
}

/* Which instance a balancer address is (10.0.N.2): 0..2, or -1. */
static int
instance_of(const char *addr)
{
	int n;

	if (sscanf(addr, "10.0.%d.2", &n) != 1 || n < 1 || n > NLB)
		return -1;
	return n - 1;
}

/*
 * One connection from client address k (in the client namespace): its
 * fd (or -errno), the backend's name and the instance that carried it.
 */
static const char *to_host = VIP;	/* where clients connect */
static int to_port = VPORT;

static int
visit(int k, char *name, size_t size, int *inst, int timeout_ms)
{
	char src[32], line[96], peer[48];
	int fd, rc;

	client_addr(k, src, sizeof(src));
	fd = h_connect_from(src, to_host, to_port, timeout_ms);
	if (fd < 0)
		return fd;
	rc = h_read_line(fd, line, sizeof(line), timeout_ms);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	if (sscanf(line, "%7s %47s", name, peer) != 2) {
		close(fd);
		return -EBADMSG;
	}
	(void)size;
	*inst = instance_of(peer);
	return fd;
}

/* Long-lived streams, each from its own client address. */
struct streams {
	int fd[NSTREAMS];
	int inst[NSTREAMS];
	unsigned round;
};

static void
streams_open(struct streams *s, int base)
{
	char name[8];

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < NSTREAMS; i++) {
		s->fd[i] = visit(base + i, name, sizeof(name), &s->inst[i],
				 5000);
		ck_assert_msg(s->fd[i] >= 0, "stream %d: %s", i,
			      strerror(-s->fd[i]));
		ck_assert_int_ge(s->inst[i], 0);
	}
}

/*
 * One echo round on every open stream; a stream that fails is closed
 * and counted (*lost[instance]).  Returns how many failed.
 */
static int
streams_round(struct streams *s, int lost[NLB])
{
	int failed = 0;

	s->round++;
	for (int i = 0; i < NSTREAMS; i++) {
		char out[64], in[64];
		int n;

		if (s->fd[i] < 0)
			continue;
		n = snprintf(out, sizeof(out), "stream %d round %u\n", i,
			     s->round);
		if (h_write_all(s->fd[i], out, (size_t)n, 3000) == 0 &&
		    h_read_line(s->fd[i], in, sizeof(in), 3000) >= 0 &&
		    strlen(in) == (size_t)n - 1 &&
		    strncmp(in, out, (size_t)n - 1) == 0)
			continue;
		close(s->fd[i]);
		s->fd[i] = -1;
		lost[s->inst[i]]++;
		failed++;
	}
	return failed;
}

static int
streams_on(const struct streams *s, int inst)
{
	int n = 0;

	for (int i = 0; i < NSTREAMS; i++)
		n += s->fd[i] >= 0 && s->inst[i] == inst;
	return n;
}

static void
streams_close(struct streams *s)
{
	for (int i = 0; i < NSTREAMS; i++)
		if (s->fd[i] >= 0) {
			close(s->fd[i]);
			s->fd[i] = -1;
		}
}

/* A steady stream of new connections, in a thread of the client ns. */
struct load {
	pthread_t t;
	int base;
	atomic_bool stop;
	atomic_uint ok, failed;
	atomic_uint on[NLB];
	/* h_now_ms() of the last event of a kind (a failure: its start) */
	_Atomic uint64_t last_on[NLB], last_fail, first_fail;
	char first_error[128];
};

static void *
load_run(void *arg)
{
	struct load *l = arg;
	int k = 0;

	ns_enter("c");
	while (!atomic_load(&l->stop)) {
		char name[8];
		uint64_t start = h_now_ms();
		int inst = -1, fd = visit(l->base + k, name, sizeof(name),
					  &inst, 2000);

		k = (k + 1) % 500;
		if (fd >= 0 && inst >= 0) {
			close(fd);
			atomic_fetch_add(&l->ok, 1);
			atomic_fetch_add(&l->on[inst], 1);
			atomic_store(&l->last_on[inst], h_now_ms());
		} else {
			uint64_t z = 0;

			if (fd >= 0)
				close(fd);
			if (atomic_fetch_add(&l->failed, 1) == 0)
				snprintf(l->first_error,
					 sizeof(l->first_error), "%s",
					 fd < 0 ? strerror(-fd) : "no peer");
			/* When the failed attempt began: a connect to a
			 * silent node fails only at its timeout. */
			atomic_compare_exchange_strong(&l->first_fail, &z,
						       start);
			atomic_store(&l->last_fail, start);
			h_sleep_ms(5);
		}
	}
	return NULL;
}

static void
load_start(struct load *l, int base)
{
	memset(l, 0, sizeof(*l));
	l->base = base;
	ck_assert_int_eq(pthread_create(&l->t, NULL, load_run, l), 0);
	while (atomic_load(&l->ok) < 30 && atomic_load(&l->failed) == 0)
		h_sleep_ms(5);
}

static void
load_stop(struct load *l)
{
	atomic_store(&l->stop, true);
	pthread_join(l->t, NULL);
}

/* ---- the checks ---- */

/*
 * 1,000 client addresses spread over the three instances within 15% of a
 * third each; and every address reaches one backend, through whichever
 * instance carries it (the configs list the backends in different
 * orders), for at least 99% of them.
 */
START_TEST(spread_and_agreement)
{
	enum { NADDR = 1000, TRIES = 8 };
	static char first[NADDR][8];
	int per[NLB] = { 0 }, agree = 0, multi = 0;

	cluster_up();
	ns_enter("c");
	for (int k = 0; k < NADDR; k++) {
		char name[8];
		int inst, fd = visit(k, name, sizeof(name), &inst, 5000);

		ck_assert_msg(fd >= 0, "client %d: %s", k, strerror(-fd));
		ck_assert_int_ge(inst, 0);
		close(fd);
		per[inst]++;
		snprintf(first[k], sizeof(first[k]), "%s", name);
	}
	fprintf(stderr, "spread: 1,000 client addresses: %d / %d / %d "
		"(%.1f%% / %.1f%% / %.1f%%)\n",
		per[0], per[1], per[2], per[0] / 10.0, per[1] / 10.0,
		per[2] / 10.0);
	for (int i = 0; i < NLB; i++)
		ck_assert_msg(per[i] >= 283 && per[i] <= 383,
			      "instance %d got %d of 1,000 (want 333 +-15%%)",
			      i + 1, per[i]);

	/* Each address again, from other ports, until a second instance
	 * has carried it (the router hashes the ports too). */
	for (int k = 0; k < NADDR; k++) {
		bool seen[NLB] = { false }, same = true;
		int nseen = 0;

		for (int t = 0; t < TRIES && nseen < 2; t++) {
			char name[8];
			int inst, fd = visit(k, name, sizeof(name), &inst,
					     5000);

			ck_assert_msg(fd >= 0, "client %d: %s", k,
				      strerror(-fd));
			close(fd);
			if (!seen[inst]) {
				seen[inst] = true;
				nseen++;
			}
			same = same && strcmp(name, first[k]) == 0;
		}
		multi += nseen >= 2;
		agree += same;
	}
	ns_home();
	fprintf(stderr, "agreement: %d of 1,000 addresses reached the same "
		"backend every time (%d of them through 2 or more "
		"instances)\n",
		agree, multi);
	ck_assert_int_ge(multi, 900);
	ck_assert_int_ge(agree, 990);
}
END_TEST

/*
 * With 200 streams open and new connections coming: withdraw instance 1,
 * see new flows leave it within a second, let its streams finish
 * byte-exact, stop it.  Nothing fails.  (The router pins flows.)
 */
START_TEST(withdraw_drain_stop)
{
	struct streams s;
	struct load l;
	int lost[NLB] = { 0 }, on1;
	uint64_t t0, moved;

	cluster_up();
	pin(true);
	ns_enter("c");
	streams_open(&s, 2000);
	ck_assert_int_eq(streams_round(&s, lost), 0);
	on1 = streams_on(&s, 0);
	ck_assert_int_gt(on1, 20);
	load_start(&l, 3000);

	t0 = h_now_ms();
	ctl(0, "withdraw");
	moved = wait_nexthops(NLB - 1, 3000);
	h_sleep_ms(1000);
	/* The last new flow instance 1 took came before the route moved. */
	{
		uint64_t last = atomic_load(&l.last_on[0]);

		fprintf(stderr, "withdraw: the router dropped instance 1 %llu "
			"ms after ringlbctl withdraw; its last new flow came "
			"%lld ms after it\n",
			(unsigned long long)moved,
			(long long)(last > t0 ? last - t0 : 0));
		ck_assert_msg(last < t0 + 1000,
			      "instance 1 still took new flows %llu ms after "
			      "the withdraw",
			      (unsigned long long)(last - t0));
	}
	/* Its streams are served on, byte-exact, and then they finish. */
	for (int r = 0; r < 3; r++)
		ck_assert_int_eq(streams_round(&s, lost), 0);
	streams_close(&s);
	load_stop(&l);
	ns_home();
	{
		json_t *j;
		uint64_t t1 = h_now_ms();

		for (;;) {
			j = h_api(&lb[0], "GET", "/listeners/vip", NULL, 200);
			if (h_jint(j, "active") == 0)
				break;
			json_decref(j);
			ck_assert_msg(h_now_ms() - t1 < 5000,
				      "instance 1 still has connections");
			h_sleep_ms(20);
		}
		json_decref(j);
	}
	h_lb_signal(&lb[0], SIGTERM);
	ck_assert_int_eq(h_lb_wait_exit(&lb[0], 10000), 0);
	ck_assert(WIFEXITED(lb[0].status) && WEXITSTATUS(lb[0].status) == 0);
	fprintf(stderr, "withdraw, drain, stop: %d streams on instance 1 "
		"finished byte-exact; %u new connections during it, %u "
		"failed; 0 of %d streams lost\n",
		on1, atomic_load(&l.ok), atomic_load(&l.failed), NSTREAMS);
	ck_assert_msg(atomic_load(&l.failed) == 0,
		      "%u new connections failed (first: %s)",
		      atomic_load(&l.failed), l.first_error);
	ck_assert_uint_gt(atomic_load(&l.on[1]) + atomic_load(&l.on[2]), 50);
}
END_TEST

/*
 * kill -9 of instance 2: only its streams are lost, new connections work
 * again within a second, instances 1 and 3 lose nothing.
 */
START_TEST(instance_dies)
{
	struct streams s;
	struct load l;
	int lost[NLB] = { 0 }, on[NLB];
	uint64_t t0, gone, last_fail;

	cluster_up();
	pin(true);
	ns_enter("c");
	streams_open(&s, 2000);
	ck_assert_int_eq(streams_round(&s, lost), 0);
	for (int i = 0; i < NLB; i++)
		on[i] = streams_on(&s, i);
	ck_assert_int_gt(on[1], 20);
	load_start(&l, 3000);

	t0 = h_now_ms();
	kill(lb[1].pid, SIGKILL);
	gone = wait_nexthops(NLB - 1, 3000);
	h_sleep_ms(1000);
	streams_round(&s, lost);
	streams_round(&s, lost);
	load_stop(&l);
	ns_home();
	last_fail = atomic_load(&l.last_fail);
	fprintf(stderr, "kill -9 of instance 2: the router dropped it after "
		"%llu ms; new connections failed for %lld ms (%u failed, "
		"%u ok); streams lost: %d of %d on instance 2, %d of %d on "
		"1, %d of %d on 3\n",
		(unsigned long long)gone,
		(long long)(last_fail > t0 ? last_fail - t0 : 0),
		atomic_load(&l.failed), atomic_load(&l.ok), lost[1], on[1],
		lost[0], on[0], lost[2], on[2]);
	ck_assert_int_eq(lost[1], on[1]);
	ck_assert_int_eq(lost[0], 0);
	ck_assert_int_eq(lost[2], 0);
	ck_assert_msg(last_fail < t0 + 1000,
		      "a new connection failed %llu ms after the kill",
		      (unsigned long long)(last_fail - t0));
	streams_close(&s);
}
END_TEST

/*
 * Instance 3's node goes silent (every packet in its namespace dropped,
 * as when a machine hangs or its link is cut): BFD takes it out of the
 * router within a second; new connections begun after that all work,
 * and instances 1 and 2 lose nothing.
 */
START_TEST(node_goes_silent)
{
	const char *argv[] = { "ip", "netns", "exec", PREFIX "lb3", "nft",
			       "-f", NULL, NULL };
	char rules[300];
	struct streams s;
	struct load l;
	struct h_run *r;
	int lost[NLB] = { 0 }, on[NLB];
	uint64_t t0, gone, last_fail;

	cluster_up();
	pin(true);
	snprintf(rules, sizeof(rules), "%s/silent.nft", dir);
	ck_assert_int_eq(h_write_file(rules,
				      "table inet silent {\n"
				      "  chain in { type filter hook input "
				      "priority 0; policy drop; }\n"
				      "  chain out { type filter hook output "
				      "priority 0; policy drop; }\n"
				      "}\n"),
			 0);
	argv[6] = rules;
	ns_enter("c");
	streams_open(&s, 2000);
	ck_assert_int_eq(streams_round(&s, lost), 0);
	for (int i = 0; i < NLB; i++)
		on[i] = streams_on(&s, i);
	load_start(&l, 3000);

	t0 = h_now_ms();
	r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(run(argv, 10000, r) == 0, "nft: %s", r->err);
	free(r);
	gone = wait_nexthops(NLB - 1, 3000);
	h_sleep_ms(2500);	/* past the attempts that hung on it */
	load_stop(&l);
	/* Streams on 3 cannot finish now; those on 1 and 2 are fine. */
	for (int i = 0; i < NSTREAMS; i++)
		if (s.fd[i] >= 0 && s.inst[i] == 2) {
			close(s.fd[i]);
			s.fd[i] = -1;
		}
	streams_round(&s, lost);
	ns_home();
	last_fail = atomic_load(&l.last_fail);
	fprintf(stderr, "instance 3 silent: BFD took it out of the router "
		"after %llu ms; the last new connection that failed began "
		"%lld ms after (%u failed, %u ok); streams lost on 1 and 2: "
		"%d of %d (%d were on 3)\n",
		(unsigned long long)gone,
		(long long)(last_fail > t0 ? last_fail - t0 : 0),
		atomic_load(&l.failed), atomic_load(&l.ok),
		lost[0] + lost[1], on[0] + on[1], on[2]);
	ck_assert_msg(gone < 1000, "BFD took %llu ms",
		      (unsigned long long)gone);
	ck_assert_msg(last_fail < t0 + 1000,
		      "a new connection begun %llu ms after the node went "
		      "silent failed",
		      (unsigned long long)(last_fail - t0));
	ck_assert_int_eq(lost[0] + lost[1], 0);
	streams_close(&s);
}
END_TEST

/*
 * Upgrade one instance at a time, under 200 streams and a connect loop:
 * GET /ready stays 200 all along, so no hook withdraws and the router
 * never changes its route; every stream is handed over and echoes on,
 * and no new connection fails.
 */
START_TEST(upgrade_one_at_a_time)
{
	struct streams s;
	struct load l;
	int lost[NLB] = { 0 }, handed = 0;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	cluster_up();
	pin(true);
	ns_enter("c");
	streams_open(&s, 2000);
	ck_assert_int_eq(streams_round(&s, lost), 0);
	load_start(&l, 3000);
	for (int i = 0; i < NLB; i++) {
		struct h_run *r = h_ctl(&lb[i], "upgrade");
		int pid, h, left;

		ck_assert_msg(WIFEXITED(r->status) &&
				      WEXITSTATUS(r->status) == 0,
			      "upgrade of instance %d: %s", i + 1, r->err);
		ck_assert_int_eq(sscanf(r->out, "upgraded: pid %d serves; %d "
					"connections handed over, %d left",
					&pid, &h, &left),
				 3);
		free(r);
		h_track_pid(pid);
		ck_assert_int_eq(h_lb_wait_exit(&lb[i], 15000), 0);
		lb[i].pid = pid;
		lb[i].status = 0;
		handed += h;
		ck_assert_int_eq(nexthops(), NLB);
		ck_assert_int_eq(streams_round(&s, lost), 0);
	}
	load_stop(&l);
	ns_home();
	for (int i = 0; i < NLB; i++) {
		char log[300], *text;

		snprintf(log, sizeof(log), "%s/hook%d.log", dir, i + 1);
		text = h_read_file(log);
		ck_assert_ptr_nonnull(text);
		ck_assert_msg(strstr(text, "down: not ready") == NULL,
			      "hook %d withdrew during the upgrade:\n%s",
			      i + 1, text);
		free(text);
	}
	fprintf(stderr, "upgrade one at a time: %d connections handed over "
		"(the %d streams, byte-exact after each upgrade, and the "
		"connect loop's in flight), %u new connections, %u failed, "
		"the route unchanged\n",
		handed, NSTREAMS, atomic_load(&l.ok), atomic_load(&l.failed));
	ck_assert_int_ge(handed, NSTREAMS);
	ck_assert_msg(atomic_load(&l.failed) == 0,
		      "%u new connections failed (first: %s)",
		      atomic_load(&l.failed), l.first_error);
	streams_close(&s);
}
END_TEST

/* Does balancer i (0-based) hold VIP2 now? */
static bool
holds_vip2(int i)
{
	char ns[32];
	const char *argv[] = { "ip", "-n", ns, "-4", "addr", "show", "eth1",
			       NULL };
	struct h_run *r = calloc(1, sizeof(*r));
	bool has;

	ck_assert_ptr_nonnull(r);
	snprintf(ns, sizeof(ns), PREFIX "lb%d", i + 1);
	has = run(argv, 5000, r) == 0 && strstr(r->out, VIP2 "/32") != NULL;
	free(r);
	return has;
}

/* Wait until only balancer i holds VIP2; ms it took. */
static uint64_t
wait_master(int i, int timeout_ms)
{
	uint64_t t0 = h_now_ms();

	while (!holds_vip2(i) || holds_vip2(1 - i)) {
		ck_assert_msg(h_now_ms() - t0 < (uint64_t)timeout_ms,
			      "balancer %d is not the only VRRP master after "
			      "%d ms",
			      i + 1, timeout_ms);
		h_sleep_ms(20);
	}
	return h_now_ms() - t0;
}

/* Since t0: ms until new connections landed on instance i only. */
static uint64_t
moved_to(struct load *l, int i, uint64_t t0, int timeout_ms)
{
	unsigned before = atomic_load(&l->on[i]);

	for (;;) {
		uint64_t now = h_now_ms();

		if (atomic_load(&l->on[i]) > before + 5 &&
		    atomic_load(&l->last_on[1 - i]) < now - 200)
			return atomic_load(&l->last_on[1 - i]) > t0 ?
				       atomic_load(&l->last_on[1 - i]) - t0 :
				       0;
		ck_assert_msg(now - t0 < (uint64_t)timeout_ms,
			      "new connections did not move to instance %d",
			      i + 1);
		h_sleep_ms(20);
	}
}

/*
 * The small-site alternative: keepalived VRRP, active/backup, on
 * balancers 1 and 2, each with vip-hook.sh --file feeding its track
 * file.  Withdrawing the master hands the VIP to the backup; so does a
 * kill -9 of the master's ringlb.  Both are measured: how long until new
 * connections land on the other one, how many failed, and the streams
 * the old master had (all lost: the address moved).
 */
START_TEST(vrrp_active_backup)
{
	const char *argv[] = { "tools/cluster/cluster.sh", "vrrp", dir, NULL };
	struct streams s;
	struct load l;
	struct h_run *r;
	int lost[NLB] = { 0 }, on;
	pid_t vh[2];
	uint64_t t0, t_withdraw, t_kill, took;

	h_need("/usr/sbin/keepalived", "keepalived");
	cluster_up();
	r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(run(argv, 30000, r) == 0, "cluster.sh vrrp: %s%s",
		      r->out, r->err);
	free(r);
	for (int i = 0; i < 2; i++)
		vh[i] = hook_spawn(i, true);
	fprintf(stderr, "vrrp: balancer 1 master after %llu ms\n",
		(unsigned long long)wait_master(0, 10000));
	to_host = VIP2;
	to_port = VPORT2;
	ns_enter("c");
	streams_open(&s, 2000);
	ck_assert_int_eq(streams_round(&s, lost), 0);
	on = streams_on(&s, 0);
	ck_assert_int_eq(on, NSTREAMS);
	load_start(&l, 3000);

	/* Withdraw the master: the backup takes the VIP. */
	t0 = h_now_ms();
	ctl(0, "withdraw");
	wait_master(1, 5000);
	t_withdraw = moved_to(&l, 1, t0, 5000);
	streams_round(&s, lost);
	fprintf(stderr, "vrrp: withdraw of the master: new connections on "
		"the backup after %llu ms, %u failed meanwhile; %d of its %d "
		"streams lost (the address moved)\n",
		(unsigned long long)t_withdraw, atomic_load(&l.failed),
		lost[0], on);
	ck_assert_msg(t_withdraw < 2000, "failover took %llu ms",
		      (unsigned long long)t_withdraw);
	streams_close(&s);

	/* Back to balancer 1 (preferred), then kill -9 its ringlb. */
	t0 = h_now_ms();
	ctl(0, "rejoin");
	wait_master(0, 5000);
	fprintf(stderr, "vrrp: rejoin: new connections back on balancer 1 "
		"after %llu ms\n",
		(unsigned long long)moved_to(&l, 0, t0, 5000));
	{
		unsigned failed0 = atomic_load(&l.failed);

		t0 = h_now_ms();
		kill(lb[0].pid, SIGKILL);
		took = wait_master(1, 5000);
		moved_to(&l, 1, t0, 5000);
		load_stop(&l);
		/* The last connection that failed began this long after. */
		t_kill = atomic_load(&l.last_fail) > t0 ?
				 atomic_load(&l.last_fail) - t0 :
				 0;
		fprintf(stderr, "vrrp: kill -9 of the master's ringlb: the "
			"backup held the VIP after %llu ms; new connections "
			"failed for %llu ms (%u failed; %u ok in all)\n",
			(unsigned long long)took, (unsigned long long)t_kill,
			atomic_load(&l.failed) - failed0,
			atomic_load(&l.ok));
	}
	ns_home();
	to_host = VIP;
	to_port = VPORT;
	ck_assert_msg(t_kill < 2000, "new connections failed for %llu ms",
		      (unsigned long long)t_kill);
	for (int i = 0; i < 2; i++)
		h_kill(vh[i]);
}
END_TEST

/*
 * What plain ECMP (no pinning) costs open streams when the set of
 * instances changes: a withdraw, then a rejoin.  Then the same rejoin
 * with pinning: nothing.  Numbers, not bounds, except pinning's 0.
 */
START_TEST(membership_changes)
{
	struct streams s;
	int lost[NLB] = { 0 }, lw, lr, lp, on[NLB];

	cluster_up();
	pin(false);
	ns_enter("c");
	streams_open(&s, 2000);
	ck_assert_int_eq(streams_round(&s, lost), 0);
	for (int i = 0; i < NLB; i++)
		on[i] = streams_on(&s, i);
	ctl(0, "withdraw");
	wait_nexthops(NLB - 1, 3000);
	lw = streams_round(&s, lost);
	fprintf(stderr, "plain ECMP, instance 1 withdrawn: %d of %d streams "
		"lost (%d of instance 1's %d, %d of the others' %d)\n",
		lw, NSTREAMS, lost[0], on[0], lost[1] + lost[2],
		on[1] + on[2]);
	streams_close(&s);

	/* Rejoin with streams open on 2 and 3 only. */
	memset(lost, 0, sizeof(lost));
	streams_open(&s, 2400);
	ck_assert_int_eq(streams_on(&s, 0), 0);
	ctl(0, "rejoin");
	wait_nexthops(NLB, 3000);
	lr = streams_round(&s, lost);
	fprintf(stderr, "plain ECMP, instance 1 rejoins: %d of %d streams "
		"lost\n",
		lr, NSTREAMS);
	streams_close(&s);

	/* The same with pinning. */
	ctl(0, "withdraw");
	wait_nexthops(NLB - 1, 3000);
	pin(true);
	memset(lost, 0, sizeof(lost));
	streams_open(&s, 2800);
	ctl(0, "rejoin");
	wait_nexthops(NLB, 3000);
	lp = streams_round(&s, lost);
	ns_home();
	fprintf(stderr, "pinned flows, instance 1 rejoins: %d of %d streams "
		"lost\n",
		lp, NSTREAMS);
	streams_close(&s);
	ck_assert_int_eq(lp, 0);
	/* Plain ECMP does move flows: if it did not, the test measured
	 * nothing. */
	ck_assert_int_gt(lw + lr, 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("cluster");
	TCase *tc = h_tcase(s, "cluster", 180, h_teardown);

	tcase_add_test(tc, spread_and_agreement);
	tcase_add_test(tc, withdraw_drain_stop);
	tcase_add_test(tc, instance_dies);
	tcase_add_test(tc, node_goes_silent);
	tcase_add_test(tc, membership_changes);
	tcase_add_test(tc, upgrade_one_at_a_time);
	tcase_add_test(tc, vrrp_active_backup);
	return h_run_suite("check_cluster", s);
}
