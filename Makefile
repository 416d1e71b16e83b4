# ringlb: GNU make build.  `make` builds build/ringlb; `make test` runs the
# suite; `make run` starts the demo; `make deps` installs what is missing.

CC ?= gcc
# A sanitizer build gets its own folder so it never mixes with a plain one.
ifneq ($(SANITIZE),)
BUILD ?= build/sanitize-$(subst $(comma),-,$(SANITIZE))
else
BUILD ?= build
endif
comma := ,
PKGS := liburing jansson libmicrohttpd

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

.PHONY: all deps run test clean tests bench
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

tests: $(TEST_BIN) $(BUILD)/ringlb $(BUILD)/ringlbctl $(BUILD)/demo-backend

deps:
	@tools/deps.sh

run: deps
	$(MAKE) all
	tools/demo.sh $(BUILD)

test: deps
	$(MAKE) tests
	RINGLB_BIN=$(abspath $(BUILD)/ringlb) \
		RINGLBCTL_BIN=$(abspath $(BUILD)/ringlbctl) \
		tools/run-tests.sh $(TEST_BIN)

# Side-by-side with HAProxy and nginx stream (tools/bench/README.md);
# THREADS=2, ROUNDS=N and QUICK=1 pass through the environment.
bench: deps
	$(MAKE) all
	RINGLB=$(abspath $(BUILD)/ringlb) tools/bench/run.sh

clean:
	rm -rf $(BUILD)
