/*
 * pick.c: the cost of choosing a backend, per algorithm and pool size.
 *
 * Builds pools in memory the way tests/check_balancer.c does (no config
 * file, no sockets, no threads) with 10 to 10,000 backends and times
 * pool_pick() + pool_release() in a warm loop on one thread.  Each figure
 * is the median of several timed runs, each long enough that the clock's
 * own cost does not count.  Prints a Markdown table.
 *
 * Two loads: "busy", every backend holding 1-4 open connections, so
 * least-connections has no idle backend to settle for; and "half idle",
 * every other backend holding none, as in a pool with spare capacity.
 *
 * Then the cost a traffic split adds to a new connection: split_pick()
 * over 2 and 16 pools, sticky (a new client address each time) or not.
 *
 * Usage: bench-pick [REPS [MIN_MS]]   (`make bench-pick`; defaults 7, 20)
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "balancer.h"
#include "runtime.h"
#include "split.h"

struct bench_pool {
	struct cfg_pool l;
	struct cfg_listener lsn;
	struct cfg_backend *cb;
	struct config cfg;
	struct runtime rt;
};

enum bench_load {
	LOAD_BUSY,
	LOAD_HALF_IDLE,
};

static const size_t sizes[] = { 10, 100, 1000, 10000 };
static const enum cfg_algorithm algs[] = { ALG_ROUND_ROBIN, ALG_LEAST_CONN,
					   ALG_RANDOM_TWO, ALG_MAGLEV };

/*
 * A pool of n backends of weight 1 with connections held as `load` says.
 * Fewer than CFG_BACKENDS_MAX is a limit of the config parser only;
 * runtime_init() takes any number.  0 or -errno.
 */
static int
bench_pool_make(struct bench_pool *bp, enum cfg_algorithm alg, size_t n,
		enum bench_load load)
{
	struct pool *p;
	int rc;

	memset(bp, 0, sizeof(*bp));
	bp->cb = calloc(n, sizeof(*bp->cb));
	if (!bp->cb)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		snprintf(bp->cb[i].name, sizeof(bp->cb[i].name), "b%zu", i);
		bp->cb[i].weight = 1;
	}
	snprintf(bp->l.name, sizeof(bp->l.name), "bench");
	bp->l.algorithm = alg;
	bp->l.backends = bp->cb;
	bp->l.nbackends = n;
	bp->l.connect_attempts = 3;
	bp->l.health.rise = 2;
	bp->l.health.fall = 3;
	/* Maglev: a table of 100+ slots per backend even at 10,000. */
	bp->l.hash.table_size = 1000003;
	bp->cfg.pools = &bp->l;
	bp->cfg.npools = 1;
	bp->cfg.listeners = &bp->lsn;
	bp->cfg.nlisteners = 1;
	rc = runtime_init(&bp->rt, &bp->cfg, 1, NULL);
	if (rc < 0) {
		free(bp->cb);
		return rc;
	}
	p = &bp->rt.pools[0];
	for (size_t i = 0; i < n; i++) {
		unsigned held = 1 + (unsigned)(i * 7 % 4);

		if (load == LOAD_HALF_IDLE && i % 2 == 0)
			held = 0;
		atomic_store(&p->backends[i]->active, held);
	}
	return 0;
}

static void
bench_pool_drop(struct bench_pool *bp)
{
	bp->rt.cfg = NULL;	/* ours, not the runtime's */
	runtime_fini(&bp->rt);
	free(bp->cb);
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ns per pick+release over iters rounds; -1 if a pick found nothing. */
static double
bench_loop(struct pool *p, unsigned long iters)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	struct pick_ctx ctx = { .now_ms = 0 };
	double t0;

	/* A hashing algorithm sees a new client each time. */
	if (p->ops->needs_client)
		ctx.client = &sa;
	t0 = now_ns();
	for (unsigned long i = 0; i < iters; i++) {
		struct backend *b;

		memcpy(&sa.sin6_addr, &i, sizeof(i));
		b = pool_pick(p, &ctx);

		if (!b)
			return -1;
		pool_release(b);
	}
	return (now_ns() - t0) / (double)iters;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median ns per pick of reps runs, each of at least min_ms. */
static double
bench_one(enum cfg_algorithm alg, size_t n, enum bench_load load,
	  unsigned reps, double min_ms)
{
	struct bench_pool bp;
	unsigned long iters = 1000;
	double r[32], med;

	if (bench_pool_make(&bp, alg, n, load) < 0)
		return -1;
	/* Warm up, and grow the count until one run lasts min_ms. */
	for (;;) {
		double ns = bench_loop(&bp.rt.pools[0], iters);

		if (ns < 0) {
			bench_pool_drop(&bp);
			return -1;
		}
		if (ns * (double)iters >= min_ms * 1e6)
			break;
		iters *= 2;
	}
	for (unsigned i = 0; i < reps; i++)
		r[i] = bench_loop(&bp.rt.pools[0], iters);
	qsort(r, reps, sizeof(r[0]), cmp_double);
	med = reps % 2 ? r[reps / 2] : (r[reps / 2 - 1] + r[reps / 2]) / 2;
	bench_pool_drop(&bp);
	return med;
}

/* ns per split_pick() over iters clients; -1 if one found no side. */
static double
split_loop(const struct split *s, unsigned long iters)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	double t0 = now_ns();

	for (unsigned long i = 0; i < iters; i++) {
		memcpy(&sa.sin6_addr, &i, sizeof(i));
		if (!split_pick(s, &sa, 0))
			return -1;
	}
	return (now_ns() - t0) / (double)iters;
}

