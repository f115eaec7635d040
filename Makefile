# skiff build. `make` builds build/{skiffd,skiff-monitor,skiff}; `make test-unit` runs the C unit tests.
# Variables: CC=gcc|clang, SAN=1 (ASan+UBSan into build-san/), BUILD=<dir>.
CC ?= gcc
SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS =
endif

PKGS = libh2o-evloop jansson libcurl libarchive sqlite3 yaml-0.1 openssl libisal libseccomp libmnl libnftables ldns
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu17 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc $(PKG_CFLAGS) $(SANFLAGS) -MMD -MP
# h2o's headers trigger warnings we cannot fix; they are system headers via -isystem.
CFLAGS := $(subst -I/usr/include/h2o,-isystem /usr/include/h2o,$(CFLAGS))
LDFLAGS += $(SANFLAGS) -Wl,--as-needed
LDLIBS += $(PKG_LIBS) -lwslay -lpthread -lm

LIB_DIRS = common model store auth api agent image runtime monclient net dns
LIB_SRCS := $(foreach d,$(LIB_DIRS),$(wildcard src/$(d)/*.c))
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
COMMON_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/common/*.c))
AUTH_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/auth/*.c))
SKIFFD_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/skiffd/*.c))
MONITOR_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/monitor/*.c))
CLI_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/cli/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

all: $(BUILD)/skiffd $(BUILD)/skiff-monitor $(BUILD)/skiff $(UNIT_BINS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -c $< -o $@

$(BUILD)/libskiff.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/skiffd: $(SKIFFD_OBJS) $(BUILD)/libskiff.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The monitor runs once per group: it links only what it uses (libc, jansson) to stay small.
$(BUILD)/skiff-monitor: $(MONITOR_OBJS) $(COMMON_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ -ljansson

$(BUILD)/skiff: $(CLI_OBJS) $(COMMON_OBJS) $(AUTH_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/libskiff.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

test-unit: $(UNIT_BINS)
	@tests/unit/run.sh $(BUILD)/tests

clean:
	rm -rf build build-san

.PHONY: all clean test-unit
.SECONDARY:
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
