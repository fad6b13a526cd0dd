# SPDX-License-Identifier: LGPL-2.1-or-later
# declvirt: one non-recursive Makefile. `make run` and `make check` install missing
# Debian packages first (scripts/install-deps), then build.

BUILD      ?= build
SAN_BUILD  := $(BUILD)/san
FUZZ_BUILD := $(BUILD)/fuzz
PREFIX     ?= /usr/local
DESTDIR    ?=
CC         ?= cc
PKG_CONFIG ?= pkg-config
V ?= 0
Q := $(if $(filter 1,$(V)),,@)
PKGS       := libxml-2.0 yaml-0.1 libsystemd libxxhash json-c blkid libiscsi libmnl libnftables \
              xenstore

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

WARNINGS := -Wall -Wextra -Wformat=2 -Wshadow -Werror
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -I. $(PKG_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS   := $(PKG_LIBS) -lpthread
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB_SRC := $(filter-out agent/main.c,$(wildcard util/*.c model/*.c reconcile/*.c state/*.c \
             drivers/*.c drivers/*/*.c agent/*.c))
LIB_HDR := $(wildcard util/*.h model/*.h reconcile/*.h state/*.h drivers/*.h drivers/*/*.h agent/*.h)
UNIT_SRC   := $(wildcard tests/unit/test-*.c)
HELPER_SRC := $(wildcard tests/helpers/*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz-*.c)
TOOL_SRC   := $(wildcard tests/tools/*.c)
UNIT_NAMES := $(patsubst tests/unit/%.c,%,$(UNIT_SRC))
FUZZ_NAMES := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC))
TOOL_NAMES := $(patsubst tests/tools/%.c,%,$(TOOL_SRC))

.PHONY: all deps run check check-only build-all fuzz bench bench-peers clean install uninstall \
        format format-check help

all: $(BUILD)/declvirt

help:
	@echo "make            build $(BUILD)/declvirt"
	@echo "make run        install missing packages, build, run the agent on ./agent.conf"
	@echo "make check      install missing packages, build, run every test (also under ASan/UBSan)"
	@echo "make format     rewrite every C file in the style of .clang-format"
	@echo "make fuzz       build libFuzzer targets into $(FUZZ_BUILD) (clang)"
	@echo "make bench      run the benchmarks"
	@echo "make bench-peers  compare with libvirtd (virsh, Ansible) and the floor (opt-in)"

deps:
	@scripts/install-deps

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/declvirt --config ./agent.conf agent

check: deps
	@$(MAKE) --no-print-directory check-only

# ---- the library and the binary, for one build directory ---------------------------

# Every compile writes its header dependencies beside its output (-MMD -MP): touching
# one header rebuilds only what includes it. The .d files are included at the end.
DEPFLAGS = -MMD -MP -MF $$@.d

define build_tree
$(1)/obj/%.o: %.c
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  CC      $$@")
	$(Q)$$(CC) $$(ALL_CFLAGS) $(2) $(DEPFLAGS) -c $$< -o $$@

$(1)/libdeclvirt.a: $$(patsubst %.c,$(1)/obj/%.o,$$(LIB_SRC))
	@rm -f $$@
	@$$(if $$(Q),echo "  AR      $$@")
	$(Q)ar rcs $$@ $$^

$(1)/declvirt: $(1)/obj/agent/main.o $(1)/libdeclvirt.a
	@$$(if $$(Q),echo "  LD      $$@")
	$(Q)$$(CC) $(2) -o $$@ $$^ $$(LDLIBS)

$(1)/tests/%: tests/unit/%.c $$(HELPER_SRC) $(1)/libdeclvirt.a
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  TEST    $$@")
	$(Q)$$(CC) $$(ALL_CFLAGS) $(2) $(DEPFLAGS) -o $$@ $$< $$(HELPER_SRC) $(1)/libdeclvirt.a $$(LDLIBS) $$(CMOCKA_LIBS)

# Programs the integration tests run (stand-ins for services the machine lacks).
$(1)/tools/%: tests/tools/%.c $(1)/libdeclvirt.a
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  TOOL    $$@")
	$(Q)$$(CC) $$(ALL_CFLAGS) $(2) $(DEPFLAGS) -o $$@ $$< $(1)/libdeclvirt.a $$(LDLIBS)

$(1)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay-main.c $(1)/libdeclvirt.a
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  FUZZ    $$@")
	$(Q)$$(CC) $$(ALL_CFLAGS) $(2) $(DEPFLAGS) -o $$@ $$< tests/fuzz/replay-main.c $(1)/libdeclvirt.a $$(LDLIBS)
endef

$(eval $(call build_tree,$(BUILD),))
$(eval $(call build_tree,$(SAN_BUILD),$(SAN_FLAGS)))

UNIT_BINS      := $(addprefix $(BUILD)/tests/,$(UNIT_NAMES))
SAN_UNIT_BINS  := $(addprefix $(SAN_BUILD)/tests/,$(UNIT_NAMES))
REPLAY_BINS    := $(addprefix $(BUILD)/fuzz-replay/,$(FUZZ_NAMES))
SAN_REPLAY_BINS := $(addprefix $(SAN_BUILD)/fuzz-replay/,$(FUZZ_NAMES))
TOOL_BINS      := $(addprefix $(BUILD)/tools/,$(TOOL_NAMES))

build-all: $(BUILD)/declvirt $(TOOL_BINS) $(UNIT_BINS) $(REPLAY_BINS) $(SAN_UNIT_BINS) $(SAN_REPLAY_BINS)

# Every suite in one run so the last line counts them all.
check-only: build-all
	@BUILD=$(BUILD) SAN_BUILD=$(SAN_BUILD) tests/run-tests \
	    lint:tests/format-check \
	    $(foreach t,$(UNIT_BINS),unit:$(t)) \
	    $(foreach t,$(REPLAY_BINS),fuzz:$(t)) \
	    $(foreach t,$(wildcard tests/integration/*.sh),integration:$(t)) \
	    $(foreach t,$(SAN_UNIT_BINS),san-unit:$(t)) \
	    $(foreach t,$(SAN_REPLAY_BINS),san-fuzz:$(t))

# ---- libFuzzer targets (clang) -------------------------------------------------------

FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I. $(PKG_CFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined
fuzz: $(addprefix $(FUZZ_BUILD)/,$(FUZZ_NAMES))

$(FUZZ_BUILD)/%: tests/fuzz/%.c $(LIB_SRC) $(LIB_HDR) $(wildcard tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(LDLIBS)

# ---- benchmarks ----------------------------------------------------------------------

bench: deps
	@$(MAKE) --no-print-directory all
	bench/run

# Opt-in, never part of check: installs libvirtd, Ansible and gnuplot when missing.
bench-peers: deps
	@$(MAKE) --no-print-directory all
	bench/peers/run

# ---- install -------------------------------------------------------------------------

install: $(BUILD)/declvirt
	install -D -m 0755 $(BUILD)/declvirt $(DESTDIR)$(PREFIX)/bin/declvirt
	install -d -m 0755 $(DESTDIR)/etc/declvirt/desired.d
	test -e $(DESTDIR)/etc/declvirt/agent.conf || \
	    install -D -m 0644 scripts/agent.conf.default $(DESTDIR)/etc/declvirt/agent.conf
	install -d -m 0755 $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|/usr/local/bin/declvirt|$(PREFIX)/bin/declvirt|' systemd/declvirt.service \
	    > $(DESTDIR)$(PREFIX)/lib/systemd/system/declvirt.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/declvirt.service
	install -D -m 0644 docs/declvirt.8 $(DESTDIR)$(PREFIX)/share/man/man8/declvirt.8
	install -D -m 0644 docs/agent.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/agent.conf.5
	install -D -m 0644 docs/declvirt-xml.5 $(DESTDIR)$(PREFIX)/share/man/man5/declvirt-xml.5
	install -D -m 0644 contrib/bash-completion/declvirt \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/declvirt

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/declvirt
	rm -f $(DESTDIR)$(PREFIX)/lib/systemd/system/declvirt.service
	rm -f $(DESTDIR)$(PREFIX)/share/man/man8/declvirt.8
	rm -f $(DESTDIR)$(PREFIX)/share/man/man5/agent.conf.5
	rm -f $(DESTDIR)$(PREFIX)/share/man/man5/declvirt-xml.5
	rm -f $(DESTDIR)$(PREFIX)/share/bash-completion/completions/declvirt

# Every C file of the repository, in the style of .clang-format. `make format` rewrites
# them; make check runs tests/format-check, which fails naming each file that differs.
format:
	tests/format-check --fix

format-check:
	tests/format-check

clean:
	rm -rf $(BUILD)

# Header dependencies written by -MMD (absent before the first build).
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
