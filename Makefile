# ringlb: GNU make build.  `make` builds build/ringlb; `make test` runs the
# suite; `make run` starts the demo; `make deps` installs what is missing;
# `make install`, `make uninstall` and `make deb` install it (README.md,
# "Installing").

CC ?= gcc
# A sanitizer build gets its own folder so it never mixes with a plain one.
ifneq ($(SANITIZE),)
BUILD ?= build/sanitize-$(subst $(comma),-,$(SANITIZE))
else
BUILD ?= build
endif
comma := ,
PKGS := liburing jansson libmicrohttpd libcap-ng libcares

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wcast-qual -Wwrite-strings -Wformat=2 -Wundef -Wvla \
	-Wimplicit-fallthrough -Wno-unused-parameter
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE -pthread
LDFLAGS += -pthread
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

# pkg-config is asked only when a target needs it, so `make deps` runs on a
# machine that has none of the libraries yet.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(wildcard tests/check_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/%)
TEST_HELPERS := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))

.PHONY: all deps run test clean tests bench fuzz fuzz-build lint man
all: $(BUILD)/ringlb $(BUILD)/ringlbctl $(BUILD)/demo-backend

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/obj:
	mkdir -p $@

$(BUILD)/libringlb.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/ringlb: $(BUILD)/obj/main.o $(BUILD)/libringlb.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

CTL_CFLAGS = $(shell pkg-config --cflags libcurl jansson 2>/dev/null)
CTL_LIBS = $(shell pkg-config --libs libcurl jansson 2>/dev/null)

$(BUILD)/ringlbctl: src/ctl/ringlbctl.c | $(BUILD)/obj
	$(CC) $(CFLAGS) $(CTL_CFLAGS) -o $@ $< $(LDFLAGS) $(CTL_LIBS)

$(BUILD)/demo-backend: tools/demo_backend.c | $(BUILD)/obj
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

