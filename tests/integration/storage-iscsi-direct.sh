#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# iscsi-direct pools against a real iSCSI target: tgtd on 127.0.0.1 at a free port with
# its own control port (so parallel runs never share a target), two file-backed LUNs.
# Checks: both LUNs listed as volumes with their capacities (status and observed XML,
# valid against libvirt's schemas), a closed port gives a blocked pool with the reason
# in bounded time without holding up the other pool, the target going away and coming
# back, an agent restart that redoes nothing, and LUN data never written.
source "$(dirname "$0")/../helpers/lib.sh"

need_root
need_prog tgtd
need_prog tgtadm
[ -x "$DECLVIRT" ] || skip_all "$DECLVIRT is not built"

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

agent_setup
IQN=iqn.2024-01.dev.declvirt:test-$$-$RANDOM
INITIATOR=iqn.2024-01.dev.declvirt:initiator
PORT=$(free_port)
CLOSED_PORT=$(free_port)
# tgtd's management socket is /var/run/tgtd/socket.N for control port N.
CTL=
for _ in $(seq 1 50); do
    c=$(( (RANDOM % 22000) + 10000 )) # tgtadm takes -C up to 32767
    [ -e "/var/run/tgtd/socket.$c" ] || { CTL=$c; break; }
done
[ -n "$CTL" ] || skip_all "no free tgtd control port"
tgt() { tgtadm -C "$CTL" --lld iscsi "$@"; }

TGTD_PID=
start_tgtd() {
    tgtd -f -C "$CTL" --iscsi "portal=127.0.0.1:$PORT" >>"$T/tgtd.log" 2>&1 &
    TGTD_PID=$!
    wait_until 10 tgt --op show --mode target || return 1
    tgt --op new --mode target --tid 1 -T "$IQN" &&
        tgt --op new --mode logicalunit --tid 1 --lun 1 -b "$T/lun1.img" &&
        tgt --op new --mode logicalunit --tid 1 --lun 2 -b "$T/lun2.img" &&
        tgt --op bind --mode target --tid 1 -I ALL
}
stop_tgtd() {
    [ -n "$TGTD_PID" ] || return 0
    kill -TERM "$TGTD_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$TGTD_PID" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$TGTD_PID" 2>/dev/null
    wait "$TGTD_PID" 2>/dev/null
    TGTD_PID=
    rm -f "/var/run/tgtd/socket.$CTL" "/var/run/tgtd/socket.$CTL.lock"
}
on_exit stop_tgtd

# LUN 1 holds a file system with a file: the agent must never write to a LUN.
truncate -s 64M "$T/lun1.img"
truncate -s 32M "$T/lun2.img"
mkfs.ext4 -q -F "$T/lun1.img" >/dev/null 2>&1 && command -v debugfs >/dev/null &&
    echo "keep me" > "$T/keep.txt" && debugfs -w -R "write $T/keep.txt keep.txt" "$T/lun1.img" >/dev/null 2>&1
SUM_BEFORE=$(sha256sum "$T/lun1.img" | cut -d' ' -f1)

start_tgtd || { cat "$T/tgtd.log" >&2; skip_all "tgtd cannot serve a target on 127.0.0.1:$PORT here"; }

direct_xml() { # NAME PORT
    cat <<XML
<pool type='iscsi-direct'>
  <name>$1</name>
  <source>
    <host name='127.0.0.1' port='$2'/>
    <device path='$IQN'/>
    <initiator>
      <iqn name='$INITIATOR'/>
    </initiator>
  </source>
</pool>
XML
}

direct_xml idirect "$PORT" > "$T/desired/idirect.xml"
agent_start
if wait_until 20 phase_is pool/idirect ready; then ok "iscsi-direct pool is ready"; else
    not_ok "iscsi-direct pool is ready" "phase=$(phase_of pool/idirect) msg=$(st_msg pool/idirect)"; fi

