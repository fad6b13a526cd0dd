#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# QEMU domains through the real agent (issue 6): a guest whose disk is a volume of a dir
# pool starts under TCG, survives an agent restart (same PID, adopted), is stopped on
# state='stopped' through the timeout-then-force path, is restarted after kill -9 as
# restart='always' says and left down with restart='never', shows QEMU's own error for
# an unknown machine type, and is shut down when its file goes. The observed XML carries
# id='PID' and is valid for libvirt's domain schema; a MAC written for two domains and
# more memory than the host has are refused before any QEMU starts. From the agent restart
# to the kill -9 the resync is an hour: QMP events (stop, cont, QEMU gone) alone make the
# agent look again.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog qemu-img
need_prog python3
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "qemu-system-x86_64 is not installed"
need_jail_probe
agent_setup_qemu
D=$T/desired
P1=$T/pools/p1
MiB=1048576

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

pool_xml p1 "$P1" > "$D/p1.xml"
dom_xml vm1 > "$D/vm1.xml"
agent_start
check "a domain waits for its volume" wait_until 10 eval 'st_msg domain/vm1 | grep -q "waiting for volume/p1/vm1.img"'
vol_xml p1 vm1.img $((8 * MiB)) raw > "$D/vm1.img.xml"
check "once the volume is there the domain runs" wait_until 30 phase_is domain/vm1 ready
pid1=$(qemu_pid vm1)
check "QEMU runs" alive "$pid1"
check "QEMU runs in a session of its own (it outlives the agent)" \
    test "$(ps -o sid= -p "$pid1" | tr -d ' ')" = "$pid1"
check "its command line uses the volume's file" eval 'tr "\0" "\n" < /proc/$pid1/cmdline | grep -q "$P1/vm1.img"'
check "observed domain XML exists" test -s "$T/state/domains/vm1.xml"
check "observed domain XML names the domain and has a UUID" \
    eval 'grep -q "<name>vm1</name>" "$T/state/domains/vm1.xml" && grep -q "<uuid>" "$T/state/domains/vm1.xml"'
check "observed domain XML has id='PID' while running, as virsh dumpxml does" \
    grep -q "^<domain type='qemu' id='$pid1'>" "$T/state/domains/vm1.xml"
# valid_xml FILE: virt-xml-validate's verdict, with the file shown when it fails.
valid_xml() { virt-xml-validate "$1" domain 2>&1 || { cat "$1"; return 1; }; }
if command -v virt-xml-validate >/dev/null 2>&1; then
    check "observed domain XML is valid for libvirt's domain schema" valid_xml "$T/state/domains/vm1.xml"
else
    skip "observed domain XML is valid for libvirt's domain schema" "virt-xml-validate is not installed (libvirt-clients)"
fi
check "the pool is not stopped under a running domain" eval '
    pool_xml p1 "$P1" "state='"'"'inactive'"'"'" > "$D/p1.xml" &&
    wait_until 5 eval "st_msg pool/p1 | grep -q \"in use by running domain/vm1\""'
pool_xml p1 "$P1" > "$D/p1.xml"

# ---- QEMU as its own user (issue 16) -------------------------------------------------------------
# status_is PID FIELD VALUE: /proc/PID/status FIELD is VALUE (fields joined by single spaces).
status_is() {
    local v
    v=$(awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ +/, ""); print }' "/proc/$1/status")
    [ "$v" = "$3" ] || { echo "# $2 of PID $1 is '$v', not '$3'"; return 1; }
}
uid1=$(applied_uid vm1)
check "vm1's record holds a uid from qemu.uid_range" \
    eval '[ -n "$uid1" ] && [ "$uid1" -ge 3000000 ] && [ "$uid1" -le 3999999 ]'
check "its QEMU runs as that uid" status_is "$pid1" Uid "$uid1 $uid1 $uid1 $uid1"
check "and as that gid" status_is "$pid1" Gid "$uid1 $uid1 $uid1 $uid1"
check "with no supplementary group" status_is "$pid1" Groups ""
check "no effective capability" status_is "$pid1" CapEff 0000000000000000
check "an empty bounding set" status_is "$pid1" CapBnd 0000000000000000
check "and no_new_privs" status_is "$pid1" NoNewPrivs 1
check "the QEMU writes no pidfile of its own (-pidfile is gone)" \
    eval '! tr "\0" "\n" < /proc/$pid1/cmdline | grep -qx -- -pidfile'
