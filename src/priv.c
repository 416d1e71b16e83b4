/*
 * priv.c: see priv.h.
 *
 * Order matters: the capability bounding set can only be cleared while we
 * still have CAP_SETPCAP, i.e. before setuid(); setgroups() and setgid()
 * need root, so they come before setuid() too.  Everything runs while the
 * process has one thread: capabilities are per thread, and threads started
 * later inherit the cleared sets, the new ids and no_new_privs.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cap-ng.h>

#include "config.h"
#include "log.h"
#include "priv.h"

static bool started;
static bool dropped;
static bool start_has_user;
static char start_user[CFG_NAME_MAX];
static char start_group[CFG_NAME_MAX];

static int
fail(char *err, size_t errlen, const struct config *cfg, const char *what,
     int e)
{
	snprintf(err, errlen, "cannot drop privileges to user %s group %s: "
		 "%s: %s", cfg->user, cfg->group, what, strerror(e));
	return -e;
}

/* Clear every capability set of this thread that an unprivileged one can. */
static int
caps_clear(void)
{
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_apply(CAPNG_SELECT_CAPS) < 0)
		return -EPERM;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)
		return -errno;
	return 0;
}

int
priv_drop(const struct config *cfg, char *err, size_t errlen)
{
	int rc;

	started = true;
	start_has_user = cfg->has_user;
	snprintf(start_user, sizeof(start_user), "%s", cfg->user);
	snprintf(start_group, sizeof(start_group), "%s", cfg->group);
	if (cfg->admin.enabled && (cfg->admin.mode & 0002))
		log_warn("admin.mode %04o lets every local user write to the "
			 "admin socket %s and so control ringlb",
			 cfg->admin.mode, cfg->admin.socket);
	if (!cfg->has_user) {
		if (geteuid() == 0)
			log_warn("running as root with every capability: set "
				 "\"user\" (and \"group\") in the config to "
				 "drop them once the ports are bound");
		return 0;
	}
	if (geteuid() != 0 && (getuid() != cfg->uid || getgid() != cfg->gid))
		return fail(err, errlen, cfg, "not started as root", EPERM);
	/* Before setuid(): clearing the bounding set needs CAP_SETPCAP. */
	if (capng_get_caps_process() == 0 &&
	    capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP)) {
		capng_clear(CAPNG_SELECT_BOUNDS);
		if (capng_apply(CAPNG_SELECT_BOUNDS) < 0)
			return fail(err, errlen, cfg,
				    "clearing the capability bounding set",
				    EPERM);
	}
	if (setgroups(1, &cfg->gid) < 0 && geteuid() == 0)
		return fail(err, errlen, cfg, "setgroups", errno);
	if (setgid(cfg->gid) < 0)
		return fail(err, errlen, cfg, "setgid", errno);
	if (setuid(cfg->uid) < 0)
		return fail(err, errlen, cfg, "setuid", errno);
	rc = caps_clear();
	if (rc < 0)
		return fail(err, errlen, cfg, "clearing capabilities", -rc);
	/* Nothing we might exec later can gain privileges back. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errlen, cfg, "PR_SET_NO_NEW_PRIVS", errno);
	/* Trust, but verify: root must be out of reach now. */
	if (cfg->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return fail(err, errlen, cfg, "setuid(0) still works", EPERM);
	if (capng_get_caps_process() < 0 ||
	    capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE)
		return fail(err, errlen, cfg, "capabilities left", EPERM);
	dropped = true;
	log_info("running as user %s (%u) group %s (%u) with no capabilities",
		 cfg->user, (unsigned)cfg->uid, cfg->group,
		 (unsigned)cfg->gid);
	return 0;
}

const char *
priv_user(void)
{
	return dropped ? start_user : NULL;
}

void
priv_reload_check(const struct config *cfg)
{
	if (!started)
		return;
	if (cfg->has_user != start_has_user ||
	    (cfg->has_user && (strcmp(cfg->user, start_user) != 0 ||
			       strcmp(cfg->group, start_group) != 0)))
		log_warn("reload: user and group take effect at restart "
			 "(running as %s)",
			 dropped ? start_user : "the starting user");
}
