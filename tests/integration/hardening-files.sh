#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Files the agent writes and descriptors it hands on (issue 17, attacks 5 and 6), each
# attack run as nobody against a real agent: nobody cannot open the lock, so cannot flock
# it and keep the agent from starting; FIFOs at the temp names earlier versions used next
# to metrics_file (in a directory nobody writes) and a symlink at metrics_file to a root
# file neither block nor redirect the agent; a QEMU guest's console and QEMU logs are
# root's only, and its VNC password is in no log (debug level) and no file nobody can
# read; QEMU, dnsmasq and a container init hold no descriptor of the agent's (the agent
# is started with a descriptor open without O_CLOEXEC, as a careless parent would), and
# the container init holds exactly 0, 1 and 2. The command runner's children are checked
# by test-cmd (test_no_fd_leak).
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog setpriv
need_prog flock
need_prog ip
need_prog nft
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "qemu-system-x86_64 is not installed"
[ -x /usr/sbin/dnsmasq ] || skip_all "dnsmasq is not installed"
[ -x /bin/busybox ] || skip_all "busybox-static is not installed"
netns_setup dvt-hf

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
agent_setup
TF=$T/textfile
install -d -o nobody -m 0755 "$TF"
cat >> "$T/agent.conf" <<CONF
metrics_file: $TF/declvirt.prom
qemu:
  binary: /usr/bin/qemu-system-x86_64
  accel: tcg
container:
  template_dir: $T/templates
  data_dir: $T/containers
CONF
on_exit 'for f in "$T"/run/qemu/*.pid "$T"/run/lxc/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")"; done'
D=$T/desired
PW=Pw-$$-$RANDOM

# The victim: a root file that nobody's symlink at metrics_file points to.
printf 'root secret\n' > "$T/victim"
chmod 0600 "$T/victim"
as_nobody ln -s "$T/victim" "$TF/declvirt.prom"

# A descriptor the agent inherits without O_CLOEXEC: whatever it starts must not hold it.
: > "$T/canary"
exec 7<>"$T/canary"
before=$(stat -c '%i %.9Y' "$T/state/status.xml" 2>/dev/null)
nsenter --net="/run/netns/$NS" "$DECLVIRT" --config "$T/agent.conf" agent >>"$T/agent.log" 2>&1 &
AGENT_PID=$!
exec 7>&-
wait_until 10 eval '[ -s "$T/state/status.xml" ] &&
    [ "$(stat -c "%i %.9Y" "$T/state/status.xml" 2>/dev/null)" != "$before" ]'
check "the agent holds the canary descriptor (the test's premise)" \
    eval 'ls -l /proc/$AGENT_PID/fd | grep -q "$T/canary"'

# ---- the lock ---------------------------------------------------------------------------
check "the lock file is 0600" test "$(stat -c %a "$T/state/.lock")" = 600
lockout=$(as_nobody flock -n -s "$T/state/.lock" true 2>&1)
check "nobody cannot open the lock, so cannot flock it" eval '[[ "$lockout" == *"Permission denied"* ]]'
check "declvirt status (root) still sees the running agent" \
    eval 'st=$(dv status 2>&1); [[ "$st" != *"no agent is running"* && "$st" != *"cannot tell"* ]]'

# ---- metrics_file in a directory nobody writes ------------------------------------------
check "a symlink at metrics_file is replaced, not followed" \
    eval '[ -f "$TF/declvirt.prom" ] && [ ! -L "$TF/declvirt.prom" ]'
check "the symlink's target is unchanged" test "$(cat "$T/victim")" = "root secret"
check "metrics_file has the metrics" grep -q '^declvirt_converged ' "$TF/declvirt.prom"
# Every temp name an earlier version would have used, as FIFOs and as symlinks.
as_nobody mkfifo "$TF/declvirt.prom.tmp.$AGENT_PID" "$TF/.declvirt.prom.$AGENT_PID.tmp"
as_nobody ln -s "$T/victim" "$TF/declvirt.prom.tmp.$((AGENT_PID + 1))"
as_nobody rm -f "$TF/declvirt.prom"
as_nobody ln -s "$T/victim" "$TF/declvirt.prom"
pool_xml p1 "$T/pools/p1" > "$D/p1.xml"
check "the agent keeps running its loop: the next pass is done" wait_until 10 phase_is pool/p1 ready
check "metrics_file is written again, with the new object" \
    wait_until 10 eval '[ ! -L "$TF/declvirt.prom" ] && grep -q "kind=\"pool\",name=\"p1\"" "$TF/declvirt.prom"'
check "the victim is unchanged" test "$(cat "$T/victim")" = "root secret"
check "the planted FIFOs are still FIFOs, untouched" \
    eval '[ -p "$TF/declvirt.prom.tmp.$AGENT_PID" ] && [ -p "$TF/.declvirt.prom.$AGENT_PID.tmp" ]'
check "no temp file of the agent is left next to metrics_file" \
    eval '[ -z "$(find "$TF" -user root -name "*.tmp*")" ]'

# ---- a QEMU guest: logs, password, descriptors -------------------------------------------
cat > "$D/vm1.xml" <<XML
<domain type='qemu'>
  <name>vm1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <serial type='file'><source path='$T/vm1-serial1.log'/><target port='1'/></serial>
    <graphics type='vnc' port='5999' autoport='no' listen='127.0.0.1' passwd='$PW'/>
  </devices>
</domain>
XML
chmod 0600 "$D/vm1.xml"
check "the guest runs" dv wait --timeout 30 domain/vm1
qpid=$(cat "$T/run/qemu/vm1.pid")
check "its console log is 0600" test "$(stat -c %a "$T/state/domains/vm1.console.log")" = 600
check "its QEMU log is 0600" test "$(stat -c %a "$T/state/domains/vm1.qemu.log")" = 600
check "the file of its serial type='file' is 0600" test "$(stat -c %a "$T/vm1-serial1.log")" = 600
check "the observed XML stays readable by all" test "$(stat -c %a "$T/state/domains/vm1.xml")" = 644
check "the agent set the VNC password over QMP (debug log shows the command)" \
    grep -q 'set_password (arguments not shown' "$T/agent.log"
check "the password is in no log line, at debug level" eval '! grep -qF -- "$PW" "$T/agent.log"'
check "the password is in no file nobody can read" \
    eval '[ -z "$(as_nobody grep -rlF -- "$PW" "$T" 2>/dev/null)" ]'
check "the password is not on QEMU's command line" eval '! tr "\0" " " < /proc/$qpid/cmdline | grep -qF -- "$PW"'
holds_agent_fd() { ls -l "/proc/$1/fd" 2>/dev/null | grep -qE "$T/canary|$T/state/\.lock"; }
check "QEMU holds no descriptor of the agent's" eval '! holds_agent_fd $qpid'

# ---- dnsmasq and a container init ----------------------------------------------------------
mkdir -p "$T/rootfs/bin" "$T/rootfs/proc" "$T/rootfs/sys" "$T/rootfs/dev" "$T/rootfs/tmp"
cp /bin/busybox "$T/rootfs/bin/busybox"
ln -s busybox "$T/rootfs/bin/sleep"
cat > "$D/n.xml" <<XML
<network>
  <name>hfnat</name>
  <forward mode='nat'/>
  <bridge name='dvhf0' stp='off'/>
  <ip address='192.0.2.1' prefix='24'>
    <dhcp><range start='192.0.2.100' end='192.0.2.150'/></dhcp>
  </ip>
</network>
XML
cat > "$D/c1.xml" <<XML
<domain type='lxc'>
  <name>hf-c1</name>
  <memory unit='KiB'>65536</memory>
  <os><type>exe</type><init>/bin/sleep</init><initarg>1000</initarg></os>
  <devices>
    <filesystem type='mount'><source dir='$T/rootfs'/><target dir='/'/></filesystem>
    <interface type='network'><source network='hfnat'/></interface>
  </devices>
</domain>
XML
check "the network and the container are ready" dv wait --timeout 30 network/hfnat domain/hf-c1
dpid=$(cat "$(find "$T/run" -name "hfnat*.pid" | head -1)" 2>/dev/null)
check "dnsmasq runs" test -n "$dpid"
check "dnsmasq holds no descriptor of the agent's" eval '! holds_agent_fd $dpid'
cpid=$(cat "$T/run/lxc/hf-c1.pid")
fds=$(ls "/proc/$cpid/fd" | sort -n | tr '\n' ' ')
check "the container init holds exactly 0, 1 and 2 (got: $fds)" test "$fds" = "0 1 2 "
check "its console log is 0600" test "$(stat -c %a "$T/state/domains/hf-c1.console.log")" = 600

check "the agent is still running" kill -0 "$AGENT_PID"
rm -f "$D"/*.xml
wait_until 20 eval '! phase_is domain/vm1 ready && ! phase_is domain/hf-c1 ready' || true
agent_stop
