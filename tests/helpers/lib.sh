# SPDX-License-Identifier: LGPL-2.1-or-later
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

# agent_setup with a QEMU section (TCG); every QEMU the test's agent started is killed by
# PID on exit, even on failure.
agent_setup_qemu() {
    agent_setup
    cat >> "$T/agent.conf" <<CONF
qemu:
  binary: /usr/bin/qemu-system-x86_64
  accel: tcg
CONF
    on_exit 'for f in "$T"/run/qemu/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")"; done'
}

# netns_setup NAME...: a network namespace NAME-PID for each NAME, loopback up, removed on
# exit after everything still running in it is killed by PID; skips the whole test where
# namespaces cannot be made. NS is the first (the agent's, see agent_start_ns), GS the
# second if there is one.
netns_setup() {
    ip netns add "dvt-probe-$$" 2>/dev/null || skip_all "cannot create network namespaces here"
    ip netns del "dvt-probe-$$"
    local n
    _netns=()
    for n in "$@"; do
        ip netns add "$n-$$"
        on_exit ip netns del "$n-$$"
        _netns+=("$n-$$")
        ip -n "$n-$$" link set lo up
    done
    on_exit 'for n in "${_netns[@]}"; do for p in $(ip netns pids "$n"); do kill -9 $p; done; done'
    NS=${_netns[0]}
    GS=${_netns[1]:-}
}
in_ns() { ip netns exec "$NS" "$@"; }
# alive PID: PID runs and is not a zombie (whoever reaps it may be slow to).
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
# qemu_pid NAME: the PID in domain NAME's pidfile (the agent writes it), empty when none.
qemu_pid() { cat "$T/run/qemu/$1.pid" 2>/dev/null; }
# port_forwards PORT: bridge port PORT in $NS has reached the forwarding state. With STP on,
# the kernel holds a new port in listening and learning for at least 2 s each
# (forward_delay cannot go below 2 s) and drops what crosses it; dnsmasq then pings an
# address for up to 3 s before it offers it: a DHCP client that starts before the port
# forwards can run out of tries.
port_forwards() { in_ns bridge link show dev "$1" | grep -q "state forwarding"; }
# qmp SOCKET COMMAND: qmp_json without arguments (below).
qmp() { qmp_json "$1" "$2"; }
# The agent in $NS: agent_start with the program wrapped. nsenter, not ip netns exec:
# that one mounts a fresh /sys, without the cgroup trees QEMU's and containers' cgroups
# are made in.
agent_start_ns() {
    local before; before=$(stat -c '%i %.9Y' "$T/state/status.xml" 2>/dev/null)
    nsenter --net="/run/netns/$NS" "$DECLVIRT" --config "$T/agent.conf" agent >>"$T/agent.log" 2>&1 &
    AGENT_PID=$!
    wait_until 10 eval '[ -s "$T/state/status.xml" ] &&
        [ "$(stat -c "%i %.9Y" "$T/state/status.xml" 2>/dev/null)" != "$before" ]'
}