# vm2 has VNC on a unix socket, which its QEMU creates itself in a directory of its uid.
dom_xml vm2 | sed "s|</devices>|<graphics type='vnc'/></devices>|" > "$D/vm2.xml"
vol_xml p1 vm2.img $((8 * MiB)) raw > "$D/vm2.img.xml"
check "a second domain runs" wait_until 30 phase_is domain/vm2 ready
uid2=$(applied_uid vm2)
check "with a uid of its own" eval '[ -n "$uid2" ] && [ "$uid2" != "$uid1" ] && [ "$uid2" -ge 3000000 ]'
check "its QEMU runs as it" status_is "$(qemu_pid vm2)" Uid "$uid2 $uid2 $uid2 $uid2"
check "its VNC socket is in a directory of its uid, 0700" \
    eval '[ "$(stat -c "%u %a" "$T/run/qemu-vnc/vm2")" = "$uid2 700" ] && [ -S "$T/run/qemu-vnc/vm2/vnc" ]'
check "and serves VNC" vnc_answers "$T/run/qemu-vnc/vm2/vnc"
chmod 0600 "$P1/vm2.img"
# as_qemu UID CMD...: CMD with the credentials of the QEMU that runs as UID.
as_qemu() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups --inh-caps=-all -- "$@"; }
check "vm1's credentials cannot read /etc/shadow" eval '! as_qemu "$uid1" cat /etc/shadow >/dev/null 2>&1'
check "nor the other guest's disk (0600 root)" eval '! as_qemu "$uid1" head -c1 "$P1/vm2.img" >/dev/null 2>&1'
check "while root can (the check is real)" eval 'head -c1 "$P1/vm2.img" >/dev/null'

# ---- QEMU's jail (issue 16): its own mount namespace with only what it needs ----------------------
check "vm1's QEMU has a mount namespace of its own" \
    test "$(readlink "/proc/$pid1/ns/mnt")" != "$(readlink /proc/self/ns/mnt)"
# jail_top PID: what the root of PID's jail holds, one line.
jail_top() { ls -A "/proc/$1/root/" | tr '\n' ' '; }
check "whose root holds only dev, etc (the loader's cache), lib, lib64 and usr" \
    eval '[ "$(jail_top "$pid1")" = "dev etc lib lib64 usr " ] || { echo "# $(jail_top "$pid1")"; false; }'
check "its /etc holds only ld.so.cache" test "$(ls -A "/proc/$pid1/root/etc")" = ld.so.cache
check "its /dev only the four nodes QEMU opens" \
    test "$(ls -A "/proc/$pid1/root/dev" | tr '\n' ' ')" = "null random urandom zero "
check "the jail's root is read-only" grep -q '^[^ ]* / [^ ]* ro,' "/proc/$pid1/mounts"
root_dev=$(findmnt -no SOURCE / | head -1)
check "as vm1's QEMU in its jail, /etc/shadow is not there" probe_says "$pid1" /etc/shadow ENOENT
check "nor the other guest's disk" probe_says "$pid1" "$P1/vm2.img" ENOENT
check "nor its own disk's path (QEMU has it as a descriptor)" probe_says "$pid1" "$P1/vm1.img" ENOENT
check "nor the host's root block device ($root_dev)" probe_says "$pid1" "$root_dev" ENOENT
check "nor the host's /proc" probe_says "$pid1" /proc/1/environ ENOENT
check "while /dev/null opens (the probe is real)" probe_says "$pid1" /dev/null ok
check "vm2's VNC directory is in its jail, writable" \
    eval 'grep -q " $T/run/qemu-vnc/vm2 [^ ]* rw," "/proc/$(qemu_pid vm2)/mounts"'
# hmp SOCKET COMMAND-LINE: one human monitor command through QMP; prints its output.
hmp() {
    qmp_json "$1" human-monitor-command "$(python3 -c 'import json,sys; print(json.dumps({"command-line": sys.argv[1]}))' "$2")"
}
check "QMP drive_add of /etc/shadow fails: QEMU cannot open it" eval '
    hmp "$T/run/qemu/vm1.qmp" "drive_add 0 if=none,file=/etc/shadow,format=raw,readonly=on,id=x" |
        grep -q "Could not open .*/etc/shadow.*No such file"'
check "nor the other guest's disk" eval '
    hmp "$T/run/qemu/vm1.qmp" "drive_add 0 if=none,file=$P1/vm2.img,format=raw,readonly=on,id=y" |
        grep -q "Could not open .*No such file"'
rm -f "$D/vm2.xml" "$D/vm2.img.xml"
check "the second domain goes with its file" wait_until 20 eval '! st_has domain/vm2'

# ---- agent restart: adopted, not restarted -------------------------------------------------------
sed -i 's/^resync_interval: .*/resync_interval: 1h/' "$T/agent.conf"
agent_stop
check "stopping the agent leaves QEMU running" alive "$pid1"
agent_start
check "after a restart the domain is ready" wait_until 15 phase_is domain/vm1 ready
check "after a restart it is the same QEMU process" test "$(qemu_pid vm1)" = "$pid1"
check "and the observed XML keeps its id" grep -q "^<domain type='qemu' id='$pid1'>" "$T/state/domains/vm1.xml"
check "the uid is kept across the agent restart" test "$(applied_uid vm1)" = "$uid1"

