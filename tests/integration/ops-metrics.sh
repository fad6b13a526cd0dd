#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Monitoring of a real agent: metrics.prom (and its metrics_file copy) through
# `promtool check metrics`, `declvirt status --check` exit codes 0/1/2/3, and the log
# as journald reads it (<N> priority prefixes, one line per action, log_level).
source "$(dirname "$0")/../helpers/lib.sh"
[ -x "$DECLVIRT" ] || skip_all "$DECLVIRT is not built"

RESYNC=500ms agent_setup
mkdir -p "$T/textfile"
echo "metrics_file: $T/textfile/declvirt.prom" >>"$T/agent.conf"
pool_xml p1 "$T/pools/p1" >"$T/desired/p1.xml"
vol_xml p1 v1.raw 1048576 >"$T/desired/v1.xml"
agent_start
check "the agent converges" dv wait --timeout 20

check_is() { # check_is NAME EXPECTED-EXIT PATTERN [ARGS...]
    local name=$1 want=$2 pat=$3 out rc; shift 3
    out=$(dv status --check "$@" 2>&1); rc=$?
    if [ $rc -eq "$want" ] && grep -Eq "$pat" <<<"$out" && [ "$(wc -l <<<"$out")" -eq 1 ]; then
        ok "$name"
    else
        not_ok "$name" "exit $rc (want $want): $out"
    fi
}

if command -v promtool >/dev/null 2>&1; then
    out=$(promtool check metrics <"$T/state/metrics.prom" 2>&1) && [ -z "$out" ] &&
        ok "promtool accepts metrics.prom" || not_ok "promtool accepts metrics.prom" "$out"
    out=$(promtool check metrics <"$T/textfile/declvirt.prom" 2>&1) && [ -z "$out" ] &&
        ok "promtool accepts the metrics_file copy" || not_ok "promtool accepts the metrics_file copy" "$out"
else
    skip "promtool accepts metrics.prom" "promtool is not installed (Debian package prometheus)"
    skip "promtool accepts the metrics_file copy" "promtool is not installed (Debian package prometheus)"
fi
grep -qx 'declvirt_converged 1' "$T/textfile/declvirt.prom" && ok "metrics_file says converged" ||
    not_ok "metrics_file says converged" "$(grep converged "$T/textfile/declvirt.prom" 2>&1)"
grep -q '^declvirt_object_ready{kind="volume",name="v1.raw",pool="p1"} 1$' "$T/state/metrics.prom" &&
    ok "the volume's ready gauge is 1" || not_ok "the volume's ready gauge is 1" "$(grep object_ready "$T/state/metrics.prom")"
n=$(grep -c '^# HELP ' "$T/state/metrics.prom"); m=$(grep -c '^# TYPE ' "$T/state/metrics.prom")
[ "$n" -gt 5 ] && [ "$n" = "$m" ] && ok "every family has HELP and TYPE" || not_ok "every family has HELP and TYPE" "$n HELP, $m TYPE"

check_is "OK: exit 0, one line with perfdata" 0 \
    '^DECLVIRT OK - 2 objects ready \| objects=2 ready=2 failed=0 blocked=0 invalid_files=0 last_pass_age=[0-9]+s$'
check_is "one object: OK" 0 '^DECLVIRT OK - 1 object ready \|' volume/p1/v1.raw

echo '<pool type="dir"><name>broken' >"$T/desired/broken.xml"
wait_until 10 eval '[ "$(st_file "$T/desired/broken.xml")" != "" ]'
check_is "an invalid file: WARNING, exit 1" 1 '^DECLVIRT WARNING - 1 invalid file \|.* invalid_files=1 '