# ---- A real Linux guest (the domain-boot technique) ------------------------------------
# guest_kernel: KERNEL, the newest kernel image of the host's linux-image packages
# (DECLVIRT_TEST_KERNEL overrides), and KVER, the version its modules are installed under;
# skips the whole test when there is none.
guest_kernel() {
    KERNEL=${DECLVIRT_TEST_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
    [ -n "$KERNEL" ] && [ -r "$KERNEL" ] ||
        skip_all "no kernel image in /boot (install linux-image-amd64)"
    KVER=${KERNEL##*/vmlinuz-}
}

# guest_initramfs DIR OUT MODULE... < INIT: a gzipped newc initramfs OUT of the tree DIR
# (which may already hold the caller's files) with busybox as /bin/busybox and /bin/sh
# (with its libraries when it is linked dynamically), /init read from stdin, and each
# MODULE of kernel $KVER (guest_kernel) that is a module, after the modules it depends
# on. insmod resolves nothing, so they are copied decompressed as
# /lib/modules/NN-NAME.ko: `for m in /lib/modules/*.ko; do insmod "$m"; done` loads them
# in order. Skips the whole test when something is missing.
guest_initramfs() {
    local dir=$1 out=$2 m a lib
    shift 2
    need_prog busybox
    need_prog gzip
    need_prog modinfo
    for a in cpio insmod sh; do
        busybox --list | grep -qx "$a" || skip_all "busybox has no $a applet"
    done
    mkdir -p "$dir"/{bin,proc,sys,dev,lib/modules}
    cp "$(command -v busybox)" "$dir/bin/busybox"
    ln -sf busybox "$dir/bin/sh"
    for lib in $(ldd "$dir/bin/busybox" 2>/dev/null | grep -o '/[^ ]*'); do
        mkdir -p "$dir$(dirname "$lib")"
        cp -L "$lib" "$dir$lib"
    done
    _guest_mods=()
    for m in "$@"; do _guest_module "$dir" "$m"; done
    cat > "$dir/init"
    chmod 0755 "$dir/init"
    (cd "$dir" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$out")
    [ -s "$out" ] || skip_all "cannot build the initramfs"
}
# _guest_module DIR NAME: NAME's dependencies, then NAME, unless built in or already there.
_guest_module() {
    local dir=$1 name=${2//-/_} file dep ko
    [[ " ${_guest_mods[*]} " == *" $name "* ]] && return 0
    file=$(modinfo -k "$KVER" -n "$name" 2>/dev/null) ||
        skip_all "kernel $KVER: no module $name under /lib/modules"
    [ "$file" = "(builtin)" ] && return 0
    for dep in $(modinfo -k "$KVER" -F depends "$name" | tr , ' '); do
        _guest_module "$dir" "$dep"
    done
    _guest_mods+=("$name")
    ko=$dir/lib/modules/$(printf '%02d' ${#_guest_mods[@]})-$name.ko
    case $file in
    *.ko) cp "$file" "$ko" ;;
    *.ko.xz) busybox xzcat "$file" > "$ko" ;;
    *.ko.gz) gzip -dc "$file" > "$ko" ;;
    *.ko.zst) need_prog zstd; zstd -qdc "$file" > "$ko" ;;
    *) skip_all "kernel $KVER: cannot read module $file" ;;
    esac
}

# nat_net_xml NAME BRIDGE: a NAT network on TEST-NET 192.0.2.0/24, the host 192.0.2.1,
# DHCP leases 192.0.2.100-150.
nat_net_xml() {
    cat <<XML
<network>
  <name>$1</name>
  <forward mode='nat'/>
  <bridge name='$2' stp='on' delay='0'/>
  <ip address='192.0.2.1' prefix='24'>
    <dhcp><range start='192.0.2.100' end='192.0.2.150'/></dhcp>
  </ip>
</network>
XML
}

# ---- QEMU's confinement (issue 16) ------------------------------------------------------
# applied_uid NAME: the uid the agent allocated for domain NAME, from its last-applied
# record.
applied_uid() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("uid", ""))' \
        "$T/state/applied/domain@$1.json"
}
# need_jail_probe: PROBE, tests/tools/jail-probe (the test skips when it is not built).
need_jail_probe() {
    PROBE=$REPO/${BUILD:-build}/tools/jail-probe
    [ -x "$PROBE" ] || skip_all "build/tools/jail-probe is not built (make build-all)"
}
# probe_says PID PATH RESULT: opening PATH with PID's credentials, namespaces and cgroups
# ($PROBE) gives RESULT ("ok" or an errno name such as ENOENT).
probe_says() {
    local got
    got=$("$PROBE" "$1" "$2") || return 1
    [ "$got" = "$2 $3" ] || { echo "# $got"; return 1; }
}
# vnc_answers SOCKET: a VNC server on the unix socket SOCKET greets with "RFB ".
vnc_answers() {
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
sys.exit(0 if s.recv(12).startswith(b"RFB ") else 1)' "$1"
}

