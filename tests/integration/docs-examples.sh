#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The examples operators copy stay valid: every docs/examples/*.xml and every ```xml
# block of README.md passes `declvirt validate`, and README's quick start is exactly
# `make run` and `make check`.
source "$(dirname "$0")/../helpers/lib.sh"
[ -x "$DECLVIRT" ] || skip_all "$DECLVIRT is not built"
T=$(mktemp -d /tmp/declvirt-docs-examples.XXXXXX)
README=$REPO/README.md

# The storage_locations of the installed agent.conf, so the examples fit a default
# installation. strict_permissions is off: this checks what the files say, not who
# owns the checkout.
cat >"$T/agent.conf" <<CONF
state_dir: $T/state
strict_permissions: false
storage_locations:
  - /var/lib/declvirt/*
  - /var/lib/libvirt/images/*
CONF

validate_each() {
    local label=$1; shift
    local f out
    for f in "$@"; do
        if out=$("$DECLVIRT" --config "$T/agent.conf" validate "$f" 2>&1); then
            ok "$label$(basename "$f") validates: ${out##*: }"
        else
            not_ok "$label$(basename "$f") validates" "$out"
        fi
    done
}

shopt -s nullglob
examples=("$REPO"/docs/examples/*.xml)
if [ ${#examples[@]} -eq 0 ]; then
    not_ok "docs/examples holds example files"
else
    validate_each "docs/examples/" "${examples[@]}"
fi

# Each ```xml ... ``` block of README.md into its own file.
mkdir -p "$T/readme"
awk -v dir="$T/readme" '
    /^```xml[[:space:]]*$/ { n++; f = sprintf("%s/block-%02d.xml", dir, n); inb = 1; next }
    inb && /^```[[:space:]]*$/ { inb = 0; close(f); next }
    inb { print > f }
' "$README"
blocks=("$T"/readme/block-*.xml)
if [ ${#blocks[@]} -eq 0 ]; then
    not_ok "README.md has xml blocks"
else
    validate_each "README.md: xml " "${blocks[@]}"
fi

# The quick start: the commands of its code (indented or fenced), comments dropped.
cmds=$(awk '
    /^## / { inqs = ($0 ~ /^## Quick start[[:space:]]*$/); next }
    !inqs { next }
    /^```/ { fence = !fence; next }
    fence || /^(    |\t)/ { sub(/#.*/, ""); gsub(/^[[:space:]]+|[[:space:]]+$/, ""); if ($0 != "") print }
' "$README")
want=$'make run\nmake check'
[ "$cmds" = "$want" ] && ok "README's quick start is exactly 'make run' and 'make check'" ||
    not_ok "README's quick start is exactly 'make run' and 'make check'" "found: ${cmds:-nothing}"
qs=$(sed -n '/^## Quick start/,/^## /p' "$README")
grep -q "Debian 12" <<<"$qs" && grep -qw "root" <<<"$qs" && ok "the quick start says Debian 12, as root" ||
    not_ok "the quick start says Debian 12, as root"