VOLDIR="$T/state/volumes/idirect"
vol_cap() { # observed capacity of a volume file
    /usr/bin/python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    r = ET.parse(sys.argv[1]).getroot()
    print(r.find('capacity').text)
except Exception:
    pass
PY
}
wait_until 10 test -f "$VOLDIR/unit:0:0:2.xml"
check "LUN 1 is volume unit:0:0:1 of 64 MiB" test "$(vol_cap "$VOLDIR/unit:0:0:1.xml")" = 67108864
check "LUN 2 is volume unit:0:0:2 of 32 MiB" test "$(vol_cap "$VOLDIR/unit:0:0:2.xml")" = 33554432
check "LUN 0 (the controller) is not a volume" test ! -e "$VOLDIR/unit:0:0:0.xml"
check "status.xml lists both LUN volumes" eval 'st_has "volume/idirect/unit:0:0:1" && st_has "volume/idirect/unit:0:0:2"'
check "volume path is libvirt's" grep -q "<path>ip-127.0.0.1:$PORT-iscsi-$IQN-lun-1</path>" "$VOLDIR/unit:0:0:1.xml"
check "pool capacity is the sum of the LUNs" grep -q "<capacity unit='bytes'>100663296</capacity>" "$T/state/pools/idirect.xml"

if command -v virt-xml-validate >/dev/null; then
    check "observed pool XML validates" virt-xml-validate "$T/state/pools/idirect.xml" storagepool
    check "observed volume XML validates" virt-xml-validate "$VOLDIR/unit:0:0:1.xml" storagevol
else
    skip "observed XML validates" "virt-xml-validate is not installed"
fi

# A closed port: blocked with the reason, quickly, and the other pool stays ready.
t0=$(date +%s)
direct_xml closed "$CLOSED_PORT" > "$T/desired/closed.xml"
if wait_until 15 phase_is pool/closed blocked; then
    ok "closed portal: pool blocked within $(( $(date +%s) - t0 )) s"
else
    not_ok "closed portal: pool blocked" "phase=$(phase_of pool/closed) msg=$(st_msg pool/closed)"
fi
msg=$(st_msg pool/closed)
case "$msg" in
*"cannot connect to iSCSI portal 127.0.0.1:$CLOSED_PORT: Connection refused"*) ok "closed portal: reason names the portal ($msg)" ;;
*) not_ok "closed portal: reason names the portal" "message: $msg" ;;
esac
check "the reachable pool stays ready" phase_is pool/idirect ready
rm -f "$T/desired/closed.xml"

# Restart: nothing is re-done (iscsi-direct has no actions at all), still ready.
pool_actions() { grep -cE "pool/idirect: [a-z-]+ (done|failed)" "$T/agent.log" || true; }
agent_stop
start_lines=$(pool_actions)
agent_start
if wait_until 20 phase_is pool/idirect ready; then ok "after a restart the pool is ready"; else
    not_ok "after a restart the pool is ready" "phase=$(phase_of pool/idirect) msg=$(st_msg pool/idirect)"; fi
sleep 1
check "after a restart no pool action ran" test "$(pool_actions)" = "$start_lines"
check "after a restart both volumes are listed" eval 'st_has "volume/idirect/unit:0:0:1" && st_has "volume/idirect/unit:0:0:2"'

# The target goes away: blocked with the reason (within a resync plus a refresh);
# it comes back: ready again.
stop_tgtd
if wait_until 30 phase_is pool/idirect blocked; then ok "target gone: pool blocked ($(st_msg pool/idirect))"; else
    not_ok "target gone: pool blocked" "phase=$(phase_of pool/idirect) msg=$(st_msg pool/idirect)"; fi
start_tgtd >/dev/null 2>&1
if wait_until 30 phase_is pool/idirect ready; then ok "target back: pool ready again"; else
    not_ok "target back: pool ready again" "phase=$(phase_of pool/idirect) msg=$(st_msg pool/idirect)"; fi

agent_stop
stop_tgtd
check "LUN data untouched" test "$(sha256sum "$T/lun1.img" | cut -d' ' -f1)" = "$SUM_BEFORE"
if command -v debugfs >/dev/null && [ -f "$T/keep.txt" ]; then
    check "file on the LUN's file system intact" test "$(debugfs -R 'cat keep.txt' "$T/lun1.img" 2>/dev/null)" = "keep me"
fi