# Unit tests may #include the module under test; they link the library too.
$(BUILD)/check_%: tests/check_%.c $(TEST_HELPERS) $(wildcard tests/*.h) $(BUILD)/libringlb.a
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests -o $@ $< $(TEST_HELPERS) \
		$(BUILD)/libringlb.a $(LDFLAGS) $(PKG_LIBS) $(CHECK_LIBS)

tests: $(TEST_BIN) $(BUILD)/ringlb $(BUILD)/ringlbctl $(BUILD)/demo-backend \
	$(MAN)

deps:
	@tools/deps.sh

run: deps
	$(MAKE) all
	tools/demo.sh $(BUILD)

# Under TSan every process of the suite (tests, ringlb, ringlbctl) reads
# tests/tsan.supp and writes any report to $(BUILD)/tsan-report.PID, and
# stops at the first one; run-tests.sh prints them and fails the run.
ifneq ($(findstring thread,$(SANITIZE)),)
TEST_ENV = TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp) \
	halt_on_error=1 second_deadlock_stack=1 \
	log_path=$(abspath $(BUILD))/tsan-report" \
	SANITIZER_REPORTS=$(abspath $(BUILD))/tsan-report
endif

# RINGLB_SANITIZE tells tests that ringlb runs sanitized (e.g. its RSS
# includes shadow memory).
test: deps
	$(MAKE) tests
	RINGLB_BIN=$(abspath $(BUILD)/ringlb) \
		RINGLBCTL_BIN=$(abspath $(BUILD)/ringlbctl) $(TEST_ENV) \
		RINGLB_SANITIZE=$(SANITIZE) tools/run-tests.sh $(TEST_BIN)

# Side-by-side with HAProxy and nginx stream (tools/bench/README.md);
# THREADS=2, ROUNDS=N and QUICK=1 pass through the environment.
bench: deps
	$(MAKE) all
	RINGLB=$(abspath $(BUILD)/ringlb) tools/bench/run.sh

# ringlbctl upgrade with 0, 1,000 and 5,000 open connections: how long it
# takes and how many it hands over (tools/bench/upgrade.py).
.PHONY: bench-upgrade
bench-upgrade: deps $(BUILD)/ringlb $(BUILD)/ringlbctl
	tools/bench/upgrade.py --ringlb $(BUILD)/ringlb --ctl $(BUILD)/ringlbctl $(BENCH_UPGRADE_ARGS)

# DNS discovery: ringlb's CPU with 1,000 discovered backends asked every
# second (steady and changing), and latency while the DNS server is silent
# (tools/bench/discover.py).
# Three ringlb instances behind ECMP in network namespaces (bird2, BFD):
# tests/check_cluster.c on tools/cluster/.  Needs root.  Part of `make
# test` too; this runs it alone.
.PHONY: cluster-test
cluster-test: deps $(BUILD)/check_cluster $(BUILD)/ringlb $(BUILD)/ringlbctl
	RINGLB_BIN=$(abspath $(BUILD)/ringlb) \
		RINGLBCTL_BIN=$(abspath $(BUILD)/ringlbctl) \
		RINGLB_SANITIZE=$(SANITIZE) tools/run-tests.sh $(BUILD)/check_cluster

.PHONY: bench-discover
bench-discover: deps $(BUILD)/ringlb
	tools/bench/discover.py --ringlb $(BUILD)/ringlb --type a $(BENCH_DISCOVER_ARGS)
	tools/bench/discover.py --ringlb $(BUILD)/ringlb --type srv $(BENCH_DISCOVER_ARGS)

# ns per pool_pick() for each algorithm at 10..10,000 backends, in memory,
# one thread (tools/bench/pick.c); BENCH_PICK_ARGS="REPS MIN_MS" if wanted.
.PHONY: bench-pick
$(BUILD)/bench-pick: tools/bench/pick.c $(wildcard include/*.h) $(BUILD)/libringlb.a
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(BUILD)/libringlb.a \
		$(LDFLAGS) $(PKG_LIBS)

bench-pick: $(BUILD)/bench-pick
	$(BUILD)/bench-pick $(BENCH_PICK_ARGS)

# Long run under mixed traffic, backend kills and reloads (tools/soak.sh);
# SOAK_MINUTES=N (default 30) passes through the environment.  Not in `test`.
.PHONY: soak
soak: deps
	$(MAKE) all
	tools/soak.sh $(abspath $(BUILD)/ringlb)

# libFuzzer targets (tests/fuzz/), built with clang, ASan and UBSan into
# their own folder; `make fuzz FUZZ_SECONDS=N` runs each for N seconds after
# replaying its seed corpus, and fails on any crash, leak or UB.
FUZZ_CC ?= clang-14
FUZZ_BUILD ?= $(BUILD)/fuzz
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -O1 -g -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE -pthread \
	-fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer $(if $(filter 1,$(WERROR)),-Werror)
FUZZ_SRC := $(filter-out tests/fuzz/fuzz_common.c,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_OBJ := $(LIB_SRC:src/%.c=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) | $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) \
		-c $< -o $@

$(FUZZ_BUILD)/obj:
	mkdir -p $@

# The status page is built into the binary (.incbin in status_page.c).
$(BUILD)/obj/status_page.o $(FUZZ_BUILD)/obj/status_page.o: src/status.html

$(FUZZ_BUILD)/libringlb.a: $(FUZZ_OBJ)
	rm -f $@
	ar rcs $@ $^

# A target may #include the module it fuzzes to reach static parsers.
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.c \
		tests/fuzz/fuzz.h src/ctl/ringlbctl.c $(FUZZ_BUILD)/libringlb.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) \
		$(CTL_CFLAGS) -Itests/fuzz -o $@ $< tests/fuzz/fuzz_common.c \
		$(FUZZ_BUILD)/libringlb.a $(PKG_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz:
	@tools/deps.sh clang-14 libclang-rt-14-dev
	$(MAKE) fuzz-build
	tools/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

# clang-tidy and cppcheck over src/ and include/ (.clang-tidy,
# tools/lint/); any finding fails.
lint:
	@tools/deps.sh clang-tidy-14 cppcheck
	tools/lint.sh

# Manual pages: ringlb(8), ringlbctl(8), ringlb.json(5), each written by
# tools/readme2mdoc.pl from its template in man/ and the README sections
# the template names, so the README stays the one source of the text.
# Dated by the last commit that changed them, so a rebuild gives the same
# bytes.
MAN_IN := $(wildcard man/*.in)
MAN := $(MAN_IN:man/%.in=$(BUILD)/man/%)
MAN_DATE = $(or $(shell LC_ALL=C git log -1 --format=%cd \
	--date='format:%B %-d, %Y' -- README.md man 2>/dev/null),$(shell \
	LC_ALL=C date -u '+%B %-d, %Y'))

$(BUILD)/man/%: man/%.in README.md tools/readme2mdoc.pl $(MAN_IN)
	@mkdir -p $(@D)
	perl tools/readme2mdoc.pl README.md '$(MAN_DATE)' $< \
		$(filter-out $<,$(MAN_IN)) > $@.tmp || { rm -f $@.tmp; exit 1; }
	mv $@.tmp $@

man: $(MAN)

# Installing.  PREFIX holds the programs, manual pages, units and
# documentation; the config is /etc/ringlb/ringlb.json whatever PREFIX
# is, because that is the path the unit and the manuals name (SYSCONFDIR
# moves it, and the unit with it).  DESTDIR goes in front of every path:
# staging for a package, and the tests.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/ringlb
DOCDIR ?= $(PREFIX)/share/doc/ringlb
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
CONFDIR = $(SYSCONFDIR)/ringlb
INSTALL ?= install

UNITS := ringlb.service ringlb.socket
EXAMPLES := $(wildcard config/examples/*.json)
# The units as written name the default PREFIX's programs and /etc.
UNIT_SED = -e 's|/usr/local/sbin/|$(SBINDIR)/|g' \
	-e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/etc/ringlb/|$(CONFDIR)/|g'
man_path = $(MANDIR)/man$(subst .,,$(suffix $(1)))/$(notdir $(1))
# Everything install-files writes, for uninstall.
INSTALLED = $(SBINDIR)/ringlb $(BINDIR)/ringlbctl \
	$(foreach m,$(MAN),$(call man_path,$(m))) \
	$(UNITS:%=$(UNITDIR)/%) $(DATADIR)/ringlb.json $(DOCDIR)/README.md \
	$(EXAMPLES:config/examples/%=$(DOCDIR)/examples/%)
# /etc/ringlb/ringlb.json is written only where there is none; then this
# file holds its checksum (and "dir" if install made /etc/ringlb), so
# that uninstall removes it only if install wrote it and nobody changed it.
CONF = $(DESTDIR)$(CONFDIR)/ringlb.json
CONF_MARK = $(DESTDIR)$(DATADIR)/installed-config.sha256

.PHONY: install install-files install-config uninstall deb
install: all man
	$(MAKE) --no-print-directory install-files install-config

# Directories are made only where missing (install -d would also reset the
# mode of one that exists, such as a 2775 /usr/local/bin).
install-files:
	umask 022 && mkdir -p $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(DATADIR) \
		$(DESTDIR)$(DOCDIR)/examples
	$(INSTALL) -m 0755 $(BUILD)/ringlb $(DESTDIR)$(SBINDIR)/ringlb
	$(INSTALL) -m 0755 $(BUILD)/ringlbctl $(DESTDIR)$(BINDIR)/ringlbctl
	$(foreach m,$(MAN),$(INSTALL) -m 0644 $(m) \
		$(DESTDIR)$(call man_path,$(m)) &&) true
	$(foreach u,$(UNITS),sed $(UNIT_SED) tools/systemd/$(u) \
		> $(DESTDIR)$(UNITDIR)/$(u) && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$(u) &&) true
	$(INSTALL) -m 0644 config/examples/service.json \
		$(DESTDIR)$(DATADIR)/ringlb.json
	$(INSTALL) -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	$(INSTALL) -m 0644 $(EXAMPLES) $(DESTDIR)$(DOCDIR)/examples

install-config:
	@if [ -e '$(CONF)' ]; then \
		echo "install: keeping $(CONF)"; \
	else \
		dir=; [ -d '$(DESTDIR)$(CONFDIR)' ] || dir=dir; \
		echo "install: $(CONF) from $(DATADIR)/ringlb.json"; \
		(umask 022 && mkdir -p '$(DESTDIR)$(CONFDIR)') && \
		$(INSTALL) -m 0644 config/examples/service.json '$(CONF)' && \
		{ sha256sum < '$(CONF)' | cut -d' ' -f1; \
		  [ -z "$$dir" ] || echo dir; } > '$(CONF_MARK)' && \
		chmod 0644 '$(CONF_MARK)'; \
	fi

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@if [ -f '$(CONF_MARK)' ]; then \
		if [ -f '$(CONF)' ] && [ "$$(sha256sum < '$(CONF)' | \
		    cut -d' ' -f1)" = "$$(sed -n 1p '$(CONF_MARK)')" ]; then \
			echo "uninstall: removing $(CONF)"; \
			rm -f '$(CONF)'; \
			if [ "$$(sed -n 2p '$(CONF_MARK)')" = dir ]; then \
				rmdir '$(DESTDIR)$(CONFDIR)' 2>/dev/null || true; \
			fi; \
		elif [ -f '$(CONF)' ]; then \
			echo "uninstall: keeping $(CONF): changed since install"; \
		fi; \
		rm -f '$(CONF_MARK)'; \
	fi
	@for d in $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(DATADIR); do rmdir "$$d" 2>/dev/null || true; done

# A Debian package of the same files under /usr (tools/deb/build.sh):
# build/ringlb_VERSION_ARCH.deb, the version that `ringlb -V` prints.
VERSION = $(shell sed -n 's/^\#define RINGLB_VERSION "\(.*\)"$$/\1/p' \
	include/version.h)
DEB_ROOT = $(abspath $(BUILD))/deb
deb:
	@tools/deps.sh dpkg-dev
	$(MAKE) all man
	rm -rf $(DEB_ROOT)
	$(MAKE) --no-print-directory install-files DESTDIR=$(DEB_ROOT) \
		PREFIX=/usr
	tools/deb/build.sh $(DEB_ROOT) $(VERSION) \
		$(BUILD)/ringlb_$(VERSION)_$(shell dpkg --print-architecture).deb

clean:
	rm -rf $(BUILD)
