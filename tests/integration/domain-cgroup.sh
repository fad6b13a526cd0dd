#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# QEMU domains in cgroups of their own (issue 16), through the real agent on a cgroup v1
# host: two domains, each in declvirt/NAME of every hierarchy, joined by QEMU itself;
# the devices cgroup holds exactly null, zero, random and urandom, and a root process
# moved into it cannot open /dev/full nor a host block device (a loop device made here)
# while /dev/null still works; <memtune>, <cputune> and <blkiotune> reach
# memory.limit_in_bytes, memory.memsw.limit_in_bytes, cpu.shares, cpu.cfs_quota_us (the
# per-vCPU quota times the vCPUs), cpuset.cpus, a vCPU thread's and the emulator's
# affinity, and blkio.throttle.read_bps_device; the cgroups are gone once QEMU is; a
# value the kernel refuses (a CPU the host lacks) fails the start with the file and the
# value, a blkio weight on a host whose schedulers take none is refused with the reason,
# and a cgroup that holds a process declvirt did not start refuses the start and leaves
# the process alone. A container gets <memtune> and <cputune> through the same code.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog losetup
need_prog python3
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "qemu-system-x86_64 is not installed"
CG=/sys/fs/cgroup
[ -e $CG/devices/devices.allow ] && [ -e $CG/memory/memory.limit_in_bytes ] ||
    skip_all "needs cgroup v1 devices and memory controllers"
[ "$(nproc)" -ge 2 ] || skip_all "needs 2 CPUs"
agent_setup_qemu
D=$T/desired
# Names of this run only: cgroups are per host (declvirt/NAME).
A=cga$$
B=cgb$$
C=cgc$$

truncate -s 8M "$T/blk.img"
LOOP=$(losetup -f --show "$T/blk.img") || skip_all "cannot make a loop device"
on_exit losetup -d "$LOOP"
LOOP_MM=$(printf '%d:%d' "0x$(stat -c %t "$LOOP")" "0x$(stat -c %T "$LOOP")")

# dom_xml NAME VCPUS [TUNING]: a diskless TCG guest (it waits in the firmware).
dom_xml() {
    cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <metadata>
    <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' shutdown-timeout='1'/>
  </metadata>
  <memory unit='MiB'>64</memory>
  <vcpu>$2</vcpu>
  ${3:-}
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
</domain>
XML
}
# in_cgroup PID CONTROLLER PATH: /proc/PID/cgroup puts PID there.
in_cgroup() {
    awk -F: -v c="$2" -v p="$3" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c && $3 == p) f = 1 } END { exit !f }' "/proc/$1/cgroup" ||
        { cat "/proc/$1/cgroup"; return 1; }
}
# is FILE VALUE: the file holds exactly VALUE.
is() { [ "$(cat "$1")" = "$2" ] || { echo "# $1 holds '$(cat "$1")', not '$2'"; return 1; }; }
# vcpu_tid SOCKET INDEX: the thread of vCPU INDEX, from QMP query-cpus-fast.
vcpu_tid() {
    qmp "$1" query-cpus-fast |
        python3 -c 'import json, sys; print(*[c["thread-id"] for c in json.load(sys.stdin) if c["cpu-index"] == int(sys.argv[1])])' "$2"
}
# affinity DIR: Cpus_allowed_list of the task at DIR (/proc/PID or /proc/PID/task/TID).
affinity() { awk '$1 == "Cpus_allowed_list:" { print $2 }' "$1/status"; }

TUNE_A="<memtune><hard_limit unit='MiB'>512</hard_limit><swap_hard_limit unit='MiB'>600</swap_hard_limit></memtune>
  <cputune><shares>512</shares><period>100000</period><quota>20000</quota>
    <vcpupin vcpu='1' cpuset='1'/><emulatorpin cpuset='0'/></cputune>
  <blkiotune><device><path>$LOOP</path><read_bytes_sec>1048576</read_bytes_sec></device></blkiotune>"
