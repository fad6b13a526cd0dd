#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The devices libvirt adds (issue 18), under the real agent and QEMU (TCG): a q35 guest as
# virt-install makes it (an empty SATA cdrom, the guest agent channel, balloon, rng,
# watchdog, USB tablet on qemu-xhci, virtio-scsi, ich9 sound with audio none) reaches
# running and each device is in QEMU under libvirt's name, seen through QMP; the guest
# agent's socket is in the run directory, root's, 0600, and QEMU answers on it; it is gone
# once the domain stops. A file planted where a channel's socket goes is left alone and
# the start fails naming it.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog python3
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "qemu-system-x86_64 is not installed"
agent_setup_qemu
D=$T/desired
P1=$T/pools/p1
MiB=1048576
# Names of this run's own: QEMUs of other tests on this host may be called g1 or g2.
G1=devq1-$$
G2=devq2-$$

# dom_xml NAME [POLICY-ATTRS] [EXTRA-DEVICES]
dom_xml() {
    cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <metadata>
    <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' ${2:-} shutdown-timeout='2'/>
  </metadata>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='raw'/>
      <source pool='p1' volume='$1.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <controller type='usb' index='0' model='qemu-xhci' ports='15'/>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <controller type='sata' index='0'/>
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='pci' index='1' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='1' port='0x10'/>
    </controller>
    <controller type='virtio-serial' index='0'/>
    <channel type='unix'>
      <source mode='bind'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    ${3:-}
    <input type='tablet' bus='usb'/>
    <sound model='ich9'>
      <audio id='1'/>
    </sound>
    <audio id='1' type='none'/>
    <watchdog model='i6300esb' action='reset'/>
    <memballoon model='virtio'>
      <stats period='2'/>
    </memballoon>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
  </devices>
</domain>
XML
}

Q() { qmp_json "$T/run/qemu/$G1.qmp" "$@"; }
# peripheral ID: the device is in QEMU's /machine/peripheral under that id.
peripheral() { Q qom-list '{"path": "/machine/peripheral"}' | grep -q "\"name\": \"$1\""; }
hmp() { Q human-monitor-command "{\"command-line\": \"$1\"}"; }

pool_xml p1 "$P1" > "$D/p1.xml"
vol_xml p1 $G1.img $((8 * MiB)) raw > "$D/$G1.img.xml"
dom_xml $G1 > "$D/$G1.xml"
agent_start
check "the guest with libvirt's devices reaches running" wait_until 60 phase_is domain/$G1 ready
pid=$(cat "$T/run/qemu/$G1.pid" 2>/dev/null)
check "QEMU runs" kill -0 "$pid"
for id in usb scsi0 virtio-serial0 pci.1 sda input0 channel0 sound0 sound0-codec0 \
    watchdog0 balloon0 rng0; do
    check "QEMU has device '$id'" peripheral "$id"
done
check "the cdrom is an ide-cd on q35's AHCI" eval 'hmp "info qtree" | grep -q "dev: ide-cd, id \\\\\"sda\\\\\""'
check "the cdrom has no medium" eval 'Q query-block | python3 -c "
import json, sys
b = [d for d in json.load(sys.stdin) if d.get(\"qdev\", \"\").startswith(\"/machine/peripheral/sda/\") or d.get(\"qdev\") == \"sda\"]
sys.exit(0 if len(b) == 1 and \"inserted\" not in b[0] and b[0][\"removable\"] else 1)"'
check "query-chardev shows the guest agent channel" eval 'Q query-chardev | grep -q "\"label\": \"charchannel0\""'
check "the channel has its name for the guest" \
    eval 'Q qom-get "{\"path\": \"/machine/peripheral/channel0\", \"property\": \"name\"}" | grep -qx "\"org.qemu.guest_agent.0\""'
check "query-balloon answers" eval 'Q query-balloon | grep -q "\"actual\": $((128 * MiB))"'
check "the balloon polls the guest's statistics every 2 s" \
    eval 'Q qom-get "{\"path\": \"/machine/peripheral/balloon0\", \"property\": \"guest-stats-polling-interval\"}" | grep -qx 2'
check "the rng reads /dev/urandom" \
    eval 'Q qom-get "{\"path\": \"/objects/objrng0\", \"property\": \"filename\"}" | grep -qx "\"/dev/urandom\""'
check "the sound plays to audiodev none" eval 'hmp "info qtree" | grep -q "audiodev = \\\\\"audio1\\\\\""'
check "the watchdog resets the guest" eval 'tr "\0" "\n" < /proc/$pid/cmdline | grep -qx "watchdog=reset"'

GA=$T/run/qemu/$G1.org.qemu.guest_agent.0
check "the guest agent socket is in the run directory" test -S "$GA"
check "it is root's, mode 0600" test "$(stat -c '%U:%G %a' "$GA")" = "root:root 600"
check "QEMU got it as a descriptor, not a path" \
    eval 'tr "\0" "\n" < /proc/$pid/cmdline | grep -q "^socket,id=charchannel0,fd=[0-9]*,server=on,wait=off$" &&
        ! tr "\0" "\n" < /proc/$pid/cmdline | grep -q "$GA"'
# QEMU listens on the agent's socket: a client held there shows as connected in QEMU.
ga_connected() {
    Q query-chardev | python3 -c '
import json, sys
ch = [d for d in json.load(sys.stdin) if d["label"] == "charchannel0"]
sys.exit(0 if ch and ch[0]["filename"].startswith("unix:") else 1)'
}
check "nobody is connected to the guest agent socket yet" eval '! ga_connected'
python3 -c 'import socket, sys, time
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); time.sleep(10)' "$GA" &
client=$!
on_exit kill "$client"
check "a client of the guest agent socket reaches QEMU" wait_until 5 ga_connected

check "observed XML keeps the devices" eval 'grep -q "<channel type=.unix.>" "$T/state/domains/$G1.xml" &&
    grep -q "<memballoon model=.virtio.>" "$T/state/domains/$G1.xml"'
if command -v virt-xml-validate >/dev/null 2>&1; then
    check "observed XML is valid for libvirt's domain schema" virt-xml-validate "$T/state/domains/$G1.xml" domain
else
    skip "observed XML is valid for libvirt's domain schema" "virt-xml-validate is not installed"
fi

dom_xml $G1 "state='stopped'" > "$D/$G1.xml"
check "QEMU is gone" wait_until 20 eval '! kill -0 "$pid" 2>/dev/null'
check "the guest is stopped" wait_until 10 phase_is domain/$G1 stopped
check "the guest agent socket is removed with it" wait_until 5 eval '[ ! -e "$GA" ]'

# ---- a file planted where a written channel socket goes -------------------------------------------
mkdir -p "$T/sock"
echo "precious" > "$T/sock/app.sock"
vol_xml p1 $G2.img $((8 * MiB)) raw > "$D/$G2.img.xml"
dom_xml $G2 "" "<channel type='unix'><source mode='bind' path='$T/sock/app.sock'/><target type='virtio' name='com.example.app.0'/></channel>" > "$D/$G2.xml"
check "the start fails naming the channel's path" \
    wait_until 30 eval 'st_msg domain/$G2 | grep -q "cannot listen on $T/sock/app.sock for channel .com.example.app.0.: File exists"'
check "the planted file is unchanged" test "$(cat "$T/sock/app.sock")" = "precious"
rm "$T/sock/app.sock"
check "once it is gone the guest runs with its socket there" wait_until 60 phase_is domain/$G2 ready
check "the written channel socket is root's, 0600" test "$(stat -c '%U %a %F' "$T/sock/app.sock")" = "root 600 socket"

agent_stop