# ---- QMP events: a pause and a resume from outside show in status.xml at once -----------------------
check "the agent holds QEMU's events monitor" test -S "$T/run/qemu/vm1.events"
check "QMP stop on the domain" qmp "$T/run/qemu/vm1.qmp" stop
check "status.xml shows it paused within 1 s (resync 1 h)" wait_until 1 eval 'st_msg domain/vm1 | grep -q paused'
check "QMP cont on the domain" qmp "$T/run/qemu/vm1.qmp" cont
check "status.xml shows it running again within 1 s" \
    wait_until 1 eval 'phase_is domain/vm1 ready && ! st_msg domain/vm1 | grep -q paused'
check "it is the same QEMU" test "$(qemu_pid vm1)" = "$pid1"

# ---- kill -9: restart='always' starts it again -------------------------------------------------
kill -9 "$pid1"
check "after kill -9 the domain is started again (restart='always')" \
    wait_until 20 eval 'p=$(qemu_pid vm1); [ -n "$p" ] && [ "$p" != "$pid1" ] && alive "$p"'
check "the exit is reported" eval 'grep -q "exited" "$T/agent.log"'
pid2=$(qemu_pid vm1)
check "the observed XML shows the new QEMU's id" \
    wait_until 5 grep -q "^<domain type='qemu' id='$pid2'>" "$T/state/domains/vm1.xml"
check "the restarted QEMU runs as the same uid" status_is "$pid2" Uid "$uid1 $uid1 $uid1 $uid1"
# The rest relies on the periodic resync in places (a refused domain is tried again there).
sed -i 's/^resync_interval: .*/resync_interval: 2s/' "$T/agent.conf"
agent_stop
agent_start
check "after another agent restart the domain is ready" wait_until 15 phase_is domain/vm1 ready
check "the same QEMU again" test "$(qemu_pid vm1)" = "$pid2"

# ---- state='stopped': powerdown ignored (no OS), then forced after shutdown-timeout ---------------
dom_xml vm1 "state='stopped'" > "$D/vm1.xml"
t0=$(date +%s)
check "state='stopped' stops QEMU" wait_until 20 eval '! alive "$pid2"'
check "it took the shutdown-timeout path (no OS answers ACPI), within bounds" test $(( $(date +%s) - t0 )) -le 15
check "the domain is stopped" wait_until 10 phase_is domain/vm1 stopped
check "a stopped domain is not restarted" eval 'sleep 1; [ -z "$(qemu_pid vm1)" ] || ! alive "$(qemu_pid vm1)"'

# ---- restart='never' ---------------------------------------------------------------------------------
vol_xml p1 vm2.img $((8 * MiB)) raw > "$D/vm2.img.xml"
dom_xml vm2 "restart='never'" > "$D/vm2.xml"
check "a restart='never' domain runs" wait_until 30 phase_is domain/vm2 ready
pid3=$(qemu_pid vm2)
kill -9 "$pid3"
check "after kill -9 it is stopped, not restarted" wait_until 20 phase_is domain/vm2 stopped
check "its message says why" eval 'st_msg domain/vm2 | grep -q "restart='"'"'never'"'"'"'

# ---- bad input: QEMU's own error reaches status ------------------------------------------------------
vol_xml p1 vm3.img $((8 * MiB)) raw > "$D/vm3.img.xml"
dom_xml vm3 "" no-such-machine > "$D/vm3.xml"
check "an unknown machine type fails" wait_until 30 phase_is domain/vm3 failed
check "with QEMU's own message in status.xml" eval 'grep -qi "machine" "$T/state/status.xml"'
check "and nothing is left running for it" eval '[ -z "$(qemu_pid vm3)" ] || ! alive "$(qemu_pid vm3)"'
rm "$D/vm3.xml"

# ---- bad input: a MAC written for two domains ----------------------------------------------------------
# bare_dom NAME MEMORY-KIB [DEVICES]: no disk, so nothing else is waited for.
bare_dom() {
    cat <<XML
<domain type='qemu'>
  <name>$1</name>
  ${4:-}
  <memory unit='KiB'>$2</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <devices>${3:-}</devices>
</domain>
XML
}
mac_if() { echo "<interface type='bridge'><mac address='$1'/><source bridge='dvtnobr0'/><model type='virtio'/></interface>"; }
bare_dom vm5 65536 "$(mac_if 52:54:00:d0:00:01)" > "$D/vm5.xml"
bare_dom vm6 65536 "$(mac_if 52:54:00:d0:00:02)$(mac_if 52:54:00:D0:00:01)" > "$D/vm6.xml"
check "a MAC used by two domains blocks the first" wait_until 10 phase_is domain/vm5 blocked
check "and the second" wait_until 10 phase_is domain/vm6 blocked
check "the first names the second" eval 'st_msg domain/vm5 | grep -qF "MAC 52:54:00:d0:00:01 (interface 1) is also used by interface 2 of domain/vm6 ($D/vm6.xml)"'
check "the second names the first" eval 'st_msg domain/vm6 | grep -qF "MAC 52:54:00:d0:00:01 (interface 2) is also used by interface 1 of domain/vm5 ($D/vm5.xml)"'
check "no QEMU is started for either" eval '[ -z "$(qemu_pid vm5)" ] && [ -z "$(qemu_pid vm6)" ] &&
    [ ! -e "$T/state/domains/vm5.qemu.log" ] && [ ! -e "$T/state/domains/vm6.qemu.log" ]'