pool_xml nobuild "$T/pools/missing" "build='no'" >"$T/desired/nobuild.xml"
wait_until 10 eval 'st_is pool/nobuild phase failed || st_is pool/nobuild phase blocked'
check_is "a failed or blocked object: CRITICAL, exit 2" 2 '^DECLVIRT CRITICAL - (failed|blocked): pool/nobuild.*; 1 invalid file \|'
check_is "an object that is not there: CRITICAL" 2 '^DECLVIRT CRITICAL - pool/nosuch is not in ' pool/nosuch
check_is "a bad object id: UNKNOWN, exit 3" 3 '^DECLVIRT UNKNOWN - ' 'bogus'
out=$(dv status --check --bogus 2>/dev/null); rc=$?
[ $rc -eq 3 ] && ok "a usage error with --check: exit 3" || not_ok "a usage error with --check: exit 3" "exit $rc $out"

rm -f "$T/desired/broken.xml" "$T/desired/nobuild.xml"
wait_until 10 eval 'dv status --check >/dev/null'
check_is "back to OK once the files are gone" 0 '^DECLVIRT OK - '

agent_stop
bad=$(grep -vE '^<[0-7]>' "$T/agent.log" | head -3)
[ -z "$bad" ] && ok "every log line has a <N> priority prefix" || not_ok "every log line has a <N> priority prefix" "$bad"
grep -qx '<6>pool/p1: ready' "$T/agent.log" && grep -qx '<6>volume/p1/v1.raw: ready' "$T/agent.log" &&
    grep -Eq '^<4>pool/nobuild: (failed|blocked): ' "$T/agent.log" &&
    ok "one line per action and result, with kind and name" ||
    not_ok "one line per action and result, with kind and name" "$(grep -E 'p1|nobuild' "$T/agent.log" | head)"
# The agent just stopped: its last pass is recent, but the lock is free. No wait for the
# last pass to age: the lock tells at once.
lock_before=$(stat -c '%i %s %Y' "$T/state/.lock")
check_is "no agent: CRITICAL at once, said plainly" 2 \
    "^DECLVIRT CRITICAL - no agent is running \(the lock on $T/state/\.lock is free\); last pass [0-9]+s ago \|"
table=$(dv status 2>"$T/status.err"); rc=$?
check "no agent: status exits 0 and says so first, on stderr" eval '[ $rc = 0 ] &&
    head -1 "$T/status.err" | grep -q "^declvirt status: no agent is running (the lock on $T/state/.lock is free)"'
check "no agent: the summary gives the last pass as history" \
    eval 'tail -1 <<<"$table" | grep -qE "; no agent is running; at its last pass \([0-9]+s ago\): (not )?converged$"'
check "no agent: status --json has agent_running false" eval \
    'dv status --json | python3 -c "import json,sys; d=json.load(sys.stdin); assert d[\"agent_running\"] is False and d[\"agent_pid\"] is None"'
check "the probes left the lock file as it was" test "$(stat -c '%i %s %Y' "$T/state/.lock")" = "$lock_before"

mkdir -p "$T/empty"
sed "s|^state_dir: .*|state_dir: $T/empty|" "$T/agent.conf" >"$T/empty.conf"
out=$("$DECLVIRT" --config "$T/empty.conf" status --check 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q '^DECLVIRT CRITICAL - no agent is running .*status.xml' <<<"$out" &&
    ok "no status.xml and no agent: CRITICAL, exit 2" ||
    not_ok "no status.xml and no agent: CRITICAL, exit 2" "exit $rc: $out"
check "the probe created no lock file" test ! -e "$T/empty/.lock"

sed 's/^log_level: .*/log_level: warning/' "$T/agent.conf" >"$T/quiet.conf"
pool_xml nobuild2 "$T/pools/missing2" "build='no'" >"$T/desired/nobuild2.xml"
"$DECLVIRT" --config "$T/quiet.conf" agent --once >/dev/null 2>"$T/quiet.log"
bad=$(grep -vE '^<[0-4]>' "$T/quiet.log" | head -3)
[ -z "$bad" ] && grep -q '^<4>pool/nobuild2: ' "$T/quiet.log" && ok "log_level: warning drops info and debug" ||
    not_ok "log_level: warning drops info and debug" "$bad $(cat "$T/quiet.log")"
