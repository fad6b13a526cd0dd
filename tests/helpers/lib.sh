# Shared helpers for integration tests (bash). Source it; it prints TAP.
#   ok NAME | not_ok NAME [DETAIL] | skip NAME REASON | skip_all REASON
#   check NAME CMD...        ok when CMD exits 0
#   wait_until SECS CMD...   poll CMD every 50 ms until it succeeds (bounded)
#   agent_setup              a fresh $T with desired/, state/, run/ and agent.conf
#   agent_start [ARGS]       start the real agent in the background ($AGENT_PID)
#   agent_stop               SIGTERM it and wait (SIGKILL after 10 s)
# Everything started is stopped by PID and $T removed on exit, even on failure.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DECLVIRT=${DECLVIRT:-$REPO/${BUILD:-build}/declvirt}
_tap_n=0
_tap_failed=0
_cleanup_cmds=()
AGENT_PID=

ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1"; }
not_ok() {
    _tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1))
    echo "not ok $_tap_n - $1"
    [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/#   /'
    return 0
}
skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP $2"; }
skip_all() { echo "1..0 # SKIP $1"; exit 0; }
check() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}
wait_until() {
    local secs=$1; shift
    local end=$(( $(date +%s%N) + secs * 1000000000 ))
    while [ "$(date +%s%N)" -lt $end ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    "$@" >/dev/null 2>&1
}
on_exit() { _cleanup_cmds+=("$*"); }
_cleanup() {
    local rc=$?
    [ -n "${AGENT_PID:-}" ] && kill -9 "$AGENT_PID" 2>/dev/null
    local i
    for (( i=${#_cleanup_cmds[@]}-1; i>=0; i-- )); do eval "${_cleanup_cmds[$i]}" >/dev/null 2>&1; done
    [ -n "${T:-}" ] && [ -d "$T" ] && rm -rf "$T"
    echo "1..$_tap_n"
    [ $_tap_failed -eq 0 ] && exit $rc
    exit 1
}
trap _cleanup EXIT

need_root() { [ "$(id -u)" -eq 0 ] || skip_all "needs root"; }
need_prog() { command -v "$1" >/dev/null 2>&1 || skip_all "$1 is not installed"; }

# A private agent: desired/, state/, run/, pools under $T/pools.
agent_setup() {
    T=$(mktemp -d /tmp/declvirt-test.XXXXXX)
    chmod 0755 "$T"
    mkdir -p "$T/desired" "$T/state" "$T/run" "$T/pools"
    cat > "$T/agent.conf" <<CONF
desired_dir: $T/desired
state_dir: $T/state
run_dir: $T/run
resync_interval: ${RESYNC:-2s}
debounce: 10ms
removal_delay: ${REMOVAL_DELAY:-300ms}
max_parallel: 4
log_level: debug
strict_permissions: true
CONF
}

agent_start() {
    "$DECLVIRT" --config "$T/agent.conf" agent "$@" >>"$T/agent.log" 2>&1 &
    AGENT_PID=$!
    wait_until 10 test -s "$T/state/status.xml"
}

agent_stop() {
    [ -n "${AGENT_PID:-}" ] || return 0
    kill -TERM "$AGENT_PID" 2>/dev/null
    local i
    for i in $(seq 1 200); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$AGENT_PID" 2>/dev/null
    wait "$AGENT_PID" 2>/dev/null
    AGENT_PID=
}

dv() { "$DECLVIRT" --config "$T/agent.conf" "$@"; }

# phase_of KIND/NAME: the phase status.xml shows (empty when absent).
phase_of() {
    local kind=${1%%/*} rest=${1#*/} pool= name
    if [ "$kind" = volume ]; then pool=${rest%%/*}; name=${rest#*/}; else name=$rest; fi
    /usr/bin/python3 - "$T/state/status.xml" "$kind" "$pool" "$name" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    sys.exit(0)
for o in root.iter('object'):
    if o.get('kind') == sys.argv[2] and o.get('name') == sys.argv[4] and (o.get('pool') or '') == sys.argv[3]:
        print(o.get('phase')); break
PY
}
phase_is() { [ "$(phase_of "$1")" = "$2" ]; }

# Writes a dir pool file: pool_xml NAME TARGET [POLICY-ATTRS]
pool_xml() {
    cat <<XML
<pool type='dir'>
  <name>$1</name>
  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' ${3:-}/>
  <target>
    <path>$2</path>
  </target>
</pool>
XML
}

# vol_xml POOL NAME CAPACITY [FORMAT] [POLICY-ATTRS]
vol_xml() {
    cat <<XML
<volume>
  <name>$2</name>
  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' pool='$1' ${5:-}/>
  <capacity unit='bytes'>$3</capacity>
  <target>
    <format type='${4:-raw}'/>
  </target>
</volume>
XML
}

# Atomic placement as Ansible does it: a dot-file then rename.
put_atomic() { local f=$1; cat > "$(dirname "$f")/.ansible_tmp_$$_$(basename "$f")"; mv -f "$(dirname "$f")/.ansible_tmp_$$_$(basename "$f")" "$f"; }
