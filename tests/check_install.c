/*
 * check_install.c: ringlb as a system service, as the Makefile installs
 * it: `make install` and `make uninstall` (PREFIX, DESTDIR, SYSCONFDIR,
 * the config kept), the manual pages (mandoc lint, and the README text
 * they are made of), the systemd units (systemd-analyze verify and
 * security) and `make deb` with dpkg -i, -r and -P on this machine.
 *
 * Everything but the package test installs into a DESTDIR under /tmp.
 * The package test needs root and leaves the machine as it found it: it
 * skips where a ringlb package or program is already installed, and a
 * guard process purges the package (and a user the test made) once the
 * test process is gone, however it ended.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"

/* The source tree (make test runs the suites there) and the build dir. */
static char src_dir[PATH_MAX];
static char build_dir[PATH_MAX];

/* snprintf into an array, which must hold it all. */
#define PATHF(buf, ...) \
	ck_assert_int_lt(snprintf((buf), sizeof(buf), __VA_ARGS__), \
			 (int)sizeof(buf))

/* ---- running programs ---- */

/* argv as one line, for messages. */
static const char *
argv_str(const char *const argv[])
{
	static char buf[1024];
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; argv[i] != NULL && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s",
				      i ? " " : "", argv[i]);
	return buf;
}

/* Run argv; its result (free() it).  Not started or timed out: a failure. */
static struct h_run *
run(const char *const argv[], int timeout_ms)
{
	struct h_run *r = calloc(1, sizeof(*r));
	int rc;

	ck_assert_ptr_nonnull(r);
	rc = h_run(argv, timeout_ms, r);
	ck_assert_msg(rc == 0, "%s: cannot run: %s", argv_str(argv),
		      strerror(-rc));
	ck_assert_msg(!r->timed_out, "%s: timed out", argv_str(argv));
	return r;
}

static bool
exited_ok(const struct h_run *r)
{
	return WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

/* Run argv; it must exit 0. */
static struct h_run *
run_ok(const char *const argv[], int timeout_ms)
{
	struct h_run *r = run(argv, timeout_ms);

	ck_assert_msg(exited_ok(r), "%s: status 0x%x\n%s%s", argv_str(argv),
		      r->status, r->out, r->err);
	return r;
}

/*
 * make TARGET [VAR=VALUE ...] (NULL-terminated) in the source tree, with
 * this suite's BUILD and SANITIZE so nothing is rebuilt; it must succeed.
 */
static struct h_run *
make(const char *target, ...)
{
	const char *argv[16];
	char b[PATH_MAX + 8], s[128];
	const char *san = getenv("RINGLB_SANITIZE");
	int n = 0;
	va_list ap;

	snprintf(b, sizeof(b), "BUILD=%s", build_dir);
	snprintf(s, sizeof(s), "SANITIZE=%s", san ? san : "");
	argv[n++] = "make";
	argv[n++] = "--no-print-directory";
	argv[n++] = "-C";
	argv[n++] = src_dir;
	argv[n++] = b;
	argv[n++] = s;
	argv[n++] = target;
	va_start(ap, target);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
		ck_assert_int_lt(n, 15);
		argv[n++] = a;
	}
	va_end(ap);
	argv[n] = NULL;
	return run_ok(argv, 300000);
}

/* Is prog on PATH (or in an sbin, for root's tools)? */
static bool
have(const char *prog)
{
	const char *path = getenv("PATH");
	char dirs[4096], file[PATH_MAX];

	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin", path ? path : "");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof(file), "%s/%s", d, prog);
		if (access(file, X_OK) == 0)
			return true;
	}
	return false;
}

/* Skip unless prog is here (tools/deps.sh installs them all). */
static void
need(const char *prog)
{
	if (!have(prog))
		h_skip("no %s here (tools/deps.sh installs it)", prog);
}

/* ---- files ---- */

