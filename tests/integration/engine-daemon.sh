#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The `declvirt agent` process itself (issue 3 item 1): sd_notify READY, STATUS, WATCHDOG,
# RELOADING and STOPPING; SIGHUP reloads agent.conf; SIGTERM and SIGINT stop without
# touching objects, also in the middle of a batch; --once, --dry-run and plan; `status`;
# IN_Q_OVERFLOW rescans everything; the periodic resync catches drift; max_parallel.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog qemu-img
need_prog /usr/bin/python3
RESYNC=1s agent_setup

D=$T/desired
P1=$T/pools/p1
MiB=1048576
GiB=$((1024 * MiB))
NOTIFY=$T/notify.log
QFILE=/proc/sys/fs/inotify/max_queued_events

# ---- local helpers ---------------------------------------------------------------------------
# The sd_notify listener: one line per datagram, "MS<TAB>FIELDS<TAB>EXTRA", newlines in the
# datagram shown as '|'; for READY=1, EXTRA says whether status.xml existed at that moment.
/usr/bin/python3 - "$T/notify.sock" "$NOTIFY" "$T/state/status.xml" <<'PY' &
import os, socket, sys, time
sock_path, out_path, status = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
out = open(out_path, 'a', buffering=1)
while True:
    data = s.recv(65536).decode('utf-8', 'replace')
    fields = data.rstrip('\n').split('\n')
    extra = ''
    if 'READY=1' in fields:
        extra = 'status=%s' % ('yes' if os.path.exists(status) else 'no')
    out.write('%d\t%s\t%s\n' % (time.monotonic_ns() // 1000000, '|'.join(fields), extra))
PY
NOTIFY_PID=$!
on_exit "kill $NOTIFY_PID"
wait_until 5 test -S "$T/notify.sock" || skip_all "the sd_notify listener did not start"
: >> "$NOTIFY"

agent_start_n() { NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=500000 agent_start "$@"; }
nlines() { wc -l < "$1"; }
# notify_after N: the datagrams received after line N of the notify log.
notify_after() { tail -n +"$(($1 + 1))" "$NOTIFY"; }
# notify_seq N A B: after line N, a datagram with field A, later one with field B.
notify_seq() {
    notify_after "$1" | awk -F'\t' -v a="$2" -v b="$3" '
        { n = split($2, f, "|"); for (i = 1; i <= n; i++) {
              if (!seen_a && f[i] == a) { seen_a = 1; continue }
              if (seen_a && f[i] == b) ok = 1 } }
        END { exit !ok }'
}
notify_has() {
    notify_after "$1" | awk -F'\t' -v a="$2" '
        { n = split($2, f, "|"); for (i = 1; i <= n; i++) if (f[i] == a) ok = 1 }
        END { exit !ok }'
}
last_status() { awk -F'\t' '$2 ~ /^STATUS=/ { s = $2 } END { print s }' "$NOTIFY"; }
# log_after N: agent.log after line N.
log_after() { tail -n +"$(($1 + 1))" "$T/agent.log"; }

# stop_with SIGNAL [SECS]: sends it, waits for the exit (bounded); sets STOP_RC, STOP_MS.
stop_with() {
    local t0; t0=$(date +%s%N)
    kill -"$1" "$AGENT_PID"
    wait_until "${2:-10}" eval '! kill -0 "$AGENT_PID" 2>/dev/null'
    STOP_MS=$((($(date +%s%N) - t0) / 1000000))
    kill -9 "$AGENT_PID" 2>/dev/null
    wait "$AGENT_PID"; STOP_RC=$?
    AGENT_PID=
}

# What SIGTERM/SIGINT must leave as it is: the pool's entries (hidden ones too) with inode,
# size and mtime, and the last-applied records' contents.
snapshot() {
    (cd "$P1" && find . -maxdepth 1 -printf '%p %i %s %T@\n' | sort)
    (cd "$T/state/applied" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

# Volumes of pool P1 named PREFIX* in PHASE, per status.xml.
count_phase() {
    /usr/bin/python3 - "$T/state/status.xml" "$1" "$2" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(-1); sys.exit(0)
print(sum(1 for o in root.iter('object') if o.get('kind') == 'volume' and o.get('pool') == 'p1'
          and o.get('name', '').startswith(sys.argv[2]) and o.get('phase') == sys.argv[3]))
PY
}
all_ready() { [ "$(count_phase "$1" ready)" = "$2" ]; }

# qemu-img check of every file of the pool named PREFIX*: prints the ones that fail.
bad_images() {
    local f
    for f in "$P1/$1"*; do
        [ -e "$f" ] || continue
        qemu-img check -q -f qcow2 "$f" >/dev/null 2>&1 || echo "$f"
    done
}
hidden_in() { find "$1" -mindepth 1 -maxdepth 1 -name '.*' | wc -l; }

# How many actions of POOL ran at once, from the workers' debug lines after log line $2
# ("volume/POOL/NAME: create running in a worker" ... "finished in its worker"): prints
# "CREATED MOST". Each line is one write, so the log's order is the order they happened.
concurrency() {
    log_after "$2" | awk -v pre="volume/$1/" '
        index($0, pre) && / create running in a worker/ { cur++; created++; if (cur > most) most = cur }
        index($0, pre) && / create finished in its worker/ { cur-- }
        END { print created + 0, most + 0 }'
}

# ---- a converged agent, with sd_notify ---------------------------------------------------------
pool_xml p1 "$P1" > "$D/p1.xml"
vol_xml p1 v1 $MiB raw > "$D/v1.xml"
vol_xml p1 q1 $((64 * MiB)) qcow2 > "$D/q1.xml"
agent_start_n
check "the pool and its volumes converge" wait_until 10 \
    eval 'phase_is pool/p1 ready && phase_is volume/p1/v1 ready && phase_is volume/p1/q1 ready'

# READY=1 once the first pass has run: status.xml is there when it arrives.
check "READY=1 arrives" wait_until 5 notify_has 0 READY=1
first_ready=$(awk -F'\t' '$2 ~ /^STATUS=/ { s = 1 }
    $2 ~ /(^|\|)READY=1(\||$)/ { print (s ? "status-first" : "no-status-first"), $3; exit }' "$NOTIFY")
check "READY=1 comes after the first pass (status.xml written, STATUS= sent before)" \
    test "$first_ready" = "status-first status=yes"
check "STATUS= carries the summary of the converged pass" \
    wait_until 5 eval '[ "$(last_status)" = "STATUS=3 objects: 3 ready" ]'
check "the log says the same summary" grep -qF "converged: 3 objects: 3 ready" "$T/agent.log"

# WATCHDOG=1: with WATCHDOG_USEC=500000, several pings a second and never 500 ms apart.
n0=$(nlines "$NOTIFY")
sleep 2 # an observation window, not a wait for something
wd=$(notify_after "$n0" | awk -F'\t' '
    $2 == "WATCHDOG=1" { c++; if (p && $1 - p > m) m = $1 - p; p = $1 }
    END { print c + 0, m + 0 }')
check "WATCHDOG=1 at least 4 times in 2 s (got ${wd% *})" test "${wd% *}" -ge 4
check "WATCHDOG=1 never more than 500 ms apart (longest gap ${wd#* } ms)" test "${wd#* }" -gt 0 -a "${wd#* }" -lt 500

# ---- status -------------------------------------------------------------------------------------
table=$(dv status 2>&1); rc=$?
check "status exits 0" test $rc = 0
check "status prints a table header" eval 'grep -qE "^KIND +NAME +PHASE +SINCE +MESSAGE" <<<"$table"'
check "status lists the pool with its phase" eval 'grep -qE "^pool +p1 +ready " <<<"$table"'
check "status lists the volumes as POOL/NAME with their phase" \
    eval 'grep -qE "^volume +p1/v1 +ready " <<<"$table" && grep -qE "^volume +p1/q1 +ready " <<<"$table"'
check "status ends with the summary" \
    eval 'tail -1 <<<"$table" | grep -qE "^3 objects: 3 ready, 0 failed, 0 blocked; 0 invalid files; .*converged$"'
json=$(dv status --json 2>&1)
check "status --json parses and lists kind/name/phase of every object" /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
got = sorted((o["kind"], o["name"], o["pool"] or "", o["phase"]) for o in d["objects"])
want = [("pool", "p1", "", "ready"), ("volume", "q1", "p1", "ready"), ("volume", "v1", "p1", "ready")]
assert got == want, got
assert d["converged"] is True and d["counts"]["ready"] == 3, d["counts"]
' "$json"
check "status --json says the agent runs, with its PID" /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["agent_running"] is True and d["agent_pid"] == int(sys.argv[2]), (d["agent_running"], d["agent_pid"])
' "$json" "$AGENT_PID"
check "status says nothing about a missing agent while one runs" eval '! grep -q "no agent" <<<"$table"'

# ---- SIGHUP -------------------------------------------------------------------------------------
reloads() { log_count "configuration reloaded"; }
created_logged() { grep -qF "volume/p1/$1: create running in a worker" "$T/agent.log"; }
vol_xml p1 qa $MiB qcow2 > "$D/qa.xml"
check "log_level debug: a qcow2 creation is logged by its worker" \
    wait_until 10 eval 'phase_is volume/p1/qa ready && created_logged qa'

r0=$(reloads) n0=$(nlines "$NOTIFY")
sed -i 's/^log_level: .*/log_level: info/' "$T/agent.conf"
kill -HUP "$AGENT_PID"
check "SIGHUP: the agent reloads agent.conf" wait_until 5 eval '[ "$(reloads)" -gt "$r0" ]'
check "SIGHUP: RELOADING=1 then READY=1" wait_until 5 notify_seq "$n0" RELOADING=1 READY=1
vol_xml p1 qb $MiB qcow2 > "$D/qb.xml"
check "the reloaded volume is created" wait_until 10 phase_is volume/p1/qb ready
check "log_level info after the reload: no debug line for the next creation" eval '! created_logged qb'

# A broken agent.conf: reported with FILE:LINE, the running configuration (info) kept.
r0=$(reloads) e0=$(log_count "reload failed") n0=$(nlines "$NOTIFY")
cp "$T/agent.conf" "$T/agent.conf.good"
sed -i 's/^log_level: .*/log_level: debug/' "$T/agent.conf"
echo "debounse: 20ms" >> "$T/agent.conf"
bad_line=$(grep -n '^debounse:' "$T/agent.conf" | cut -d: -f1)
kill -HUP "$AGENT_PID"
check "a broken agent.conf on SIGHUP is reported" wait_until 5 eval '[ "$(log_count "reload failed")" -gt "$e0" ]'
check "the report names agent.conf:$bad_line" grep -qF "$T/agent.conf:$bad_line: unknown key 'debounse'" "$T/agent.log"
check "nothing was reloaded" test "$(reloads)" = "$r0"
check "READY=1 follows the failed reload too" wait_until 5 notify_seq "$n0" RELOADING=1 READY=1
check "the agent keeps running" kill -0 "$AGENT_PID"
vol_xml p1 qc $MiB qcow2 > "$D/qc.xml"
check "it keeps converging" wait_until 10 phase_is volume/p1/qc ready
check "on the old configuration (log_level info: no debug line)" eval '! created_logged qc'
cp "$T/agent.conf.good" "$T/agent.conf"
sed -i 's/^log_level: .*/log_level: debug/' "$T/agent.conf"
r0=$(reloads)
kill -HUP "$AGENT_PID"
check "a fixed agent.conf reloads again" wait_until 5 eval '[ "$(reloads)" -gt "$r0" ]'
vol_xml p1 qd $MiB qcow2 > "$D/qd.xml"
check "log_level debug is back" wait_until 10 eval 'phase_is volume/p1/qd ready && created_logged qd'

# removal_delay (a timing key: reloaded, says agent.conf(5)) raised from 300 ms to an hour:
# a volume whose file is removed must stay managed well past the old delay.
cp "$T/agent.conf" "$T/agent.conf.good"
vol_xml p1 rd $MiB raw > "$D/rd.xml"
wait_until 10 phase_is volume/p1/rd ready
sed -i 's/^removal_delay: .*/removal_delay: 1h/' "$T/agent.conf"
r0=$(reloads)
kill -HUP "$AGENT_PID"
wait_until 5 eval '[ "$(reloads)" -gt "$r0" ]'
rm "$D/rd.xml"
check "after a reload raising removal_delay, a removed file's volume stays managed past the old delay" \
    eval 'holds_for 1.5 st_is volume/p1/rd managed yes || { grep -F "volume/p1/rd" "$T/agent.log" | tail -2; false; }'
cp "$T/agent.conf.good" "$T/agent.conf"
r0=$(reloads)
kill -HUP "$AGENT_PID"
wait_until 5 eval '[ "$(reloads)" -gt "$r0" ]'

# storage_locations narrowed by a reload: a new pool outside them must be refused.
printf 'storage_locations:\n  - %s/pools/*\n' "$T" >> "$T/agent.conf"
r0=$(reloads)
kill -HUP "$AGENT_PID"
wait_until 5 eval '[ "$(reloads)" -gt "$r0" ]'
pool_xml px "$T/outside/px" > "$D/px.xml"
wait_pass; wait_pass
check "after a reload narrowing storage_locations, a pool outside them is not built" \
    eval '[ ! -e "$T/outside/px" ] && st_file "$D/px.xml" | grep -q "outside storage_locations" ||
          { grep -F "pool/px" "$T/agent.log" | tail -2; false; }'
rm -f "$D/px.xml"
cp "$T/agent.conf.good" "$T/agent.conf"
r0=$(reloads)
kill -HUP "$AGENT_PID"
wait_until 5 eval '[ "$(reloads)" -gt "$r0" ]'

# ---- periodic resync (1 s) catches drift without a file event --------------------------------
wait_pass
c0=$(log_count "volume/p1/v1: creating")
ino0=$(stat -c %i "$P1/v1")
rm "$P1/v1" # the image, not the desired file: nothing in desired_dir changes
check "a volume removed behind the agent's back is created again by the resync" \
    wait_until 5 eval '[ -f "$P1/v1" ] && phase_is volume/p1/v1 ready'
check "with its size" test "$(stat -c %s "$P1/v1" 2>/dev/null)" = $MiB
check "the log shows the re-creation" test "$(log_count "volume/p1/v1: creating")" -gt "$c0"
echo "# inode before $ino0, after $(stat -c %i "$P1/v1" 2>/dev/null)"

# ---- SIGTERM touches nothing ----------------------------------------------------------------------
wait_until 10 eval 'st_root converged | grep -qx yes'
wait_pass
snap=$(snapshot)
n0=$(nlines "$NOTIFY")
stop_with TERM
check "SIGTERM: the agent exits 0 (rc $STOP_RC)" test "$STOP_RC" = 0
check "SIGTERM: it exits promptly (${STOP_MS} ms)" test "$STOP_MS" -lt 2000
check "SIGTERM: STOPPING=1 is sent" notify_has "$n0" STOPPING=1
check "SIGTERM: the log says objects are left as they are" \
    grep -qF "received Terminated; stopping (objects are left as they are)" "$T/agent.log"
snap_after=$(snapshot)
check "SIGTERM: the pool and volumes keep inode, size and mtime; records kept" \
    eval '[ "$snap" = "$snap_after" ] || { diff <(echo "$snap") <(echo "$snap_after"); false; }'
check "SIGTERM: status.xml is still there" test -s "$T/state/status.xml"
check "SIGTERM: the last-applied records are still there" test -s "$T/state/applied/volume@p1@v1.json"

# ---- SIGINT likewise --------------------------------------------------------------------------------
agent_start_n
check "after a restart everything is still ready" wait_until 10 eval 'st_root converged | grep -qx yes'
wait_pass
snap=$(snapshot)
n0=$(nlines "$NOTIFY")
stop_with INT
check "SIGINT: the agent exits 0 (rc $STOP_RC)" test "$STOP_RC" = 0
check "SIGINT: it exits promptly (${STOP_MS} ms)" test "$STOP_MS" -lt 2000
check "SIGINT: STOPPING=1 is sent" notify_has "$n0" STOPPING=1
snap_after=$(snapshot)
check "SIGINT: the pool and volumes keep inode, size and mtime; records kept" \
    eval '[ "$snap" = "$snap_after" ] || { diff <(echo "$snap") <(echo "$snap_after"); false; }'
check "SIGINT: status.xml is still there" test -s "$T/state/status.xml"

# ---- SIGTERM while a batch of qcow2 volumes is being created ----------------------------------
NB=16
agent_start_n
l0=$(nlines "$T/agent.log")
mkdir "$T/batch"
for i in $(seq -w 1 $NB); do
    vol_xml_alloc p1 "b$i" $((32 * GiB)) $((32 * GiB)) qcow2 > "$T/batch/b$i.xml" # ~0.15 s each
done
mv "$T/batch" "$D/batch" # one rename: the whole batch in one pass
if wait_until 10 eval 'log_after "$l0" | grep -q "create running in a worker"'; then
    stop_with TERM 60
    ok "SIGTERM sent while the first volumes are being created"
else
    stop_with TERM 60
    not_ok "SIGTERM sent while the first volumes are being created" "$(log_after "$l0" | tail -5)"
fi
made=$(find "$P1" -maxdepth 1 -name 'b*' | wc -l)
echo "# $made of $NB volumes there after the stop (${STOP_MS} ms)"
check "SIGTERM in a batch: the agent exits 0 (rc $STOP_RC)" test "$STOP_RC" = 0
check "SIGTERM in a batch: it says it waits for running actions" \
    eval 'log_after "$l0" | grep -qE "waiting for [0-9]+ running actions? to finish"'
check "SIGTERM in a batch: no temporary file is left in the pool" test "$(hidden_in "$P1")" = 0
check "SIGTERM in a batch: every volume there is a whole qcow2 image" test -z "$(bad_images b)"
# Jobs a worker took just before the signal may log their command just after it: at most
# max_parallel (4) of them. Every other creation logged after the signal was started after it.
started_after=$(log_after "$l0" |
    awk '/received Terminated/ { f = 1; next } f && /running qemu-img create/ { c++ } END { print c + 0 }')
check "SIGTERM in a batch: no queued action starts after the signal ($started_after after it)" \
    test "$started_after" -le 4
agent_start_n
check "after a restart every batch volume converges" wait_until 30 all_ready b $NB
check "exactly $NB batch volumes, no temporary file" \
    eval '[ "$(find "$P1" -maxdepth 1 -name "b*" | wc -l)" = $NB ] && [ "$(hidden_in "$P1")" = 0 ]'
check "every batch volume passes qemu-img check" test -z "$(bad_images b)"
check "every batch volume has its capacity" eval '
    for f in "$P1"/b*; do
        qemu-img info -U --output=json "$f" | grep -q "\"virtual-size\": $((32 * GiB))," || exit 1
    done'
agent_stop

# ---- max_parallel ----------------------------------------------------------------------------------
# Concurrency is read from the workers' debug lines (see concurrency above): one worker runs
# the six creations one after the other, four let them overlap.
mp_ready() { local i; for i in 1 2 3 4 5 6; do phase_is "volume/$1/m$i" ready || return 1; done; }
mp_round() { # POOL MAXPAR: sets MP to "CREATED MAX"
    local pool=$1 dir=$T/pools/$1 i l
    sed -i "s/^max_parallel: .*/max_parallel: $2/" "$T/agent.conf"
    pool_xml "$pool" "$dir" > "$D/$pool.xml"
    l=$(nlines "$T/agent.log")
    agent_start_n
    wait_until 10 phase_is "pool/$pool" ready
    mkdir "$T/stage-$pool"
    for i in 1 2 3 4 5 6; do
        vol_xml_alloc "$pool" "m$i" $((32 * GiB)) $((32 * GiB)) qcow2 > "$T/stage-$pool/m$i.xml"
    done
    mv "$T/stage-$pool" "$D/stage-$pool"
    wait_until 20 mp_ready "$pool"
    agent_stop
    MP=$(concurrency "$pool" "$l")
}
mp_round p2 1
check "max_parallel 1: the workers ran the 6 creations (created, most at once: $MP)" test "${MP% *}" = 6
check "max_parallel 1: never two creations at once" test "${MP#* }" = 1
mp_round p3 4
check "max_parallel 4: the workers ran the 6 creations ($MP)" test "${MP% *}" = 6
check "max_parallel 4: creations overlap" test "${MP#* }" -ge 2
sed -i "s/^max_parallel: .*/max_parallel: 4/" "$T/agent.conf"

# ---- --once, --dry-run, plan -----------------------------------------------------------------
P4=$T/pools/p4
pool_xml p4 "$P4" > "$D/p4.xml"
vol_xml p4 o1 $MiB raw > "$D/o1.xml"
res=$(timeout 30 "$DECLVIRT" --config "$T/agent.conf" agent --once 2>&1); rc=$?
check "agent --once converges a pool and a volume and exits 0 (rc $rc)" test $rc = 0
check "agent --once made them" test -d "$P4" -a "$(stat -c %s "$P4/o1" 2>/dev/null)" = $MiB
check "agent --once says converged" eval 'grep -q "converged: " <<<"$res"'
check "agent --once recorded them" eval 'phase_is pool/p4 ready && phase_is volume/p4/o1 ready'
vol_xml p4 o1 $((MiB / 2)) raw > "$D/o1.xml"
res=$(timeout 30 "$DECLVIRT" --config "$T/agent.conf" agent --once 2>&1); rc=$?
check "agent --once with a shrink that cannot converge exits 1 (rc $rc)" test $rc = 1
check "it says why" eval 'grep -q "shrinking from $MiB to $((MiB / 2)) bytes is refused" <<<"$res"'
check "the volume keeps its size" test "$(stat -c %s "$P4/o1")" = $MiB
vol_xml p4 o1 $MiB raw > "$D/o1.xml"

# Removed files in --once: removal_delay (300 ms) is waited out, the files are read again,
# the removals are carried out (the volume, then its pool) and --once exits 0.
pool_xml p6 "$T/pools/p6" "on-remove='delete'" > "$D/p6.xml"
vol_xml p6 r6 $MiB raw "on-remove='delete'" > "$D/r6.xml"
res=$(timeout 30 "$DECLVIRT" --config "$T/agent.conf" agent --once 2>&1); rc=$?
check "agent --once makes pool p6 and volume r6 (rc $rc)" eval '[ $rc = 0 ] && test -f "$T/pools/p6/r6"'
rm "$D/p6.xml" "$D/r6.xml"
res=$(timeout 30 "$DECLVIRT" --config "$T/agent.conf" agent --once 2>&1); rc=$?
check "agent --once with a pool's and a volume's files removed exits 0 (rc $rc)" \
    eval '[ $rc = 0 ] || { tail -5 <<<"$res"; false; }'
check "agent --once waited out removal_delay" eval 'grep -q "(removal_delay) before a removal" <<<"$res"'
check "agent --once deleted the volume and the pool" test ! -e "$T/pools/p6"
check "agent --once: both left status.xml" eval '[ -z "$(phase_of pool/p6)" ] && [ -z "$(phase_of volume/p6/r6)" ]'
# A file put back while --once waits cancels the removal. The delay (5 s) is long only so
# that putting the file back certainly happens within it.
vol_xml p4 r7 $MiB raw "on-remove='delete'" > "$D/r7.xml"
timeout 30 "$DECLVIRT" --config "$T/agent.conf" agent --once >/dev/null 2>&1
ino=$(stat -c %i "$P4/r7" 2>/dev/null)
check "agent --once makes volume r7" test -n "$ino"
cp "$D/r7.xml" "$T/r7.xml"
rm "$D/r7.xml"
sed -i 's/^removal_delay: .*/removal_delay: 5s/' "$T/agent.conf"
timeout 30 "$DECLVIRT" --config "$T/agent.conf" agent --once >"$T/once.log" 2>&1 &
once_pid=$!
wait_until 10 grep -q "(removal_delay) before a removal" "$T/once.log"
cp "$T/r7.xml" "$D/r7.xml"
wait "$once_pid"; rc=$?
sed -i 's/^removal_delay: .*/removal_delay: 300ms/' "$T/agent.conf"
check "agent --once with the file put back during removal_delay exits 0 (rc $rc)" test $rc = 0
check "the file put back cancelled the removal: the same volume is there" \
    test "$(stat -c %i "$P4/r7" 2>/dev/null)" = "$ino"
check "and it is ready" phase_is volume/p4/r7 ready

vol_xml p4 o2 $MiB raw > "$D/o2.xml"
pool_xml p5 "$T/pools/p5" > "$D/p5.xml"
vol_xml p5 o3 $MiB raw > "$D/o3.xml"
applied_before=$(ls "$T/state/applied" | sort)
res=$(timeout 30 "$DECLVIRT" --config "$T/agent.conf" agent --once --dry-run 2>&1); rc=$?
check "agent --once --dry-run prints the creations" \
    eval 'grep -qE "^volume/p4/o2 +create" <<<"$res" && grep -qE "^pool/p5 +build" <<<"$res"'
check "agent --once --dry-run exits (rc $rc)" test $rc != 124
n0=$(nlines "$NOTIFY") l0=$(nlines "$T/agent.log")
NOTIFY_SOCKET=$T/notify.sock "$DECLVIRT" --config "$T/agent.conf" agent --dry-run >>"$T/agent.log" 2>&1 &
AGENT_PID=$!
check "agent --dry-run runs its first pass (READY=1)" wait_until 10 notify_has "$n0" READY=1
check "agent --dry-run says it changes nothing" eval 'log_after "$l0" | grep -qF "(dry run: nothing is changed)"'
sleep 0.3 # a few more passes of the dry-run agent's loop (resync 1 s, debounce 10 ms)
stop_with TERM
check "agent --dry-run exits 0 on SIGTERM (rc $STOP_RC)" test "$STOP_RC" = 0
res=$(dv plan 2>&1); rc=$?
check "plan exits 0 and prints the creations" eval '[ $rc = 0 ] && grep -qE "^volume/p4/o2 +create" <<<"$res"'
check "--dry-run and plan created no volume" test ! -e "$P4/o2"
check "--dry-run and plan built no pool" test ! -e "$T/pools/p5"
check "--dry-run and plan wrote no last-applied record" test "$(ls "$T/state/applied" | sort)" = "$applied_before"
rm -f "$D/o2.xml" "$D/p5.xml" "$D/o3.xml"

# ---- IN_Q_OVERFLOW: a full rescan -----------------------------------------------------------
# The queue limit is taken when the inotify instance is made: lowered to 16 only until the
# agent has its inotify fd. The resync is an hour, so only the rescan can find the files: the
# 16 events that fit in the queue are all in noise/, the volume files are in ovf/.
sed -i 's/^resync_interval: .*/resync_interval: 1h/' "$T/agent.conf"
mkdir -m 0755 "$D/noise" "$D/ovf"
has_inotify() { ls -l "/proc/$1/fd" 2>/dev/null | grep -q 'anon_inode:inotify'; }
old_q=$(cat "$QFILE")
on_exit "echo $old_q > $QFILE"
before=$(stat -c '%i %.9Y' "$T/state/status.xml" 2>/dev/null)
echo 16 > "$QFILE"
"$DECLVIRT" --config "$T/agent.conf" agent >>"$T/agent.log" 2>&1 &
AGENT_PID=$!
wait_until 5 has_inotify "$AGENT_PID"
echo "$old_q" > "$QFILE"
check "max_queued_events is restored at once" test "$(cat "$QFILE")" = "$old_q"
wait_until 10 eval '[ -s "$T/state/status.xml" ] && [ "$(stat -c "%i %.9Y" "$T/state/status.xml")" != "$before" ]'
l0=$(nlines "$T/agent.log")
kill -STOP "$AGENT_PID"
for i in $(seq 1 30); do echo x > "$D/noise/n$i.txt"; done
for i in $(seq -w 1 60); do vol_xml p1 "o$i" $MiB raw > "$D/ovf/o$i.xml"; done
kill -CONT "$AGENT_PID"
if wait_until 20 all_ready o 60; then ok "after an overflow every one of the 60 volumes converges"; else
    not_ok "after an overflow every one of the 60 volumes converges" \
        "$(count_phase o ready) ready; $(log_after "$l0" | tail -5)"; fi
check "the 60 volume files exist" test "$(find "$P1" -maxdepth 1 -name 'o*' | wc -l)" = 60
check "the log reports the overflow and the rescan" \
    eval 'log_after "$l0" | grep -qi "overflow"'
check "the agent still watches: a new file is picked up at once" eval '
    vol_xml p1 late $MiB raw > "$D/ovf/late.xml" && wait_until 5 phase_is volume/p1/late ready'
agent_stop