/* Median ns per split_pick() over n sides of weight 1..n, reps runs. */
static double
split_one(size_t n, bool sticky, unsigned reps, double min_ms)
{
	static struct split_state st;
	struct cfg_split cs = { .nsides = n, .sticky = sticky };
	struct split s = { .cfg = &cs, .st = &st, .nsides = n };
	unsigned long iters = 1000;
	double r[32];

	memset(&st, 0, sizeof(st));
	st.nsides = n;
	for (size_t i = 0; i < n; i++) {
		atomic_init(&st.n[i].weight, (unsigned)i + 1);
		s.side[i].n = &st.n[i];
		s.side[i].split = &s;
		s.side[i].index = (unsigned)i;
	}
	for (;;) {
		double ns = split_loop(&s, iters);

		if (ns < 0)
			return -1;
		if (ns * (double)iters >= min_ms * 1e6)
			break;
		iters *= 2;
	}
	for (unsigned i = 0; i < reps; i++)
		r[i] = split_loop(&s, iters);
	qsort(r, reps, sizeof(r[0]), cmp_double);
	return reps % 2 ? r[reps / 2] : (r[reps / 2 - 1] + r[reps / 2]) / 2;
}

static void
print_cpu(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) == 0) {
			const char *v = strchr(line, ':');

			if (v)
				printf("CPU:%s", v + 1);
			break;
		}
	}
	fclose(f);
}

int
main(int argc, char **argv)
{
	static const char *const load_names[] = {
		[LOAD_BUSY] = "busy", [LOAD_HALF_IDLE] = "half idle",
	};
	unsigned reps = argc > 1 ? (unsigned)atoi(argv[1]) : 7;
	double min_ms = argc > 2 ? atof(argv[2]) : 20;

	if (reps < 1 || reps > 32 || min_ms <= 0) {
		fprintf(stderr, "usage: %s [REPS (1-32) [MIN_MS]]\n", argv[0]);
		return 2;
	}
	print_cpu();
	printf("ns per pool_pick() + pool_release(), one thread, median of "
	       "%u runs of >= %.0f ms\n\n", reps, min_ms);
	printf("| algorithm | load |");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		printf(" %zu |", sizes[s]);
	printf("\n|---|---|");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		printf("---:|");
	printf("\n");
	fflush(stdout);
	for (size_t l = 0; l < 2; l++) {
		for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
			printf("| %s | %s |", cfg_algorithm_name(algs[a]),
			       load_names[l]);
			for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]);
			     s++) {
				double ns = bench_one(algs[a], sizes[s],
						      (enum bench_load)l, reps,
						      min_ms);

				if (ns < 0)
					printf(" failed |");
				else
					printf(" %.1f |", ns);
				fflush(stdout);
			}
			printf("\n");
		}
	}
	printf("\nns per split_pick() (a traffic split's share of a new "
	       "connection)\n\n| split | 2 pools | 16 pools |\n|---|---:|---:|\n");
	for (int sticky = 0; sticky < 2; sticky++) {
		printf("| %s |", sticky ? "sticky source-ip" : "in turn");
		for (size_t n = 2; n <= CFG_SPLIT_MAX; n += CFG_SPLIT_MAX - 2) {
			double ns = split_one(n, sticky, reps, min_ms);

			if (ns < 0)
				printf(" failed |");
			else
				printf(" %.1f |", ns);
			fflush(stdout);
		}
		printf("\n");
	}
	return 0;
}