/* The whole file, NUL-terminated, or NULL (errno set); free() it. */
static char *
slurp_len(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (cap - len < 65536) {
			char *nb;

			cap = cap * 2 + 65536;
			nb = realloc(buf, cap + 1);
			ck_assert_ptr_nonnull(nb);
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	(void)fclose(f);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

static char *
slurp(const char *path)
{
	return slurp_len(path, NULL);
}

static char *
slurp_ok(const char *path)
{
	char *s = slurp(path);

	ck_assert_msg(s != NULL, "%s: %s", path, strerror(errno));
	return s;
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Byte for byte the same (binaries too). */
static bool
same_file(const char *a, const char *b)
{
	size_t xl, yl;
	char *x = slurp_len(a, &xl), *y = slurp_len(b, &yl);
	bool same;

	ck_assert_msg(x != NULL && y != NULL, "%s, %s: %s", a, b,
		      strerror(errno));
	same = xl == yl && memcmp(x, y, xl) == 0;

	free(x);
	free(y);
	return same;
}

/* Every entry under a dir that is not a directory, "\n"-separated. */
static char walk_out[65536];
static size_t walk_len, walk_base;

static int
walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag != FTW_D && flag != FTW_DP && walk_len < sizeof(walk_out))
		walk_len += (size_t)snprintf(walk_out + walk_len,
					     sizeof(walk_out) - walk_len,
					     "%s\n", path + walk_base);
	return 0;
}

static const char *
walk(const char *dir)
{
	walk_len = 0;
	walk_out[0] = '\0';
	walk_base = strlen(dir) + 1;
	nftw(dir, walk_one, 16, FTW_PHYS);
	return walk_out;
}

/* A fresh DESTDIR: a dir under a tracked temp dir. */
static void
destdir(char *buf, size_t cap, const char *name)
{
	static char tmp[128];

	if (tmp[0] == '\0') {
		ck_assert_int_eq(h_tempdir(tmp, sizeof(tmp)), 0);
		/* The user ringlb must reach the files under it (test_deb). */
		ck_assert_int_eq(chmod(tmp, 0755), 0);
	}
	snprintf(buf, cap, "%s/%s", tmp, name);
}

/* make install DESTDIR=dest [VAR=VALUE]; the output. */
static struct h_run *
install_to(const char *dest, const char *var)
{
	char d[PATH_MAX + 16];

	snprintf(d, sizeof(d), "DESTDIR=%s", dest);
	return make("install", d, var, (const char *)NULL);
}

static struct h_run *
uninstall_from(const char *dest)
{
	char d[PATH_MAX + 16];

	snprintf(d, sizeof(d), "DESTDIR=%s", dest);
	return make("uninstall", d, (const char *)NULL);
}

/* ---- make install / uninstall ---- */

/*
 * Files and modes of `make install`, the config at /etc whatever PREFIX
 * is, the units naming the programs where PREFIX puts them.
 */
START_TEST(test_install_layout)
{
	static const struct {
		const char *path;
		mode_t mode;
	} want[] = {
		{ "usr/local/sbin/ringlb", 0755 },
		{ "usr/local/bin/ringlbctl", 0755 },
		{ "usr/local/share/man/man8/ringlb.8", 0644 },
		{ "usr/local/share/man/man8/ringlbctl.8", 0644 },
		{ "usr/local/share/man/man5/ringlb.json.5", 0644 },
		{ "usr/local/lib/systemd/system/ringlb.service", 0644 },
		{ "usr/local/lib/systemd/system/ringlb.socket", 0644 },
		{ "usr/local/share/ringlb/ringlb.json", 0644 },
		{ "usr/local/share/ringlb/installed-config.sha256", 0644 },
		{ "usr/local/share/doc/ringlb/README.md", 0644 },
		{ "usr/local/share/doc/ringlb/examples/service.json", 0644 },
		{ "etc/ringlb/ringlb.json", 0644 },
	};
	char dest[PATH_MAX], p[PATH_MAX * 2], q[PATH_MAX * 2];
	struct h_run *r;
	char *unit, *list, *line, *save = NULL;
	struct stat st;

	h_label(tcase_name());
	destdir(dest, sizeof(dest), "layout");
	r = install_to(dest, NULL);
	PATHF(p, "install: %s/etc/ringlb/ringlb.json from", dest);
	ck_assert_msg(strstr(r->out, p), "no '%s' in:\n%s", p, r->out);
	free(r);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		PATHF(p, "%s/%s", dest, want[i].path);
		ck_assert_msg(lstat(p, &st) == 0, "%s: %s", p, strerror(errno));
		ck_assert_msg(S_ISREG(st.st_mode) &&
				      (st.st_mode & 07777) == want[i].mode,
			      "%s: mode %o, want a file of %o", p,
			      (unsigned)st.st_mode, (unsigned)want[i].mode);
	}
	/* Nothing else, but the other examples. */
	list = strdup(walk(dest));
	for (line = strtok_r(list, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		bool known = strncmp(line, "usr/local/share/doc/ringlb/examples/",
				     36) == 0;

		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			known = known || strcmp(line, want[i].path) == 0;
		ck_assert_msg(known, "make install wrote %s", line);
	}
	free(list);
	PATHF(p, "%s/usr/local/sbin/ringlb", dest);
	ck_assert(same_file(p, h_lb_bin()));
	PATHF(p, "%s/etc/ringlb/ringlb.json", dest);
	PATHF(q, "%s/config/examples/service.json", src_dir);
	ck_assert(same_file(p, q));

	PATHF(p, "%s/usr/local/lib/systemd/system/ringlb.service", dest);
	unit = slurp_ok(p);
	ck_assert(strstr(unit, "\nExecStart=/usr/local/sbin/ringlb -c "
			       "/etc/ringlb/ringlb.json\n"));
	ck_assert(strstr(unit, "\nExecReload=/usr/local/bin/ringlbctl "));
	free(unit);

	/* PREFIX=/usr: the programs under /usr, the config still in /etc. */
	destdir(dest, sizeof(dest), "usr");
	free(install_to(dest, "PREFIX=/usr"));
	PATHF(p, "%s/usr/sbin/ringlb", dest);
	ck_assert_msg(exists(p), "%s", p);
	PATHF(p, "%s/etc/ringlb/ringlb.json", dest);
	ck_assert_msg(exists(p), "%s", p);
	PATHF(p, "%s/usr/etc", dest);
	ck_assert_msg(!exists(p), "%s", p);
	PATHF(p, "%s/usr/local", dest);
	ck_assert_msg(!exists(p), "%s", p);
	PATHF(p, "%s/usr/lib/systemd/system/ringlb.service", dest);
	unit = slurp_ok(p);
	ck_assert(strstr(unit, "\nExecStartPre=/usr/sbin/ringlb -t -c "
			       "/etc/ringlb/ringlb.json\n"));
	ck_assert(strstr(unit, "\nExecStart=/usr/sbin/ringlb -c "
			       "/etc/ringlb/ringlb.json\n"));
	ck_assert(strstr(unit, "\nExecReload=/usr/bin/ringlbctl "));
	ck_assert_msg(strstr(unit, "/usr/local/") == NULL, "%s", unit);
	free(unit);

	/* SYSCONFDIR moves the config, and the unit follows. */
	destdir(dest, sizeof(dest), "sysconf");
	free(install_to(dest, "SYSCONFDIR=/opt/etc"));
	PATHF(p, "%s/opt/etc/ringlb/ringlb.json", dest);
	ck_assert_msg(exists(p), "%s", p);
	PATHF(p, "%s/etc", dest);
	ck_assert_msg(!exists(p), "%s", p);
	PATHF(p, "%s/usr/local/lib/systemd/system/ringlb.service", dest);
	unit = slurp_ok(p);
	ck_assert(strstr(unit, "\nExecStart=/usr/local/sbin/ringlb -c "
			       "/opt/etc/ringlb/ringlb.json\n"));
	free(unit);
}
END_TEST

/*
 * A second install keeps an edited config; uninstall removes everything
 * else, and the config only if install wrote it and nobody changed it.
 */
START_TEST(test_install_keeps_config)
{
	static const char edited[] = "{ \"listeners\": [] }\n";
	char dest[PATH_MAX], conf[PATH_MAX * 2], p[PATH_MAX * 2];
	struct h_run *r;
	char *s;

	h_label(tcase_name());
	destdir(dest, sizeof(dest), "keep");
	PATHF(conf, "%s/etc/ringlb/ringlb.json", dest);
	free(install_to(dest, NULL));
	ck_assert_int_eq(h_write_file(conf, edited), 0);
	r = install_to(dest, NULL);
	PATHF(p, "install: keeping %s", conf);
	ck_assert_msg(strstr(r->out, p), "no '%s' in:\n%s", p, r->out);
	free(r);
	s = slurp_ok(conf);
	ck_assert_str_eq(s, edited);
	free(s);
	r = uninstall_from(dest);
	ck_assert_msg(strstr(r->out, "changed since install"), "%s", r->out);
	free(r);
	ck_assert_str_eq(walk(dest), "etc/ringlb/ringlb.json\n");
	PATHF(p, "%s/usr/local/share/ringlb", dest);
	ck_assert_msg(!exists(p), "%s", p);
	PATHF(p, "%s/usr/local/share/doc/ringlb", dest);
	ck_assert_msg(!exists(p), "%s", p);

	/* Unchanged since install: nothing at all is left. */
	destdir(dest, sizeof(dest), "clean");
	PATHF(conf, "%s/etc/ringlb/ringlb.json", dest);
	free(install_to(dest, NULL));
	r = uninstall_from(dest);
	PATHF(p, "uninstall: removing %s", conf);
	ck_assert_msg(strstr(r->out, p), "no '%s' in:\n%s", p, r->out);
	free(r);
	ck_assert_str_eq(walk(dest), "");
	PATHF(p, "%s/etc/ringlb", dest);
	ck_assert_msg(!exists(p), "%s", p);

	/* There before the install, even the example itself: it stays. */
	destdir(dest, sizeof(dest), "before");
	PATHF(conf, "%s/etc/ringlb/ringlb.json", dest);
	ck_assert_int_eq(mkdir(dest, 0755), 0);
	PATHF(p, "%s/etc", dest);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	PATHF(p, "%s/etc/ringlb", dest);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	PATHF(p, "%s/config/examples/service.json", src_dir);
	s = slurp_ok(p);
	ck_assert_int_eq(h_write_file(conf, s), 0);
	r = install_to(dest, NULL);
	ck_assert_msg(strstr(r->out, "install: keeping"), "%s", r->out);
	free(r);
	free(uninstall_from(dest));
	ck_assert_str_eq(walk(dest), "etc/ringlb/ringlb.json\n");
	free(s);
}
END_TEST

/* ---- the manual pages ---- */

#define MAN_PAGES 3
static const char *const man_page[MAN_PAGES] = {
	"man8/ringlb.8", "man8/ringlbctl.8", "man5/ringlb.json.5"
};

/* Install into a DESTDIR of its own; its MANDIR in mandir. */
static void
install_man(const char *name, char *mandir, size_t cap)
{
	char dest[PATH_MAX];

	destdir(dest, sizeof(dest), name);
	free(install_to(dest, NULL));
	ck_assert_int_lt(snprintf(mandir, cap, "%s/usr/local/share/man",
				  dest), (int)cap);
}

/*
 * mandoc -T lint -W style finds nothing in any page.  With the pages'
 * directory indexed (makewhatis) and on MANPATH, mandoc also checks that
 * every .Xr names a page that exists.
 */
START_TEST(test_man_lint)
{
	char mandir[PATH_MAX], page[PATH_MAX * 2];

	need("mandoc");
	need("makewhatis");
	h_label(tcase_name());
	install_man("lint", mandir, sizeof(mandir));
	{
		const char *argv[] = { "makewhatis", mandir, NULL };

		free(run_ok(argv, 30000));
	}
	setenv("MANPATH", mandir, 1);
	for (int i = 0; i < MAN_PAGES; i++) {
		const char *argv[] = { "mandoc", "-T", "lint", "-W", "style",
				       page, NULL };
		struct h_run *r;

		snprintf(page, sizeof(page), "%s/%s", mandir, man_page[i]);
		r = run(argv, 30000);
		ck_assert_msg(exited_ok(r) && r->out[0] == '\0' &&
				      r->err[0] == '\0',
			      "mandoc -T lint %s:\n%s%s", page, r->out, r->err);
		free(r);
	}
}
END_TEST

/* Words: the runs of ASCII letters, digits and _ in s. */
struct words {
	char **w;
	size_t n, cap;
};

static void
words_add(struct words *ws, const char *s, size_t len)
{
	if (ws->n == ws->cap) {
		char **nw;

		ws->cap = ws->cap * 2 + 1024;
		nw = realloc(ws->w, ws->cap * sizeof(*ws->w));
		ck_assert_ptr_nonnull(nw);
		ws->w = nw;
	}
	ws->w[ws->n] = strndup(s, len);
	ck_assert_ptr_nonnull(ws->w[ws->n]);
	ws->n++;
}

static void
words_of(struct words *ws, const char *s)
{
	while (*s) {
		size_t n = 0;

		while (isalnum((unsigned char)s[n]) || s[n] == '_')
			n++;
		if (n > 0) {
			words_add(ws, s, n);
			s += n;
		} else {
			s++;
		}
	}
}

static void
words_free(struct words *ws)
{
	for (size_t i = 0; i < ws->n; i++)
		free(ws->w[i]);
	free(ws->w);
	memset(ws, 0, sizeof(*ws));
}

/*
 * Are the words of a README line in the page, in that order, with at most
 * GAP words between two of them (in any case: a link may show as its
 * section's title)?  The page adds a few: "Type:" before a
 * table cell, "in ringlb.json(5)" after a link to another page.
 */
#define GAP 4

static bool
words_in(const struct words *page, const struct words *line)
{
	if (line->n == 0)
		return true;
	for (size_t i = 0; i < page->n; i++) {
		size_t at = i, k = 1;

		if (strcasecmp(page->w[i], line->w[0]) != 0)
			continue;
		while (k < line->n) {
			size_t j = at + 1;

			while (j < page->n && j <= at + 1 + GAP &&
			       strcasecmp(page->w[j], line->w[k]) != 0)
				j++;
			if (j >= page->n || j > at + 1 + GAP)
				break;
			at = j;
			k++;
		}
		if (k == line->n)
			return true;
	}
	return false;
}

/*
 * The page as a reader sees it: mandoc's text, overstriking undone.  It
 * goes through a file: h_run() keeps 64 KiB of output, and ringlb.json(5)
 * is longer.
 */
static void
page_words(const char *page, struct words *ws)
{
	char txt[PATH_MAX * 2 + 8], *text, *o;
	const char *argv[] = { "sh", "-c", "mandoc -T utf8 \"$1\" > \"$2\"",
			       "sh", page, txt, NULL };

	snprintf(txt, sizeof(txt), "%s.txt", page);
	free(run_ok(argv, 30000));
	text = slurp_ok(txt);
	/* Bold is c\bc, underline _\bc: drop each \b and the byte before. */
	o = text;
	for (const char *s = text; *s; s++) {
		if (*s == '\b') {
			if (o > text)
				o--;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	words_of(ws, text);
	free(text);
	unlink(txt);
}

/* The README, as lines. */
static char **readme;
static size_t readme_n;

static void
load_readme(void)
{
	char path[PATH_MAX * 2], *text;

	if (readme != NULL)
		return;
	PATHF(path, "%s/README.md", src_dir);
	text = slurp_ok(path);
	readme = calloc(strlen(text) / 2 + 2, sizeof(*readme));
	ck_assert_ptr_nonnull(readme);
	/* strtok would drop empty lines; they end paragraphs, keep them. */
	for (char *l = text, *nl; l != NULL; l = nl) {
		nl = strchr(l, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		readme[readme_n++] = l;
		if (nl != NULL && *nl == '\0')
			break;
	}
}

/* The level of a heading line (0: not one). */
static int
heading_level(const char *l)
{
	int n = 0;

	while (l[n] == '#')
		n++;
	return n > 0 && l[n] == ' ' ? n : 0;
}

/*
 * The README lines [*from, *to) of the section whose heading is title: up
 * to the next heading of its level or above, or with intro_only up to the
 * next heading.  Headings in code blocks do not count.
 */
static void
section(const char *title, bool intro_only, size_t *from, size_t *to)
{
	bool fence = false;
	int level = 0;

	load_readme();
	*from = *to = 0;
	for (size_t i = 0; i < readme_n; i++) {
		int lv;

		if (strncmp(readme[i], "```", 3) == 0)
			fence = !fence;
		lv = fence ? 0 : heading_level(readme[i]);
		if (lv == 0)
			continue;
		if (level > 0 && (intro_only || lv <= level)) {
			*to = i;
			return;
		}
		if (level == 0 && strcmp(readme[i] + lv + 1, title) == 0) {
			level = lv;
			*from = i + 1;
		}
	}
	ck_assert_msg(level > 0, "README.md: no section \"%s\"", title);
	*to = readme_n;
}

/* The words of a README line as the page shows them: no link targets. */
static void
line_words(const char *line, struct words *ws)
{
	char *s = strdup(line), *t;

	ck_assert_ptr_nonnull(s);
	while ((t = strstr(s, "](")) != NULL) {
		char *end = strchr(t, ')');

		if (end == NULL)
			break;
		memmove(t + 1, end + 1, strlen(end + 1) + 1);
	}
	words_of(ws, s);
	free(s);
}

/* Does a README line show as text (not a fence, a table's head or rule)? */
static bool
shown(size_t i)
{
	const char *l = readme[i];

	if (strncmp(l, "```", 3) == 0)
		return false;
	if (l[0] == '|' && strspn(l, "|-: ") == strlen(l))
		return false;
	/* The head of a table: the list tags its rows instead. */
	if (l[0] == '|' && i + 1 < readme_n && readme[i + 1][0] == '|' &&
	    strspn(readme[i + 1], "|-: ") == strlen(readme[i + 1]))
		return false;
	return true;
}

/* The arguments of a template directive: words, or "quoted words". */
static int
directive_args(const char *s, char args[][128], int max)
{
	int n = 0;

	while (*s && n < max) {
		size_t k = 0;

		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		if (*s == '"') {
			for (s++; *s && *s != '"' && k < 127; s++)
				args[n][k++] = *s;
			if (*s == '"')
				s++;
		} else {
			while (*s && *s != ' ' && k < 127)
				args[n][k++] = *s++;
		}
		args[n++][k] = '\0';
	}
	return n;
}

/*
 * Every line of every README section that a page's template includes
 * shows in the installed page, word for word.  A section the generator
 * dropped, or text it mangled, fails here with the README line.
 */
static void
check_page_text(const char *mandir, int i)
{
	char tmpl[PATH_MAX * 2], page[PATH_MAX * 2], *t, *save = NULL;
	const char *base = strchr(man_page[i], '/') + 1;
	struct words pw = { 0 };
	int sections = 0;

	PATHF(tmpl, "%s/man/%s.in", src_dir, base);
	PATHF(page, "%s/%s", mandir, man_page[i]);
	page_words(page, &pw);
	t = slurp_ok(tmpl);
	for (char *l = strtok_r(t, "\n", &save); l != NULL;
	     l = strtok_r(NULL, "\n", &save)) {
		char args[8][128];
		bool intro = false;
		size_t from, to;
		int n;

		if (strncmp(l, ".\\\" @include ", 13) != 0)
			continue;
		n = directive_args(l + 13, args, 8);
		ck_assert_int_ge(n, 1);
		for (int k = 1; k < n; k++)
			intro = intro || strcmp(args[k], "-intro") == 0;
		section(args[0], intro, &from, &to);
		sections++;
		for (size_t j = from; j < to; j++) {
			struct words lw = { 0 };

			if (!shown(j))
				continue;
			line_words(readme[j], &lw);
			ck_assert_msg(words_in(&pw, &lw),
				      "%s lacks README.md line %zu (section "
				      "\"%s\"):\n%s", page, j + 1, args[0],
				      readme[j]);
			words_free(&lw);
		}
	}
	ck_assert_msg(sections > 0, "%s includes no README section", tmpl);
	free(t);
	words_free(&pw);
}

/* Is there a line in text that starts with `start` and has word w? */
static bool
macro_has(const char *text, const char *start, const char *w)
{
	size_t sl = strlen(start), wl = strlen(w);

	for (const char *l = text; l != NULL && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);

		if (len >= sl && strncmp(l, start, sl) == 0) {
			for (const char *p = l; p + wl <= l + len; p++)
				if (strncmp(p, w, wl) == 0 &&
				    (p == l || p[-1] == ' ') &&
				    (p + wl == l + len || p[wl] == ' '))
					return true;
		}
		l = nl ? nl + 1 : NULL;
	}
	return false;
}

/*
 * The pages agree with the README: every config key of the reference's
 * tables is an entry of ringlb.json(5), every ringlbctl verb and option
 * is in ringlbctl(8)'s synopsis, every ringlb option in ringlb(8)'s list;
 * and the text of every section they take is there (check_page_text()).
 */
START_TEST(test_man_readme)
{
	char mandir[PATH_MAX], path[PATH_MAX * 2];
	char *json5, *ctl8, *lb8;
	size_t from, to;
	int keys = 0, verbs = 0, opts = 0;

	need("mandoc");
	h_label(tcase_name());
	install_man("readme", mandir, sizeof(mandir));
	for (int i = 0; i < MAN_PAGES; i++)
		check_page_text(mandir, i);

	PATHF(path, "%s/man5/ringlb.json.5", mandir);
	json5 = slurp_ok(path);
	PATHF(path, "%s/man8/ringlbctl.8", mandir);
	ctl8 = slurp_ok(path);
	PATHF(path, "%s/man8/ringlb.8", mandir);
	lb8 = slurp_ok(path);

	/* Keys: the `code` in the first cell of each table row. */
	section("Configuration reference", false, &from, &to);
	for (size_t j = from; j < to; j++) {
		const char *l = readme[j], *end;

		if (strncmp(l, "| `", 3) != 0)
			continue;
		end = strchr(l + 1, '|');
		ck_assert_ptr_nonnull(end);
		for (const char *p = strchr(l, '`'); p != NULL && p < end;
		     p = strchr(p, '`')) {
			const char *q = strchr(p + 1, '`');
			char key[128], w[160];

			ck_assert_ptr_nonnull(q);
			snprintf(key, sizeof(key), "%.*s", (int)(q - p - 1),
				 p + 1);
			snprintf(w, sizeof(w), "%s", key);
			ck_assert_msg(macro_has(json5, ".It ", w) ||
					      macro_has(json5, ".It Ic ", w),
				      "ringlb.json(5) has no entry for %s "
				      "(README.md line %zu)", key, j + 1);
			keys++;
			p = q + 1;
		}
	}
	ck_assert_int_ge(keys, 70);

	/* ringlbctl: "ringlbctl [-s SOCKET] VERB ARGS [--opt ...]". */
	section("ringlbctl", false, &from, &to);
	for (size_t j = from; j < to; j++) {
		char line[512], *save = NULL, *tok;
		bool verb = false;

		if (strncmp(readme[j], "ringlbctl [", 11) != 0)
			continue;
		snprintf(line, sizeof(line), "%s", readme[j]);
		for (tok = strtok_r(line, " []|", &save); tok != NULL;
		     tok = strtok_r(NULL, " []|", &save)) {
			char w[128];

			if (tok[0] == '-') {
				snprintf(w, sizeof(w), "%s", tok + 1);
				/* Optional ([--x]) or required (--x). */
				ck_assert_msg(macro_has(ctl8, ".Op Fl ", w) ||
						      macro_has(ctl8, ".Op ", w) ||
						      macro_has(ctl8, ".Fl ", w),
					      "ringlbctl(8): no option %s", tok);
				opts++;
			} else if (!verb && islower((unsigned char)tok[0]) &&
				   strcmp(tok, "ringlbctl") != 0) {
				ck_assert_msg(macro_has(ctl8, ".Cm ", tok),
					      "ringlbctl(8): no verb %s", tok);
				verb = true;
				verbs++;
			}
		}
	}
	ck_assert_int_ge(verbs, 7);
	ck_assert_int_ge(opts, 12);

	/* ringlb: the option lines of the usage block, "  -c FILE  ...". */
	section("Command line", false, &from, &to);
	opts = 0;
	for (size_t j = from; j < to; j++) {
		char w[8];

		if (strncmp(readme[j], "  -", 3) != 0)
			continue;
		snprintf(w, sizeof(w), "%c", readme[j][3]);
		ck_assert_msg(macro_has(lb8, ".It Fl ", w),
			      "ringlb(8): no entry for -%s", w);
		ck_assert_msg(macro_has(lb8, ".Op Fl ", w),
			      "ringlb(8): -%s not in the synopsis", w);
		opts++;
	}
	ck_assert_int_ge(opts, 5);
	free(json5);
	free(ctl8);
	free(lb8);
}
END_TEST

/* ---- the systemd units ---- */

/* The value of the first "key=" line of a unit, or NULL. */
static char *
unit_get(const char *unit, const char *key)
{
	static char v[512];
	size_t kl = strlen(key);

	for (const char *l = unit; l != NULL && *l;) {
		const char *nl = strchr(l, '\n');

		if (strncmp(l, key, kl) == 0 && l[kl] == '=') {
			size_t len = nl ? (size_t)(nl - l - (long)kl - 1)
					: strlen(l + kl + 1);

			snprintf(v, sizeof(v), "%.*s", (int)len, l + kl + 1);
			return v;
		}
		l = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static void
assert_unit(const char *unit, const char *key, const char *want)
{
	const char *v = unit_get(unit, key);

	ck_assert_msg(v != NULL && strcmp(v, want) == 0,
		      "unit: %s=%s, want %s", key, v ? v : "(none)", want);
}

/* A copy of an installed unit in dir, its programs the DESTDIR's. */
static void
unit_copy(const char *dest, const char *name, const char *dir,
	  const char *sbin)
{
	char from[PATH_MAX * 2], to[PATH_MAX * 2], bin[PATH_MAX * 2];
	char *text, *s, *b;

	PATHF(from, "%s/usr/local/lib/systemd/system/%s", dest, name);
	PATHF(to, "%s/%s", dir, name);
	text = slurp_ok(from);
	s = h_subst(text, "/usr/local/sbin/", sbin);
	PATHF(bin, "%s/usr/local/bin/", dest);
	b = h_subst(s, "/usr/local/bin/", bin);
	ck_assert_int_eq(h_write_file(to, b), 0);
	free(text);
	free(s);
	free(b);
}

/* systemd-analyze verify on files: its output, "" when all is well. */
static struct h_run *
verify(const char *service, const char *socket)
{
	const char *argv[] = { "systemd-analyze", "verify", service, socket,
			       NULL };

	return run(argv, 60000);
}

/*
 * The units as installed pass systemd-analyze verify (programs and
 * manual pages found, no unknown or bad setting), have the hardening and
 * privileges README.md describes, and keep the exposure that
 * `systemd-analyze security` gives them now (3.0) or better.
 */
START_TEST(test_units)
{
	char dest[PATH_MAX], dir[PATH_MAX * 2], sbin[PATH_MAX * 2];
	char svc[PATH_MAX * 3], sock[PATH_MAX * 3], p[PATH_MAX * 2];
	char *unit;
	struct h_run *r;
	json_t *cfg;

	need("systemd-analyze");
	need("man");
	h_label(tcase_name());
	destdir(dest, sizeof(dest), "units");
	free(install_to(dest, NULL));
	PATHF(dir, "%s.check", dest);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	PATHF(p, "%s/usr/local/share/man", dest);
	setenv("MANPATH", p, 1);
	PATHF(sbin, "%s/usr/local/sbin/", dest);
	unit_copy(dest, "ringlb.service", dir, sbin);
	unit_copy(dest, "ringlb.socket", dir, sbin);
	PATHF(svc, "%s/ringlb.service", dir);
	PATHF(sock, "%s/ringlb.socket", dir);
	r = verify(svc, sock);
	ck_assert_msg(exited_ok(r) && r->out[0] == '\0' && r->err[0] == '\0',
		      "systemd-analyze verify: status 0x%x\n%s%s", r->status,
		      r->out, r->err);
	free(r);
	{
		const char *argv[] = { "systemd-analyze", "security",
				       "--offline=yes", "--threshold=30",
				       "--no-pager", svc, NULL };

		r = run(argv, 60000);
		ck_assert_msg(exited_ok(r), "exposure above 3.0:\n%s%s",
			      r->out, r->err);
		free(r);
	}

	/* verify does look: a missing program fails it. */
	PATHF(p, "%s/nonexistent/", dest);
	unit_copy(dest, "ringlb.service", dir, p);
	r = verify(svc, sock);
	ck_assert_msg(!exited_ok(r) && strstr(r->err, "is not executable"),
		      "verify passed a unit whose program is missing:\n%s",
		      r->err);
	free(r);

	PATHF(p, "%s/usr/local/lib/systemd/system/ringlb.service", dest);
	unit = slurp_ok(p);
	assert_unit(unit, "Type", "notify");
	assert_unit(unit, "ExecStartPre",
		    "/usr/local/sbin/ringlb -t -c /etc/ringlb/ringlb.json");
	assert_unit(unit, "ExecStart",
		    "/usr/local/sbin/ringlb -c /etc/ringlb/ringlb.json");
	assert_unit(unit, "ExecReload",
		    "/usr/local/bin/ringlbctl -s /run/ringlb/admin.sock reload");
	assert_unit(unit, "User", "ringlb");
	assert_unit(unit, "Group", "ringlb");
	assert_unit(unit, "AmbientCapabilities", "CAP_NET_BIND_SERVICE");
	assert_unit(unit, "CapabilityBoundingSet", "CAP_NET_BIND_SERVICE");
	assert_unit(unit, "NoNewPrivileges", "yes");
	assert_unit(unit, "ProtectSystem", "strict");
	assert_unit(unit, "ProtectHome", "yes");
	assert_unit(unit, "PrivateTmp", "yes");
	assert_unit(unit, "RuntimeDirectory", "ringlb");
	free(unit);
	PATHF(p, "%s/usr/local/lib/systemd/system/ringlb.socket", dest);
	unit = slurp_ok(p);
	assert_unit(unit, "Service", "ringlb.service");
	ck_assert_ptr_nonnull(unit_get(unit, "FileDescriptorName"));
	ck_assert_ptr_nonnull(unit_get(unit, "ListenStream"));
	free(unit);

	/* The example's admin socket is where ExecReload and
	 * RuntimeDirectory expect it, and it runs as the unit's user. */
	PATHF(p, "%s/etc/ringlb/ringlb.json", dest);
	cfg = json_load_file(p, 0, NULL);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(cfg, "admin"), "socket")),
			 "/run/ringlb/admin.sock");
	ck_assert_str_eq(json_string_value(json_object_get(cfg, "user")),
			 "ringlb");
	json_decref(cfg);
}
END_TEST

/* ---- the Debian package ---- */

/* "Status" of the ringlb package, "" if dpkg knows none. */
static void
pkg_status(char *buf, size_t cap)
{
	const char *argv[] = { "dpkg-query", "-W", "-f=${Status}", "ringlb",
			       NULL };
	struct h_run *r = run(argv, 30000);

	snprintf(buf, cap, "%.200s", exited_ok(r) ? r->out : "");
	free(r);
}

/*
 * The processes running prog (by /proc/PID/exe): how many, each sent sig
 * unless sig is 0.
 */
static int
signal_all(const char *prog, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int found = 0;

	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		char link[64], exe[PATH_MAX];
		ssize_t n;

		if (!isdigit((unsigned char)e->d_name[0]) ||
		    snprintf(link, sizeof(link), "/proc/%s/exe", e->d_name) >=
			    (int)sizeof(link))
			continue;
		n = readlink(link, exe, sizeof(exe) - 1);
		if (n <= 0)
			continue;
		exe[n] = '\0';
		if (strncmp(exe, prog, strlen(prog)) != 0)
			continue;
		found++;
		if (sig != 0)
			kill(atoi(e->d_name), sig);
	}
	closedir(d);
	return found;
}

static bool
running(const char *prog)
{
	int n = signal_all(prog, 0);

	ck_assert_int_ge(n, 0);
	return n > 0;
}

static int
kill_all(const char *prog)
{
	return signal_all(prog, SIGKILL);
}

/*
 * Once the test process is gone, however it ended, purge the package if
 * it is still there, and remove the user ringlb if the test made it.  Out
 * of the process group, so Check's killpg() after the test spares it.
 * It keeps the suite's stderr open, so tools/run-tests.sh waits for it.
 * (The test skips where /usr/sbin/ringlb was there before it, so every
 * process running it is the test's.)
 */
static void
guard_start(bool user_was_there)
{
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		const char *q[] = { "dpkg-query", "-W", "-f=${Status}",
				    "ringlb", NULL };
		static struct h_run r;
		char c;

		setsid();
		if (p[0] != 3) {
			dup2(p[0], 3);
			p[0] = 3;
		}
		close_range(4, ~0U, 0);
		for (;;) {
			ssize_t n = read(p[0], &c, 1);

			if (n > 0 || (n < 0 && errno == EINTR))
				continue;
			break;
		}
		/* A ringlb the test started as ringlb would keep the user. */
		if (kill_all("/usr/sbin/ringlb") > 0)
			h_sleep_ms(200);
		if (h_run(q, 30000, &r) == 0 && exited_ok(&r) && r.out[0]) {
			const char *conf[] = { "dpkg", "--configure", "-a",
					       NULL };
			const char *purge[] = { "dpkg", "-P", "ringlb", NULL };

			fprintf(stderr, "check_install: purging the ringlb "
				"package the test left (%s)\n", r.out);
			if (strstr(r.out, "half") || strstr(r.out, "unpacked"))
				h_run(conf, 120000, &r);
			h_run(purge, 120000, &r);
		}
		if (!user_was_there && getpwnam("ringlb") != NULL) {
			const char *ud[] = { "userdel", "ringlb", NULL };

			fprintf(stderr, "check_install: removing the user "
				"ringlb the test left\n");
			h_run(ud, 30000, &r);
		}
		if (!user_was_there && getgrnam("ringlb") != NULL) {
			const char *gd[] = { "groupdel", "ringlb", NULL };

			h_run(gd, 30000, &r);
		}
		_exit(0);
	}
	close(p[0]);
}

