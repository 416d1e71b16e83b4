/*
 * main.c: command line, start-up and shutdown.  The main thread owns the
 * signals: workers and the health checker block them all.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "health.h"
#include "log.h"
#include "pool.h"
#include "worker.h"

#ifndef RINGLB_VERSION
#define RINGLB_VERSION "0.1.0"
#endif

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: ringlb [-c FILE] [-t] [-v] [-h] [-V]\n"
		"  -c FILE  configuration file (default: %s)\n"
		"  -t       check the configuration, print the verdict, exit\n"
		"  -v       debug logging (overrides log_level)\n"
		"  -h       this help\n"
		"  -V       print the version\n",
		CFG_DEFAULT_PATH);
}

static size_t
count_backends(const struct config *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->nlisteners; i++)
		n += cfg->listeners[i].nbackends;
	return n;
}

/* Wait for the workers to finish; a second signal cuts the grace short. */
static void
wait_workers(struct worker **ws, unsigned n, const sigset_t *sigs,
	     unsigned grace_ms)
{
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 50 * 1000000 };

	for (;;) {
		unsigned done = 0;
		int sig;

		for (unsigned i = 0; i < n; i++)
			done += worker_done(ws[i]) ? 1 : 0;
		if (done == n)
			return;
		sig = sigtimedwait(sigs, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			log_warn("second %s: closing open connections now",
				 sigabbrev_np(sig));
			for (unsigned i = 0; i < n; i++)
				worker_stop(ws[i], 0);
		}
	}
}

int
main(int argc, char **argv)
{
	const char *path = CFG_DEFAULT_PATH;
	struct worker **ws = NULL;
	struct runtime rt = { 0 };
	struct config *cfg = NULL;
	bool check_only = false;
	bool verbose = false;
	char err[1024];
	sigset_t sigs;
	unsigned nw = 0;
	int status = 1;
	int opt, rc;

	while ((opt = getopt(argc, argv, "c:tvhV")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ringlb %s\n", RINGLB_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ringlb: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}

	if (cfg_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		if (check_only)
			fprintf(stderr, "%s: configuration is invalid\n", path);
		return 1;
	}
	if (check_only) {
		printf("%s: configuration is valid (%zu listeners, %zu "
		       "backends, %u workers)\n",
		       path, cfg->nlisteners, count_backends(cfg),
		       cfg->workers);
		cfg_free(cfg);
		return 0;
	}
	log_set_level(verbose ? LOG_DEBUG : cfg->log_level);

	/* Block the signals before any thread starts, so all inherit it. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (worker_probe(err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto out_cfg;
	}
	rc = runtime_init(&rt, cfg);
	if (rc < 0) {
		log_error("cannot set up pools: %s", strerror(-rc));
		goto out_cfg;
	}
	ws = calloc(cfg->workers, sizeof(*ws));
	if (!ws)
		goto out_rt;
	for (nw = 0; nw < cfg->workers; nw++) {
		rc = worker_create(&rt, nw, &ws[nw], err, sizeof(err));
		if (rc < 0) {
			log_error("%s", err);
			goto out_workers;
		}
	}
	rc = health_start(&rt);
	if (rc < 0) {
		log_error("cannot start the health checker: %s", strerror(-rc));
		goto out_workers;
	}
	for (unsigned i = 0; i < nw; i++) {
		rc = worker_start(ws[i]);
		if (rc < 0) {
			log_error("worker %u: cannot set up io_uring: %s", i,
				  strerror(-rc));
			for (unsigned j = 0; j <= i; j++)
				worker_stop(ws[j], 0);
			goto out_health;
		}
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		log_info("listener %s on %s: %s over %zu backends", l->name,
			 l->addr.text, cfg_algorithm_name(l->algorithm),
			 l->nbackends);
	}
	log_info("ringlb started: %u workers, config %s", nw, path);

	for (;;) {
		int sig = sigwaitinfo(&sigs, NULL);

		if (sig == SIGHUP) {
			log_warn("SIGHUP: configuration reload is not "
				 "supported yet; ignoring");
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("%s: stopping; open connections get up to %u "
				 "ms to finish",
				 sigabbrev_np(sig), cfg->shutdown_grace_ms);
			break;
		}
	}
	for (unsigned i = 0; i < nw; i++)
		worker_stop(ws[i], cfg->shutdown_grace_ms);
	wait_workers(ws, nw, &sigs, cfg->shutdown_grace_ms);
	status = 0;

out_health:
	health_stop(&rt);
out_workers:
	for (unsigned i = 0; i < nw; i++)
		worker_destroy(ws[i]);
	free(ws);
out_rt:
	runtime_fini(&rt);
out_cfg:
	cfg_free(cfg);
	if (status == 0)
		log_info("ringlb stopped");
	return status;
}
