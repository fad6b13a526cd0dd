#!/bin/bash
# QEMU domains through the real agent (issue 6): a guest whose disk is a volume of a dir
# pool starts under TCG, survives an agent restart (same PID, adopted), is stopped on
# state='stopped' through the timeout-then-force path, is restarted after kill -9 as
# restart='always' says and left down with restart='never', shows QEMU's own error for
# an unknown machine type, and is shut down when its file goes.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog qemu-img
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "qemu-system-x86_64 is not installed"
agent_setup
cat >> "$T/agent.conf" <<CONF
qemu:
  binary: /usr/bin/qemu-system-x86_64
  accel: tcg
CONF
D=$T/desired
P1=$T/pools/p1
MiB=1048576
# Every QEMU this test's agent started is killed by PID on exit, even on failure.
on_exit 'for f in "$T"/run/qemu/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")"; done'

# dom_xml NAME [POLICY-ATTRS] [MACHINE]
dom_xml() {
    cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <metadata>
    <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' ${2:-} shutdown-timeout='2'/>
  </metadata>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='${3:-pc}'>hvm</type>
  </os>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='raw'/>
      <source pool='p1' volume='$1.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
XML
}
pid_of() { cat "$T/run/qemu/$1.pid" 2>/dev/null; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

pool_xml p1 "$P1" > "$D/p1.xml"
dom_xml vm1 > "$D/vm1.xml"
agent_start
check "a domain waits for its volume" wait_until 10 eval 'st_msg domain/vm1 | grep -q "waiting for volume/p1/vm1.img"'
vol_xml p1 vm1.img $((8 * MiB)) raw > "$D/vm1.img.xml"
check "once the volume is there the domain runs" wait_until 30 phase_is domain/vm1 ready
pid1=$(pid_of vm1)
check "QEMU runs" alive "$pid1"
check "QEMU runs in a session of its own (it outlives the agent)" \
    test "$(ps -o sid= -p "$pid1" | tr -d ' ')" = "$pid1"
check "its command line uses the volume's file" eval 'tr "\0" "\n" < /proc/$pid1/cmdline | grep -q "$P1/vm1.img"'
check "observed domain XML exists" test -s "$T/state/domains/vm1.xml"
check "observed domain XML names the domain and has a UUID" \
    eval 'grep -q "<name>vm1</name>" "$T/state/domains/vm1.xml" && grep -q "<uuid>" "$T/state/domains/vm1.xml"'
check "the pool is not stopped under a running domain" eval '
    pool_xml p1 "$P1" "state='"'"'inactive'"'"'" > "$D/p1.xml" &&
    wait_until 5 eval "st_msg pool/p1 | grep -q \"in use by running domain/vm1\""'
pool_xml p1 "$P1" > "$D/p1.xml"

# ---- agent restart: adopted, not restarted -------------------------------------------------------
agent_stop
check "stopping the agent leaves QEMU running" alive "$pid1"
agent_start
check "after a restart the domain is ready" wait_until 15 phase_is domain/vm1 ready
check "after a restart it is the same QEMU process" test "$(pid_of vm1)" = "$pid1"

# ---- kill -9: restart='always' starts it again -------------------------------------------------
kill -9 "$pid1"
check "after kill -9 the domain is started again (restart='always')" \
    wait_until 20 eval 'p=$(pid_of vm1); [ -n "$p" ] && [ "$p" != "$pid1" ] && alive "$p"'
check "the exit is reported" eval 'grep -q "exited" "$T/agent.log"'
pid2=$(pid_of vm1)

# ---- state='stopped': powerdown ignored (no OS), then forced after shutdown-timeout ---------------
dom_xml vm1 "state='stopped'" > "$D/vm1.xml"
t0=$(date +%s)
check "state='stopped' stops QEMU" wait_until 20 eval '! alive "$pid2"'
check "it took the shutdown-timeout path (no OS answers ACPI), within bounds" test $(( $(date +%s) - t0 )) -le 15
check "the domain is stopped" wait_until 10 phase_is domain/vm1 stopped
check "a stopped domain is not restarted" eval 'sleep 1; [ -z "$(pid_of vm1)" ] || ! alive "$(pid_of vm1)"'

# ---- restart='never' ---------------------------------------------------------------------------------
vol_xml p1 vm2.img $((8 * MiB)) raw > "$D/vm2.img.xml"
dom_xml vm2 "restart='never'" > "$D/vm2.xml"
check "a restart='never' domain runs" wait_until 30 phase_is domain/vm2 ready
pid3=$(pid_of vm2)
kill -9 "$pid3"
check "after kill -9 it is stopped, not restarted" wait_until 20 phase_is domain/vm2 stopped
check "its message says why" eval 'st_msg domain/vm2 | grep -q "restart='"'"'never'"'"'"'

# ---- bad input: QEMU's own error reaches status ------------------------------------------------------
vol_xml p1 vm3.img $((8 * MiB)) raw > "$D/vm3.img.xml"
dom_xml vm3 "" no-such-machine > "$D/vm3.xml"
check "an unknown machine type fails" wait_until 30 phase_is domain/vm3 failed
check "with QEMU's own message in status.xml" eval 'grep -qi "machine" "$T/state/status.xml"'
check "and nothing is left running for it" eval '[ -z "$(pid_of vm3)" ] || ! alive "$(pid_of vm3)"'
rm "$D/vm3.xml"

# ---- removal: on-remove='stop' shuts it down -----------------------------------------------------------
dom_xml vm2 "restart='never'" > "$D/vm2.xml" # written again: runs again
check "written again, the domain runs again" wait_until 30 phase_is domain/vm2 ready
pid4=$(pid_of vm2)
rm "$D/vm2.xml"
check "removing its file stops QEMU" wait_until 20 eval '! alive "$pid4"'
check "the domain leaves status.xml" wait_until 10 eval '[ -z "$(phase_of domain/vm2)" ]'
check "its observed XML is removed" wait_until 5 test ! -e "$T/state/domains/vm2.xml"
check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop
