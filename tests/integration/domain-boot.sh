#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A real Linux guest under the real agent (issue 6): the host's Debian kernel boots a
# busybox initramfs this test builds, under TCG. state='stopped' powers it down
# gracefully (ACPI power button -> busybox acpid -> poweroff, no quit, no kill), and a
# guest that powers itself off (cmdline dvshutdown=N) is started again under
# restart='always' and left stopped under 'on-failure' (a clean shutdown) and 'never';
# also for a guest adopted after an agent restart (told by QEMU's SHUTDOWN event).
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog busybox
need_prog python3
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "qemu-system-x86_64 is not installed"
guest_kernel
for a in acpid poweroff mount sleep; do
    busybox --list | grep -qx "$a" || skip_all "busybox has no $a applet"
done

agent_setup_qemu
D=$T/desired

# ---- the initramfs: busybox, the ACPI button and evdev modules (when they are modules),
# /init and the power-button handler.
R=$T/initramfs
INITRD=$T/boot/initrd.gz
mkdir -p "$R/etc/acpi/PWRF" "$T/boot"
printf '#!/bin/sh\necho "DVBOOT power button"\npoweroff -f\n' > "$R/etc/acpi/PWRF/00000080"
chmod 0755 "$R/etc/acpi/PWRF/00000080"
# button: the power button's input device; evdev: /dev/input/event*, what acpid reads.
guest_initramfs "$R" "$INITRD" button evdev <<'INIT'
#!/bin/sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in /lib/modules/*.ko; do [ -e "$m" ] && insmod "$m"; done
i=0; while [ ! -e /dev/input/event0 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
# busybox acpid maps KEY_POWER to "PWRF/00000080" and runs /etc/acpi/PWRF/00000080;
# "ok" is printed once it holds the event devices open.
acpid -f -d &
i=0; while ! ls -l /proc/$!/fd 2>/dev/null | grep -q /dev/input/event && [ $i -lt 200 ]; do
    sleep 0.05; i=$((i + 1))
done
echo "DVBOOT ok"
n=
for a in $(cat /proc/cmdline); do case $a in dvshutdown=*) n=${a#dvshutdown=} ;; esac; done
if [ -n "$n" ]; then
    sleep "$n"
    echo "DVBOOT guest poweroff"
    poweroff -f
fi
while :; do sleep 3600; done
INIT

# dom_xml NAME POLICY-ATTRS [EXTRA-CMDLINE]
dom_xml() {
    cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <metadata>
    <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' $2/>
  </metadata>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$KERNEL</kernel>
    <initrd>$INITRD</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 ${3:-}</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
  <devices>
    <serial type='pty'>
      <target port='0'/>
    </serial>
  </devices>
</domain>
XML
}
console() { cat "$T/state/domains/$1.console.log" 2>/dev/null; }
# boots NAME: how many times the guest came up ("DVBOOT ok" on its console).
boots() { console "$1" | grep -c "DVBOOT ok"; }
down() { local p; p=$(qemu_pid "$1"); [ -z "$p" ] || ! alive "$p"; }
# stopped_down NAME: the domain is stopped and no QEMU of it runs; says which part is not.
stopped_down() {
    local ph; ph=$(phase_of "domain/$1")
    [ "$ph" = stopped ] || { echo "phase of $1 is '$ph' ($(st_msg "domain/$1"))"; return 1; }
    down "$1" || { echo "QEMU of $1 runs as PID $(qemu_pid "$1")"; return 1; }
}
# A boot under TCG takes ~10 s alone, longer with three guests on two CPUs.
BOOT=90

# ---- graceful stop: the power button reaches the guest, it powers off --------------------------
dom_xml g1 "shutdown-timeout='30'" > "$D/g1.xml"
agent_start
check "the guest is started" wait_until 30 phase_is domain/g1 ready
pid1=$(qemu_pid g1)
check "QEMU runs" alive "$pid1"
check "its command line boots the kernel with ACPI" \
    eval 'tr "\0" "\n" < /proc/$pid1/cmdline | grep -qx -- "-kernel" &&
          ! tr "\0" "\n" < /proc/$pid1/cmdline | grep -q "acpi=off"'
check "the guest boots: its console log shows DVBOOT ok" wait_until $BOOT eval '[ "$(boots g1)" -ge 1 ]'
dom_xml g1 "state='stopped' shutdown-timeout='30'" > "$D/g1.xml"
t0=$(date +%s)
check "state='stopped': QEMU exits" wait_until 40 eval '! alive "$pid1"'
t1=$(date +%s)
check "before the shutdown-timeout (30 s): took $((t1 - t0)) s" test $((t1 - t0)) -lt 25
check "the guest saw the power button and powered off" \
    wait_until 5 eval 'console g1 | grep -q "DVBOOT power button"'
# The driver's debug lines reach agent.log (log_level debug): their absence means something.
check "the agent log has the driver's lines" grep -q "domain g1: QEMU running as PID $pid1" "$T/agent.log"
check "the agent pressed the power button (QMP system_powerdown)" \
    grep -q 'g1.qmp: -> {"execute":"system_powerdown"' "$T/agent.log"
check "the agent sent no quit" eval '! grep -q "domain g1: no power-down within the timeout" "$T/agent.log" &&
    ! grep -q "g1.qmp: -> {\"execute\":\"quit\"" "$T/agent.log"'
check "the agent killed nothing" eval '! grep -q "domain g1: killing QEMU" "$T/agent.log"'
check "the domain is stopped" wait_until 10 phase_is domain/g1 stopped
check "and stays stopped" holds_for 3 stopped_down g1
check "a stop is not an exit: no restart policy applied" eval '! st_msg domain/g1 | grep -q exited'

# ---- guest-initiated shutdown under each restart policy ------------------------------------------
# The three boot together; each powers itself off 2 s after it is up.
for pol in always on-failure never; do
    dom_xml "r-$pol" "restart='$pol' shutdown-timeout='30'" dvshutdown=2 > "$D/r-$pol.xml"
done
for pol in always on-failure never; do
    check "restart='$pol': the guest is started" wait_until 30 phase_is "domain/r-$pol" ready
done
pa=$(qemu_pid r-always)
for pol in always on-failure never; do
    check "restart='$pol': the guest boots and powers itself off" \
        wait_until $BOOT eval 'console r-'$pol' | grep -q "DVBOOT guest poweroff"'
done

check "restart='always': QEMU exits with the guest" wait_until 20 eval '! alive "$pa"'
check "restart='always': started again after the guest shut down" \
    wait_until 30 eval 'p=$(qemu_pid r-always); [ -n "$p" ] && [ "$p" != "$pa" ] && alive "$p"'
check "restart='always': the exit was a guest shutdown" \
    grep -q "domain/r-always: .*exited: guest shut down" "$T/agent.log"
check "restart='always': the guest boots again" wait_until $BOOT eval '[ "$(boots r-always)" -ge 2 ]'
# Done with it: down, quickly (the guest may be between boots).
dom_xml r-always "restart='always' state='stopped' shutdown-timeout='1'" > "$D/r-always.xml"
check "restart='always': state='stopped' ends the loop" wait_until 45 phase_is domain/r-always stopped

check "restart='never': stopped after the guest shut down" \
    wait_until 20 phase_is domain/r-never stopped
check "restart='never': its message says why" \
    eval 'st_msg domain/r-never | grep -q "guest shut down" && st_msg domain/r-never | grep -q "restart='"'"'never'"'"'"'
check "restart='never': not started again" holds_for 5 stopped_down r-never
check "restart='never': booted once" test "$(boots r-never)" -eq 1

check "restart='on-failure': stopped after the clean guest shutdown" \
    wait_until 20 phase_is domain/r-on-failure stopped
check "restart='on-failure': its message says the guest shut down" \
    eval 'st_msg domain/r-on-failure | grep -q "guest shut down"'
check "restart='on-failure': not started again" \
    holds_for 6 stopped_down r-on-failure
check "restart='on-failure': booted once" test "$(boots r-on-failure)" -eq 1

# ---- an adopted guest powers itself off: its SHUTDOWN event tells a clean exit ------------------
# After an agent restart QEMU is not the agent's child (no exit status): only the event
# on the events monitor says the guest shut down, so 'on-failure' leaves it down.
dom_xml r-adopt "restart='on-failure' shutdown-timeout='30'" dvshutdown=8 > "$D/r-adopt.xml"
check "adopted: the guest is started" wait_until 30 phase_is domain/r-adopt ready
check "adopted: the guest boots" wait_until $BOOT eval '[ "$(boots r-adopt)" -ge 1 ]'
pad=$(qemu_pid r-adopt)
agent_stop
agent_start
check "adopted: the same QEMU after the agent restart" \
    wait_until 15 eval 'phase_is domain/r-adopt ready && [ "$(qemu_pid r-adopt)" = "$pad" ]'
check "adopted: the agent was back before the guest powered off" \
    eval '! console r-adopt | grep -q "DVBOOT guest poweroff"'
check "adopted: the guest powers itself off" \
    wait_until 30 eval 'console r-adopt | grep -q "DVBOOT guest poweroff"'
check "adopted: stopped after the clean guest shutdown (restart='on-failure')" \
    wait_until 20 phase_is domain/r-adopt stopped
check "adopted: its message says the guest shut down" \
    eval 'st_msg domain/r-adopt | grep -q "guest shut down"'
check "adopted: not started again" holds_for 3 stopped_down r-adopt
check "adopted: booted once" test "$(boots r-adopt)" -eq 1

check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop
