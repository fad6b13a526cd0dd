#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# `declvirt validate`, `version` and `--help` through the real binary.
source "$(dirname "$0")/../helpers/lib.sh"
agent_setup

check "validate accepts the repository's examples" "$DECLVIRT" --config "$REPO/agent.conf" validate "$REPO"/desired.d/*.xml
out=$("$DECLVIRT" --config "$T/agent.conf" validate "$REPO/tests/data/invalid/pool-type-rbd.xml" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q "pool-type-rbd.xml:[0-9]*: pool type 'rbd' is not supported" <<<"$out"; then
    ok "an invalid file gives FILE:LINE: message and exit 1"
else
    not_ok "an invalid file gives FILE:LINE: message and exit 1" "rc=$rc $out"
fi

# Every hostile file is refused with its expected message through the CLI too.
bad=0
for f in "$REPO"/tests/data/invalid/*.xml; do
    want=$(cut -d: -f2- "${f%.xml}.err" | sed 's/^ //')
    got=$("$DECLVIRT" --config "$T/agent.conf" validate "$f" 2>&1 >/dev/null | head -1)
    case "$got" in *"$want"*) ;; *) bad=$((bad + 1)); echo "# $f: want '$want' got '$got'";; esac
done
[ $bad -eq 0 ] && ok "every file in tests/data/invalid is refused with its message" || not_ok "hostile files" "$bad differ"

two=$("$DECLVIRT" --config "$T/agent.conf" validate "$REPO/desired.d/example-pool.xml" "$REPO/tests/data/invalid/empty.xml" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "example-pool.xml: valid pool/example" <<<"$two" && grep -q "empty.xml: file is empty" <<<"$two" \
    && ok "several files: each reported, exit 1 when one is bad" || not_ok "several files" "rc=$rc $two"

# storage_locations
echo "storage_locations: [/srv/vm/*]" >> "$T/agent.conf"
pool_xml loc /var/tmp/elsewhere > "$T/loc.xml"
out=$("$DECLVIRT" --config "$T/agent.conf" validate "$T/loc.xml" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "pool target /var/tmp/elsewhere is outside storage_locations" <<<"$out" \
    && ok "a pool target outside storage_locations is refused" || not_ok "storage_locations" "rc=$rc $out"
pool_xml loc /srv/vm/images > "$T/loc2.xml"
check "a pool target inside storage_locations is accepted" "$DECLVIRT" --config "$T/agent.conf" validate "$T/loc2.xml"

# strict_permissions as root
if [ "$(id -u)" -eq 0 ]; then
    pool_xml ww /srv/vm/ww > "$T/ww.xml"; chmod 0666 "$T/ww.xml"
    out=$("$DECLVIRT" --config "$T/agent.conf" validate "$T/ww.xml" 2>&1); rc=$?
    [ $rc -eq 1 ] && grep -q "writable by others" <<<"$out" && ok "a file writable by others is refused as root" \
        || not_ok "world-writable refused" "rc=$rc $out"
    chown 1000 "$T/ww.xml"; chmod 0644 "$T/ww.xml"
    out=$("$DECLVIRT" --config "$T/agent.conf" validate "$T/ww.xml" 2>&1); rc=$?
    [ $rc -eq 1 ] && grep -q "owned by uid 1000, not root" <<<"$out" && ok "a file owned by another user is refused as root" \
        || not_ok "foreign owner refused" "rc=$rc $out"
else
    skip "strict_permissions" "needs root"
    skip "strict_permissions owner" "needs root"
fi

out=$("$DECLVIRT" version); [[ "$out" =~ ^declvirt\ [0-9] ]] && ok "version" || not_ok "version" "$out"
for c in agent plan status wait validate native; do
    "$DECLVIRT" --config "$T/agent.conf" $c --help >/dev/null 2>&1 && ok "$c --help" || not_ok "$c --help"
done
"$DECLVIRT" --help | grep -q "validate FILE" && ok "--help lists the commands" || not_ok "--help"
"$DECLVIRT" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] && ok "an unknown command exits 2" || not_ok "unknown command"
"$DECLVIRT" --config /nonexistent/agent.conf validate "$REPO/desired.d/example-pool.xml" >/dev/null 2>&1
[ $? -eq 2 ] && ok "a missing --config file is an error" || not_ok "missing config"