rm "$D/vm5.xml" "$D/vm6.xml"
check "both leave status.xml with their files" \
    wait_until 10 eval '[ -z "$(phase_of domain/vm5)" ] && [ -z "$(phase_of domain/vm6)" ]'

# ---- bad input: more memory than the host has -------------------------------------------------------
memtotal=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
bare_dom vm7 $((memtotal + 1048576)) > "$D/vm7.xml"
check "more memory than the host has is refused" wait_until 20 phase_is domain/vm7 blocked
check "the message names both sizes" eval 'st_msg domain/vm7 | grep -qF "($((memtotal + 1048576)) KiB), more than this host has" &&
    st_msg domain/vm7 | grep -qF "(MemTotal $memtotal KiB in /proc/meminfo)"'
check "QEMU was never started for it" eval '[ -z "$(qemu_pid vm7)" ] && [ ! -e "$T/state/domains/vm7.qemu.log" ]'
# A refusal, not a failure: never "failed" with a "retry in", tried again only at the
# periodic resync (where it is refused again).
check "it is not retried like a failure" \
    holds_for 1.5 eval '! phase_is domain/vm7 failed && ! st_msg domain/vm7 | grep -q "retry in"'
check "and no QEMU starts meanwhile" eval '[ -z "$(qemu_pid vm7)" ] && [ ! -e "$T/state/domains/vm7.qemu.log" ]'
rm "$D/vm7.xml"
check "it leaves status.xml with its file" wait_until 10 eval '[ -z "$(phase_of domain/vm7)" ]'

# ---- bad input: a missing disk file; a volume in a pool that is not active ------------------------------
file_disk() { echo "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$1'/><target dev='vda' bus='virtio'/></disk>"; }
bare_dom vm8 65536 "$(file_disk "$T/no-such-disk.img")" > "$D/vm8.xml"
check "a missing disk file fails the start" wait_until 30 phase_is domain/vm8 failed
check "with QEMU's own words naming the file" eval 'grep -q "no-such-disk.img" "$T/state/status.xml"'
check "and nothing runs for it" eval '[ -z "$(qemu_pid vm8)" ] || ! alive "$(qemu_pid vm8)"'
rm "$D/vm8.xml"
pool_xml p2 "$T/pools/p2" "state='inactive'" > "$D/p2.xml"
vol_xml p2 vm9.img $((8 * MiB)) raw > "$D/vm9.img.xml"
bare_dom vm9 65536 "<disk type='volume' device='disk'><driver name='qemu' type='raw'/><source pool='p2' volume='vm9.img'/><target dev='vda' bus='virtio'/></disk>" \
    "<metadata><dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' shutdown-timeout='1'/></metadata>" > "$D/vm9.xml"
check "a volume in a pool that is not active: the domain waits for it" \
    wait_until 10 eval 'phase_is domain/vm9 waiting && st_msg domain/vm9 | grep -q "waiting for volume/p2/vm9.img"'
check "and its volume waits for the pool" eval 'st_msg volume/p2/vm9.img | grep -q "waiting for pool/p2"'
check "no QEMU is started for it" eval '[ -z "$(qemu_pid vm9)" ]'
pool_xml p2 "$T/pools/p2" > "$D/p2.xml"
check "once the pool is active the domain runs" wait_until 30 phase_is domain/vm9 ready
rm "$D/vm9.xml"
check "removing its file stops it" wait_until 20 eval '[ -z "$(phase_of domain/vm9)" ]'

# ---- removal: on-remove='stop' shuts it down -----------------------------------------------------------
dom_xml vm2 "restart='never'" > "$D/vm2.xml" # written again: runs again
check "written again, the domain runs again" wait_until 30 phase_is domain/vm2 ready
pid4=$(qemu_pid vm2)
rm "$D/vm2.xml"
check "removing its file stops QEMU" wait_until 20 eval '! alive "$pid4"'
check "the domain leaves status.xml" wait_until 10 eval '[ -z "$(phase_of domain/vm2)" ]'
check "its observed XML is removed" wait_until 5 test ! -e "$T/state/domains/vm2.xml"
check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop
