/*
 * main.c: command line, start-up and the signal loop.  The main thread owns
 * the signals (every other thread blocks them) and runs reclamation of old
 * generations between them.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "config.h"
#include "control.h"
#include "log.h"
#include "runtime.h"
#include "systemd.h"
#include "upgrade.h"
#include "version.h"
#include "worker.h"


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

	for (size_t i = 0; i < cfg->npools; i++)
		n += cfg->pools[i].nbackends;
	return n;
}

#define STATUS_EVERY_MS 10000
#define WATCHDOG_STALL_MIN_MS 500	/* a worker passes its loop every 100 */

/*
 * systemd's watchdog: WATCHDOG=1 every half interval, but only while every
 * worker is making progress, so that a stuck worker gets ringlb
 * restarted.  And a fresh STATUS= now and then.
 */
static void
systemd_tick(void)
{
	static uint64_t next_ping_ms, next_status_ms;
	uint64_t wd_ms = systemd_watchdog_usec() / 1000, now;
	char status[256];

	if (!systemd_notifying())
		return;
	now = control_now_ms();
	if (wd_ms && now >= next_ping_ms) {
		uint64_t stall = wd_ms / 2 > WATCHDOG_STALL_MIN_MS ?
					 wd_ms / 2 :
					 WATCHDOG_STALL_MIN_MS;

		if (control_workers_progress(now, stall)) {
			systemd_notify("WATCHDOG=1");
			next_ping_ms = now + wd_ms / 2;
		}
	}
	if (now >= next_status_ms) {
		control_status_line(status, sizeof(status));
		systemd_notify("STATUS=%s", status);
		next_status_ms = now + STATUS_EVERY_MS;
	}
}

/* SIGUSR2: an upgrade, on a thread of its own (the loop goes on). */
static void *
upgrade_thread(void *arg)
{
	struct upgrade_result res;
	char err[1024];

	(void)arg;
	if (upgrade_run(NULL, &res, err, sizeof(err)) < 0)
		log_error("SIGUSR2: %s", err);
	return NULL;
}

static void
upgrade_on_signal(void)
{
	pthread_attr_t a;
	pthread_t t;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, upgrade_thread, NULL) != 0)
		log_error("SIGUSR2: cannot start the upgrade: %s",
			  strerror(errno));
	pthread_attr_destroy(&a);
}

/*
 * Every 100 ms: free what old generations left; act on signals.  Returns
 * the signal that stops ringlb, or 0 once it has upgraded.
 */
static int
signal_loop(const sigset_t *sigs)
{
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 100 * 1000000 };
	char err[1024];

	for (;;) {
		int sig = sigtimedwait(sigs, NULL, &tick);

		control_reclaim();
		systemd_tick();
		if (upgrade_done())
			return 0;
		if (sig == SIGUSR2) {
			log_info("SIGUSR2: upgrading");
			upgrade_on_signal();
		} else if (sig == SIGHUP) {
			log_info("SIGHUP: reloading");
			control_reload(err, sizeof(err));
		} else if (sig == SIGTERM || sig == SIGINT) {
			return sig;
		}
	}
}

/* Wait for the workers; a second signal cuts the grace period short. */
static void
drain_loop(const sigset_t *sigs)
{
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 50 * 1000000 };

	while (!control_workers_done()) {
		int sig = sigtimedwait(sigs, NULL, &tick);

		control_reclaim();
		systemd_tick();
		if (sig == SIGTERM || sig == SIGINT) {
			log_warn("second %s: closing open connections now",
				 sigabbrev_np(sig));
			control_stop_now();
		}
	}
}

int
main(int argc, char **argv)
{
	const char *path = CFG_DEFAULT_PATH;
	struct config *cfg = NULL;
	bool check_only = false;
	bool verbose = false;
	unsigned grace;
	char err[1024];
	sigset_t sigs;
	int status = 1;
	int opt, sig;

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

	/* First, before any thread: fds passed by systemd become ours. */
	systemd_init();
	upgrade_set_argv(argc, argv);
	if (!check_only && upgrade_child_init(err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		upgrade_child_failed(err);
		return 1;
	}
	if (cfg_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		upgrade_child_failed(err);
		if (check_only)
			fprintf(stderr, "%s: configuration is invalid\n", path);
		return 1;
	}
	if (check_only) {
		printf("%s: configuration is valid (%zu listeners, %zu "
		       "pools, %zu backends, %u workers)\n",
		       path, cfg->nlisteners, cfg->npools, count_backends(cfg),
		       cfg->workers);
		cfg_free(cfg);
		return 0;
	}
	log_set_level(verbose ? LOG_DEBUG : cfg->log_level);
	log_set_format(cfg->log_format);

	/* Block the signals before any thread starts, so all inherit it. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (worker_probe(err, sizeof(err)) < 0) {
		log_error("%s", err);
		upgrade_child_failed(err);
		cfg_free(cfg);
		return 1;
	}
	if (admin_start(&cfg->admin, err, sizeof(err)) < 0) {
		log_error("%s", err);
		upgrade_child_failed(err);
		cfg_free(cfg);
		return 1;
	}
	if (control_start(cfg, path, verbose, err, sizeof(err)) < 0 ||
	    admin_run(err, sizeof(err)) < 0) {
		log_error("%s", err);
		upgrade_child_failed(err);
		goto out;
	}
	control_lock();
	{
		const struct runtime *rt = runtime_current();

		for (size_t i = 0; i < rt->nlisteners; i++) {
			const struct cfg_listener *l = rt->listeners[i].cfg;
			const struct target *t = &rt->listeners[i].to;
			const struct pool *p = t->pool;
			char routes[48] = "";

			if (l->nroutes)
				snprintf(routes, sizeof(routes),
					 ", %zu server names routed",
					 l->nroutes);
			if (p)
				log_info("listener %s on %s: pool %s, %s over "
					 "%zu backends%s",
					 l->name, l->addr.text, p->cfg->name,
					 cfg_algorithm_name(p->cfg->algorithm),
					 p->cfg->nbackends, routes);
			else if (t->split)
				log_info("listener %s on %s: split over %zu "
					 "pools%s%s", l->name, l->addr.text,
					 t->split->nsides,
					 t->split->cfg->sticky ?
						 ", sticky by source address" :
						 "",
					 routes);
			else
				log_info("listener %s on %s: no pool of its "
					 "own%s", l->name, l->addr.text, routes);
		}
		log_info("ringlb started: %u workers, config %s",
			 rt->cfg->workers, path);
	}
	control_unlock();
	/* Upgraded: the old process lets go of the sockets, then we are it. */
	if (upgrade_child() && upgrade_child_ready(err, sizeof(err)) < 0)
		log_warn("%s", err);
	control_set_serving();
	control_status_line(err, sizeof(err));
	systemd_notify("READY=1\nSTATUS=%s", err);

	sig = signal_loop(&sigs);
	control_lock();
	grace = runtime_current()->cfg->shutdown_grace_ms;
	control_unlock();
	log_info("%s: stopping; open connections get up to %u ms to finish",
		 sig ? sigabbrev_np(sig) : "upgraded", grace);
	systemd_notify("STOPPING=1\nSTATUS=stopping: open connections get "
		       "up to %u ms to finish",
		       grace);
	control_stop_begin(grace);
	drain_loop(&sigs);
	status = 0;
out:
	admin_stop();
	control_finish();
	if (status == 0)
		log_info("ringlb stopped");
	return status;
}