dom_xml "$A" 2 "$TUNE_A" > "$D/$A.xml"
dom_xml "$B" 1 > "$D/$B.xml"
check "declvirt native shows the cgroup and its limits (on stderr)" \
    eval "dv native $D/$A.xml 2>&1 >/dev/null | grep -qx 'limit cpu quota $CG/cpu/declvirt/$A/cpu.cfs_quota_us = 40000'"
agent_start
check "two domains with cgroups run" wait_until 30 eval "phase_is domain/$A ready && phase_is domain/$B ready"
pa=$(qemu_pid "$A")
pb=$(qemu_pid "$B")
for h in memory cpu cpuacct pids devices; do
    check "QEMU of $A is in declvirt/$A of $h" in_cgroup "$pa" $h "/declvirt/$A"
    check "QEMU of $B is in declvirt/$B of $h" in_cgroup "$pb" $h "/declvirt/$B"
done
check "and $A, which pins, in its cpuset cgroup" in_cgroup "$pa" cpuset "/declvirt/$A"
check "and $A, which limits I/O, in its blkio cgroup" in_cgroup "$pa" blkio "/declvirt/$A"
check "QEMU joined before it ran: its threads are all there" \
    eval "[ \"\$(sort $CG/memory/declvirt/$A/tasks)\" = \"\$(ls /proc/$pa/task | sort)\" ]"
for d in "$A" "$B"; do
    check "the devices cgroup of $d holds exactly null, zero, random and urandom" \
        eval "[ \"\$(sort $CG/devices/declvirt/$d/devices.list | tr '\n' ' ')\" = 'c 1:3 rw c 1:5 rw c 1:8 rw c 1:9 rw ' ] ||
              { cat $CG/devices/declvirt/$d/devices.list; false; }"
done

# The attack: root itself, moved into QEMU's devices cgroup, opens what QEMU could.
# in_devices CMD: CMD run by a root shell that joined $A's devices cgroup first.
in_devices() { sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG/devices/declvirt/$A" "$@"; }
check "from QEMU's devices cgroup, root cannot open /dev/full" \
    eval "in_devices head -c1 /dev/full 2>&1 | grep -q 'Operation not permitted'"
check "nor the host's block device $LOOP" \
    eval "in_devices head -c1 $LOOP 2>&1 | grep -q 'Operation not permitted'"
check "while /dev/null works there" in_devices sh -c 'echo x > /dev/null'
check "and both open outside it (the check is real)" eval "head -c1 /dev/full >/dev/null && head -c1 $LOOP >/dev/null"
# The same list as a cgroup v2 device program (what a v2-only host has instead of the
# devices cgroup), on QEMU's cgroup of the unified tree: root that joined only that one
# (its v1 devices cgroup is the host's, which allows everything) is refused too.
if [ -e $CG/unified/cgroup.procs ]; then
    in_unified() { sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG/unified/declvirt/$A" "$@"; }
    check "from QEMU's v2 cgroup alone, root cannot open /dev/full" \
        eval "in_unified head -c1 /dev/full 2>&1 | grep -q 'Operation not permitted'"
    check "nor the loop device" \
        eval "in_unified head -c1 $LOOP 2>&1 | grep -q 'Operation not permitted'"
    check "while /dev/null works there" in_unified sh -c 'echo x > /dev/null'
else
    skip "the device program on QEMU's v2 cgroup" "no cgroup v2 tree at $CG/unified"
fi

check "memory.limit_in_bytes is <hard_limit>" is $CG/memory/declvirt/$A/memory.limit_in_bytes $((512 * 1048576))
check "memory.memsw.limit_in_bytes is <swap_hard_limit>" is $CG/memory/declvirt/$A/memory.memsw.limit_in_bytes $((600 * 1048576))
check "cpu.shares is <shares>" is $CG/cpu/declvirt/$A/cpu.shares 512
check "cpu.cfs_period_us is <period>" is $CG/cpu/declvirt/$A/cpu.cfs_period_us 100000
check "cpu.cfs_quota_us is <quota> times the 2 vCPUs" is $CG/cpu/declvirt/$A/cpu.cfs_quota_us 40000
check "cpuset.cpus is emulatorpin with the vcpupins" is $CG/cpuset/declvirt/$A/cpuset.cpus 0-1
check "blkio.throttle.read_bps_device names $LOOP's device" \
    is $CG/blkio/declvirt/$A/blkio.throttle.read_bps_device "$LOOP_MM 1048576"
tid1=$(vcpu_tid "$T/run/qemu/$A.qmp" 1)
check "vCPU 1 has a thread of its own" eval "[ -n '$tid1' ] && [ '$tid1' != '$pa' ]"
check "vCPU 1's thread runs on CPU 1 only (vcpupin)" eval "[ \"\$(affinity /proc/$pa/task/$tid1)\" = 1 ]"
check "QEMU's main thread on CPU 0 only (emulatorpin)" eval "[ \"\$(affinity /proc/$pa)\" = 0 ]"
check "$B, untuned, has no memory limit" is $CG/memory/declvirt/$B/memory.limit_in_bytes "$(cat $CG/memory/memory.limit_in_bytes)"

rm "$D/$A.xml"
check "$A stops when its file goes" wait_until 20 eval "! st_has domain/$A"
check "and its QEMU is gone" eval "! kill -0 $pa 2>/dev/null"
for h in memory cpu cpuacct cpuset blkio pids devices unified; do
    check "its $h cgroup is removed" test ! -e "$CG/$h/declvirt/$A"
done
check "$B's cgroup stays while it runs" test -d "$CG/memory/declvirt/$B"
kill -9 "$pb"
check "$B found dead is restarted" wait_until 30 eval "phase_is domain/$B ready && [ \"\$(qemu_pid $B)\" != '$pb' ]"
check "into a fresh cgroup of its own" in_cgroup "$(qemu_pid "$B")" devices "/declvirt/$B"
rm "$D/$B.xml"
check "$B goes with its file" wait_until 20 eval "! st_has domain/$B"
check "and so does its cgroup" test ! -e "$CG/memory/declvirt/$B"

# ---- values the host refuses ----------------------------------------------------------------------------
dom_xml "$C" 1 "<cputune><emulatorpin cpuset='$(( $(nproc) + 5 ))'/></cputune>" > "$D/$C.xml"
check "a CPU the host lacks fails the start" wait_until 30 phase_is domain/$C failed
check "naming the file and the value the kernel refused" \
    eval "st_msg domain/$C | grep -q \"cannot set cpuset limit $(( $(nproc) + 5 )) in $CG/cpuset/declvirt/$C/cpuset.cpus: .*(the kernel refused it)\""
check "no QEMU runs for it" eval "[ -z \"\$(qemu_pid $C)\" ]"
check "and no cgroup is left" eval "[ ! -e $CG/memory/declvirt/$C ] && [ ! -e $CG/cpuset/declvirt/$C ]"
if [ ! -e $CG/blkio/blkio.weight ] && [ ! -e $CG/blkio/blkio.bfq.weight ]; then
    dom_xml "$C" 1 "<blkiotune><weight>500</weight></blkiotune>" > "$D/$C.xml"
    check "a blkio weight on a host without weights is refused" \
        wait_until 30 eval "st_msg domain/$C | grep -q 'neither blkio.weight nor blkio.bfq.weight'"
    check "and nothing is left of it" eval "[ -z \"\$(qemu_pid $C)\" ] && [ ! -e $CG/memory/declvirt/$C ]"
else
    skip "a blkio weight on a host without weights is refused" "this host's I/O scheduler takes weights"
    skip "and nothing is left of it" "idem"
fi
rm "$D/$C.xml"
check "$C goes with its file" wait_until 20 eval "! st_has domain/$C"

# ---- a cgroup that holds a process declvirt did not start: refused, the process left alone ----------
mkdir "$CG/memory/declvirt/$C"
sleep 300 &
sp=$!
on_exit "kill $sp; wait $sp; rmdir $CG/memory/declvirt/$C"
echo "$sp" > "$CG/memory/declvirt/$C/cgroup.procs"
dom_xml "$C" 1 > "$D/$C.xml"
check "a cgroup holding a process not ours refuses the start" \
    wait_until 30 eval "st_msg domain/$C | grep -q 'holds a process (PID $sp) not started by declvirt'"
check "no QEMU runs for it" eval "[ -z \"\$(qemu_pid $C)\" ]"
check "and the process is left alone, in its cgroup" in_cgroup "$sp" memory "/declvirt/$C"

# ---- a container: the same elements, through the same code ----------------------------------------
if [ -x /bin/busybox ]; then
    E=cge$$
    mkdir -p "$T/ct/bin" "$T/ct/sbin" "$T/ct/proc" "$T/ct/sys" "$T/ct/dev" "$T/ct/tmp"
    cp /bin/busybox "$T/ct/bin/busybox"
    ln -s busybox "$T/ct/bin/sh"
    ln -s busybox "$T/ct/bin/sleep"
    printf '#!/bin/sh\nexec sleep 1000\n' > "$T/ct/sbin/init"
    chmod 0755 "$T/ct/sbin/init"
    on_exit 'for f in "$T"/run/lxc/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")"; done'
    cat > "$D/$E.xml" <<XML
<domain type='lxc'>
  <name>$E</name>
  <metadata>
    <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' shutdown-timeout='1'/>
  </metadata>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <memtune><hard_limit unit='MiB'>48</hard_limit></memtune>
  <cputune><shares>256</shares><period>50000</period><quota>25000</quota><emulatorpin cpuset='1'/></cputune>
  <os><type>exe</type><init>/sbin/init</init></os>
  <devices><filesystem type='mount'><source dir='$T/ct'/><target dir='/'/></filesystem></devices>
</domain>
XML
    check "a tuned container runs" wait_until 30 phase_is domain/$E ready
    ce=$(cat "$T/run/lxc/$E.pid" 2>/dev/null)
    check "memory.limit_in_bytes is its <hard_limit>, not <memory>" is $CG/memory/declvirt/$E/memory.limit_in_bytes $((48 * 1048576))
    check "cpu.shares is <shares>" is $CG/cpu/declvirt/$E/cpu.shares 256
    check "cpu.cfs_period_us is <period>" is $CG/cpu/declvirt/$E/cpu.cfs_period_us 50000
    check "cpu.cfs_quota_us is <quota> (1 vCPU)" is $CG/cpu/declvirt/$E/cpu.cfs_quota_us 25000
    check "cpuset.cpus is <emulatorpin>" is $CG/cpuset/declvirt/$E/cpuset.cpus 1
    check "its init is in that cpuset and runs on CPU 1 only" \
        eval "in_cgroup '$ce' cpuset /declvirt/$E && [ \"\$(affinity /proc/$ce)\" = 1 ]"
    # Its device list as a v2 program too (it runs in a user namespace: the agent made its
    # filesystems, so the program applies from the start).
    if [ -e $CG/unified/cgroup.procs ]; then
        ct_unified() { sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG/unified/declvirt/$E" "$@"; }
        check "from the container's v2 cgroup alone, root cannot open the loop device" \
            eval "ct_unified head -c1 $LOOP 2>&1 | grep -q 'Operation not permitted'"
        check "while /dev/null works there" ct_unified sh -c 'echo x > /dev/null'
    fi
    rm "$D/$E.xml"
    check "the container goes with its file" wait_until 20 eval "! st_has domain/$E"
    check "and so do its cgroups" eval "[ ! -e $CG/memory/declvirt/$E ] && [ ! -e $CG/cpuset/declvirt/$E ]"
else
    skip "a tuned container runs" "busybox-static is not installed"
fi