/* A line "Key:\tvalue" of /proc/PID/status. */
static void
proc_status(pid_t pid, const char *key, char *v, size_t cap)
{
	char path[64], *text, *l;
	size_t kl = strlen(key);

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	text = slurp_ok(path);
	v[0] = '\0';
	for (l = text; l != NULL; l = strchr(l, '\n') ? strchr(l, '\n') + 1
						      : NULL)
		if (strncmp(l, key, kl) == 0 && l[kl] == ':') {
			snprintf(v, cap, "%.*s", (int)strcspn(l + kl + 2, "\n"),
				 l + kl + 2);
			break;
		}
	free(text);
}

/* A free port below 1024 on 127.0.0.1, or -1. */
static int
privileged_port(void)
{
	for (int port = 700; port < 1000; port++) {
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons((uint16_t)port) };
		int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

		ck_assert_int_ge(fd, 0);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
		close(fd);
		if (rc == 0 && !h_port_listening(port))
			return port;
	}
	return -1;
}

/* setpriv's name of a capability: CAP_NET_BIND_SERVICE, net_bind_service. */
static void
cap_name(const char *unit_value, char *out, size_t cap)
{
	size_t i = 0;

	if (strncmp(unit_value, "CAP_", 4) == 0)
		unit_value += 4;
	for (; unit_value[i] && i + 1 < cap; i++)
		out[i] = (char)tolower((unsigned char)unit_value[i]);
	out[i] = '\0';
}

/*
 * The installed ringlb, started with what the installed unit sets (User=,
 * Group=, AmbientCapabilities=, CapabilityBoundingSet=, NoNewPrivileges=;
 * setpriv stands in for systemd), and /run/ringlb as RuntimeDirectory=
 * makes it: it binds a port below 1024, drops to no capability at all
 * ("user": "ringlb", as in the example), and answers on its socket.
 */
static void
check_unit_privileges(const char *dir)
{
	char *unit = slurp_ok("/usr/lib/systemd/system/ringlb.service");
	char user[64], group[64], amb[64], bnd[64], nnp[8];
	char a_user[80], a_group[80], a_inh[96], a_amb[96], a_bnd[96];
	char run_dir[PATH_MAX], cfg_path[PATH_MAX + 16], log[PATH_MAX + 16];
	char sock[PATH_MAX + 16], json[PATH_MAX * 2], v[128], *text;
	const char *argv[16], *san = getenv("RINGLB_SANITIZE");
	struct passwd *pw = getpwnam("ringlb");
	int port = privileged_port(), n = 0, fd, start = 1024;
	uint64_t deadline;
	pid_t pid;
	FILE *f;

	ck_assert_ptr_nonnull(pw);
	ck_assert_msg(port > 0, "no free port below 1024 on 127.0.0.1");
	f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r");
	if (f != NULL) {
		if (fscanf(f, "%d", &start) != 1)
			start = 1024;
		(void)fclose(f);
	}
	if (start <= port)
		h_skip_part("port %d is not privileged here "
			    "(ip_unprivileged_port_start %d)", port, start);
	snprintf(user, sizeof(user), "%s", unit_get(unit, "User"));
	snprintf(group, sizeof(group), "%s", unit_get(unit, "Group"));
	cap_name(unit_get(unit, "AmbientCapabilities") ?: "", amb,
		 sizeof(amb));
	cap_name(unit_get(unit, "CapabilityBoundingSet") ?: "", bnd,
		 sizeof(bnd));
	snprintf(nnp, sizeof(nnp), "%s",
		 unit_get(unit, "NoNewPrivileges") ?: "no");
	free(unit);

	PATHF(run_dir, "%s/run-ringlb", dir);
	ck_assert_int_eq(mkdir(run_dir, 0750), 0);
	ck_assert_int_eq(chown(run_dir, pw->pw_uid, pw->pw_gid), 0);
	snprintf(sock, sizeof(sock), "%s/admin.sock", run_dir);
	snprintf(cfg_path, sizeof(cfg_path), "%s/priv.json", dir);
	snprintf(log, sizeof(log), "%s/priv.log", dir);
	PATHF(json,
		 "{ \"user\": \"ringlb\", \"workers\": 1,"
		 "  \"admin\": { \"socket\": \"%s\" },"
		 "  \"listeners\": [ { \"name\": \"low\","
		 "    \"listen\": \"127.0.0.1:%d\","
		 "    \"health_check\": { \"enabled\": false },"
		 "    \"backends\": [ { \"name\": \"b\","
		 "                      \"address\": \"127.0.0.1:9\" } ] } ] }",
		 sock, port);
	ck_assert_int_eq(h_write_file(cfg_path, json), 0);
	ck_assert_int_eq(chmod(cfg_path, 0644), 0);

	snprintf(a_user, sizeof(a_user), "--reuid=%s", user);
	snprintf(a_group, sizeof(a_group), "--regid=%s", group);
	argv[n++] = "setpriv";
	argv[n++] = a_user;
	argv[n++] = a_group;
	argv[n++] = "--clear-groups";
	if (amb[0]) {
		snprintf(a_inh, sizeof(a_inh), "--inh-caps=-all,+%s", amb);
		snprintf(a_amb, sizeof(a_amb), "--ambient-caps=+%s", amb);
		argv[n++] = a_inh;
		argv[n++] = a_amb;
	}
	if (bnd[0]) {
		snprintf(a_bnd, sizeof(a_bnd), "--bounding-set=-all,+%s", bnd);
		argv[n++] = a_bnd;
	}
	if (strcmp(nnp, "yes") == 0)
		argv[n++] = "--no-new-privs";
	argv[n++] = "/usr/sbin/ringlb";
	argv[n++] = "-c";
	argv[n++] = cfg_path;
	argv[n] = NULL;
	pid = h_spawn(argv, log);
	ck_assert_int_gt(pid, 0);
	deadline = h_now_ms() + 10000;
	for (;;) {
		text = slurp(log);
		if (text != NULL && strstr(text, "ringlb started"))
			break;
		ck_assert_msg(h_now_ms() < deadline && kill(pid, 0) == 0,
			      "ringlb as the unit's user did not start "
			      "(%s):\n%s", argv_str(argv), text ? text : "");
		free(text);
		h_sleep_ms(50);
	}
	ck_assert_msg(strstr(text, "running as user ringlb") &&
			      strstr(text, "with no capabilities"),
		      "%s", text);
	free(text);
	proc_status(pid, "CapEff", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	proc_status(pid, "CapAmb", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	proc_status(pid, "NoNewPrivs", v, sizeof(v));
	ck_assert_str_eq(v, "1");
	proc_status(pid, "Uid", v, sizeof(v));
	snprintf(json, sizeof(json), "%u\t%u\t%u\t%u", pw->pw_uid, pw->pw_uid,
		 pw->pw_uid, pw->pw_uid);
	ck_assert_str_eq(v, json);
	fd = h_connect("127.0.0.1", port, 2000);
	ck_assert_msg(fd >= 0, "connect to 127.0.0.1:%d: %s", port,
		      strerror(-fd));
	close(fd);
	{
		const char *ctl[] = { "/usr/bin/ringlbctl", "-s", sock,
				      "status", NULL };

		free(run_ok(ctl, 10000));
	}
	kill(pid, SIGTERM);
	ck_assert_int_eq(h_wait_pid(pid, 10000, &n), 0);
	/* A sanitized ringlb's leak check cannot trace a process that
	 * changed its ids; its exit status says nothing then. */
	if (san == NULL || san[0] == '\0')
		ck_assert_msg(WIFEXITED(n) && WEXITSTATUS(n) == 0,
			      "ringlb exit status 0x%x", n);
}

/*
 * make deb, then dpkg -i: the files under /usr, the user ringlb, a valid
 * /etc/ringlb/ringlb.json, nothing started or enabled, and the unit's
 * privileges work; dpkg -r keeps the config and the user, dpkg -P
 * removes them, and the machine is as before.
 */
START_TEST(test_deb)
{
	char st[256], deb[PATH_MAX], dir[PATH_MAX], version[64];
	bool user_was_there, conf_was_there;
	char *conf_before = NULL, *s;
	struct h_run *r;
	struct passwd *pw;
	struct group *gr;
	glob_t g;

	if (geteuid() != 0)
		h_skip("needs root (dpkg -i)");
	need("dpkg-deb");
	need("setpriv");
	pkg_status(st, sizeof(st));
	if (st[0] != '\0')
		h_skip("a ringlb package is here (%s); not touching it", st);
	if (exists("/usr/sbin/ringlb") || exists("/usr/bin/ringlbctl"))
		h_skip("/usr/sbin/ringlb or /usr/bin/ringlbctl exists; "
		       "not touching it");
	h_label(tcase_name());
	user_was_there = getpwnam("ringlb") != NULL;
	conf_was_there = exists("/etc/ringlb/ringlb.json");
	if (conf_was_there)
		conf_before = slurp_ok("/etc/ringlb/ringlb.json");
	destdir(dir, sizeof(dir), "deb");
	ck_assert_int_eq(mkdir(dir, 0755), 0);

	{
		const char *argv[] = { h_lb_bin(), "-V", NULL };

		r = run_ok(argv, 10000);
		ck_assert_int_eq(sscanf(r->out, "ringlb %63s", version), 1);
		free(r);
	}
	r = make("deb", (const char *)NULL);
	s = strstr(r->out, "deb: ");
	ck_assert_msg(s != NULL, "%s", r->out);
	snprintf(deb, sizeof(deb), "%.*s", (int)strcspn(s + 5, "\n"), s + 5);
	free(r);
	{
		const char *argv[] = { "dpkg-deb", "-f", deb, "Version",
				       "Depends", NULL };

		r = run_ok(argv, 30000);
		ck_assert_msg(strncmp(r->out, "Version: ", 9) == 0 &&
				      strncmp(r->out + 9, version,
					      strlen(version)) == 0 &&
				      r->out[9 + strlen(version)] == '\n',
			      "the package's version is not ringlb -V's (%s):"
			      "\n%s", version, r->out);
		ck_assert_msg(strstr(r->out, "adduser") &&
				      strstr(r->out, "liburing"),
			      "%s", r->out);
		free(r);
	}
	{
		const char *argv[] = { "dpkg-deb", "-c", deb, NULL };

		r = run_ok(argv, 30000);
		ck_assert(strstr(r->out, " ./usr/sbin/ringlb\n"));
		ck_assert(strstr(r->out, " ./usr/bin/ringlbctl\n"));
		ck_assert(strstr(r->out, " ./usr/share/man/man5/ringlb.json.5.gz\n"));
		ck_assert(strstr(r->out, " ./usr/lib/systemd/system/ringlb.service\n"));
		ck_assert(strstr(r->out, " ./usr/share/ringlb/ringlb.json\n"));
		ck_assert_msg(strstr(r->out, " ./etc/") == NULL, "%s", r->out);
		free(r);
	}

	guard_start(user_was_there);
	{
		const char *argv[] = { "dpkg", "-i", deb, NULL };

		free(run_ok(argv, 180000));
	}
	pkg_status(st, sizeof(st));
	ck_assert_str_eq(st, "install ok installed");
	pw = getpwnam("ringlb");
	ck_assert_msg(pw != NULL, "postinst made no user ringlb");
	gr = getgrnam("ringlb");
	ck_assert_msg(gr != NULL && gr->gr_gid == pw->pw_gid,
		      "the user ringlb's group is not ringlb");
	if (!user_was_there) {
		ck_assert_uint_lt(pw->pw_uid, 1000);
		ck_assert_str_eq(pw->pw_dir, "/nonexistent");
		ck_assert_str_eq(pw->pw_shell, "/usr/sbin/nologin");
	}
	if (conf_was_there) {
		s = slurp_ok("/etc/ringlb/ringlb.json");
		ck_assert_str_eq(s, conf_before);
		free(s);
	} else {
		const char *argv[] = { "/usr/sbin/ringlb", "-t", "-c",
				       "/etc/ringlb/ringlb.json", NULL };

		ck_assert(same_file("/etc/ringlb/ringlb.json",
				    "/usr/share/ringlb/ringlb.json"));
		r = run_ok(argv, 10000);
		ck_assert_msg(strstr(r->out, "configuration is valid"), "%s",
			      r->out);
		free(r);
	}
	/* Nothing started, nothing enabled. */
	ck_assert_msg(!running("/usr/sbin/ringlb"), "ringlb was started");
	ck_assert_msg(!exists("/run/ringlb"), "/run/ringlb exists");
	ck_assert_int_eq(glob("/etc/systemd/system/*.wants/ringlb.*", 0, NULL,
			      &g),
			 GLOB_NOMATCH);

	check_unit_privileges(dir);

	{
		const char *argv[] = { "dpkg", "-r", "ringlb", NULL };

		free(run_ok(argv, 180000));
	}
	ck_assert(!exists("/usr/sbin/ringlb"));
	ck_assert(!exists("/usr/lib/systemd/system/ringlb.service"));
	ck_assert(exists("/etc/ringlb/ringlb.json"));
	ck_assert_ptr_nonnull(getpwnam("ringlb"));
	{
		const char *argv[] = { "dpkg", "-P", "ringlb", NULL };

		free(run_ok(argv, 180000));
	}
	pkg_status(st, sizeof(st));
	ck_assert_msg(st[0] == '\0', "after purge: %s", st);
	ck_assert(!exists("/var/lib/ringlb"));
	if (conf_was_there) {
		s = slurp_ok("/etc/ringlb/ringlb.json");
		ck_assert_str_eq(s, conf_before);
		free(s);
	} else {
		ck_assert_msg(!exists("/etc/ringlb"), "purge left /etc/ringlb");
	}
	if (user_was_there) {
		ck_assert_ptr_nonnull(getpwnam("ringlb"));
	} else {
		ck_assert_msg(getpwnam("ringlb") == NULL,
			      "purge left the user ringlb");
		ck_assert_msg(getgrnam("ringlb") == NULL,
			      "purge left the group ringlb");
	}
	free(conf_before);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("install");
	TCase *tc = h_tcase(s, "install", 600, h_teardown);
	char abs[PATH_MAX], *slash;

	/* make test runs the suites in the source tree. */
	if (getcwd(src_dir, sizeof(src_dir)) == NULL ||
	    access("Makefile", R_OK) != 0 || access("man", R_OK) != 0) {
		fprintf(stderr, "check_install: run me in the source tree\n");
		return 1;
	}
	if (realpath(h_lb_bin(), abs) == NULL) {
		fprintf(stderr, "check_install: %s: %s\n", h_lb_bin(),
			strerror(errno));
		return 1;
	}
	slash = strrchr(abs, '/');
	*slash = '\0';
	snprintf(build_dir, sizeof(build_dir), "%s", abs);
	/* The make that runs this suite must not hand its jobserver on. */
	unsetenv("MAKEFLAGS");
	unsetenv("MFLAGS");
	unsetenv("MAKELEVEL");
	tcase_add_test(tc, test_install_layout);
	tcase_add_test(tc, test_install_keeps_config);
	tcase_add_test(tc, test_man_lint);
	tcase_add_test(tc, test_man_readme);
	tcase_add_test(tc, test_units);
	tcase_add_test(tc, test_deb);
	return h_run_suite("check_install", s);
}