agent_start() {
    # A restarted agent finds the old status.xml: wait for the one its first pass
    # writes (always a new file), so what follows never reads the previous agent's.
    local before; before=$(stat -c '%i %.9Y' "$T/state/status.xml" 2>/dev/null)
    "$DECLVIRT" --config "$T/agent.conf" agent "$@" >>"$T/agent.log" 2>&1 &
    AGENT_PID=$!
    wait_until 10 eval '[ -s "$T/state/status.xml" ] &&
        [ "$(stat -c "%i %.9Y" "$T/state/status.xml" 2>/dev/null)" != "$before" ]'
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

# ---- Helpers for the engine and watcher tests ---------------------------------------
#   todo NAME REASON [DETAIL]     "not ok N - NAME # TODO REASON" (a known bug; not a failure)
#   check_todo NAME REASON CMD... ok when CMD exits 0, else a TODO "not ok"
#   holds_for SECS CMD...         CMD succeeds at every poll (50 ms) for SECS; fails at once
#   st_attr ID ATTR               an attribute of an object in status.xml (ID: pool/P,
#                                 volume/P/V); st_msg ID its message; st_has ID
#   st_cond ID TYPE               "status|message" of a condition ("" when absent)
#   st_file PATH                  "line|error" of a <file> entry ("" when absent)
#   st_root ATTR                  an attribute of <status>
#   st_is ID ATTR VALUE           true when the attribute has that value (for wait_until)
#   wait_pass                     until a pass that started after now has ended
#   log_count PATTERN             lines of agent.log matching a fixed string
#   mtime_ns FILE                 modification time in ns (stat)
#   vol_xml_alloc POOL NAME CAP ALLOC [FORMAT] [POLICY-ATTRS]

todo() {
    _tap_n=$((_tap_n + 1))
    echo "not ok $_tap_n - $1 # TODO $2"
    [ $# -gt 2 ] && printf '%s\n' "$3" | sed 's/^/#   /'
    return 0
}
check_todo() {
    local name=$1 reason=$2; shift 2
    local out
    if out=$("$@" 2>&1); then
        _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $name # TODO $reason (passes now)"
    else
        todo "$name" "$reason" "$out"
    fi
}
holds_for() {
    local secs=$1; shift
    local start; start=$(date +%s%N)
    local end=$(( start + $(awk -v s="$secs" 'BEGIN { printf "%d", s * 1e9 }') ))
    local out
    while [ "$(date +%s%N)" -lt $end ]; do
        out=$("$@" 2>&1) || {
            # What broke it, and when: a failure here is a race to find, not to retry.
            echo "# held for $(( ($(date +%s%N) - start) / 1000000 )) ms, then failed${out:+: $out}"
            return 1
        }
        sleep 0.05
    done
    "$@" >/dev/null 2>&1
}

_st_py() {
    /usr/bin/python3 - "$T/state/status.xml" "$@" <<'PY'
import sys, xml.etree.ElementTree as ET
path, op = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
try:
    root = ET.parse(path).getroot()
except Exception:
    sys.exit(1)
def find(oid):
    parts = oid.split('/')
    kind = parts[0]
    pool, name = (parts[1], '/'.join(parts[2:])) if kind == 'volume' else ('', '/'.join(parts[1:]))
    for o in root.iter('object'):
        if o.get('kind') == kind and o.get('name') == name and (o.get('pool') or '') == pool:
            return o
    return None
if op == 'root':
    print(root.get(args[0]) or ''); sys.exit(0)
if op == 'file':
    for f in root.iter('file'):
        if f.get('path') == args[0]:
            print('%s|%s' % (f.get('line') or '', f.get('error') or '')); break
    sys.exit(0)
o = find(args[0])
if o is None:
    sys.exit(1 if op == 'has' else 0)
if op == 'attr':
    print(o.get(args[1]) or '')
elif op == 'msg':
    m = o.find('message'); print(m.text if m is not None and m.text else '')
elif op == 'cond':
    for c in o.iter('condition'):
        if c.get('type') == args[1]:
            print('%s|%s' % (c.get('status'), c.text or '')); break
PY
}
st_attr() { _st_py attr "$1" "$2"; }
st_msg() { _st_py msg "$1"; }
st_has() { _st_py has "$1"; }
st_cond() { _st_py cond "$1" "$2"; }
st_file() { _st_py file "$1"; }
st_root() { _st_py root "$1"; }
st_is() { [ "$(_st_py attr "$1" "$2")" = "$3" ]; }

mtime_ns() { stat -c %.9Y "$1" 2>/dev/null | tr -d .; }

# A pass touches status.xml when it ends (the heartbeat); a pass that began after the
# events written so far have been read is one that started 100 ms from now or later.
wait_pass() {
    sleep 0.1
    local t0; t0=$(date +%s%N)
    wait_until "${1:-10}" _status_newer_than "$t0"
}
_status_newer_than() { local m; m=$(mtime_ns "$T/state/status.xml") && [ "${m:-0}" -gt "$1" ]; }

log_count() { grep -cF -- "$1" "$T/agent.log" 2>/dev/null || true; }

vol_xml_alloc() {
    cat <<XML
<volume>
  <name>$2</name>
  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' pool='$1' ${6:-}/>
  <capacity unit='bytes'>$3</capacity>
  <allocation unit='bytes'>$4</allocation>
  <target>
    <format type='${5:-raw}'/>
  </target>
</volume>
XML
}

# qmp_json SOCKET COMMAND [ARGUMENTS-JSON]: runs one command on a QMP monitor and prints
# its "return" as JSON; fails (the error on stderr) when QEMU answers with an error.
qmp_json() {
    python3 - "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile('rw')
def reply():
    while True:
        m = json.loads(f.readline())
        if 'return' in m or 'error' in m:
            return m
f.readline()  # greeting
f.write(json.dumps({'execute': 'qmp_capabilities'}) + '\n'); f.flush(); reply()
cmd = {'execute': sys.argv[2]}
if len(sys.argv) > 3:
    cmd['arguments'] = json.loads(sys.argv[3])
f.write(json.dumps(cmd) + '\n'); f.flush()
m = reply()
if 'error' in m:
    print(m['error'], file=sys.stderr)
    sys.exit(1)
print(json.dumps(m['return']))
PY
}
