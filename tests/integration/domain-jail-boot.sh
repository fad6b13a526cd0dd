#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A real Linux guest still boots in QEMU's jail (issue 16): two guests, g1 and g2, each
# QEMU as a uid of its own in a mount namespace of its own, boot the host's kernel and a
# busybox initramfs (the domain-boot technique, under TCG) from a qcow2 overlay each on
# one raw backing image they share, with a tap on a NAT network (DHCP), a serial console
# and VNC. Each guest reads the base image's marker and known bytes through its overlay,
# writes to its disk, leases an address and pings the gateway; the base image stays
# unchanged and out of reach of the jailed QEMU, and stopping the guests leaves it in place.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog busybox
need_prog python3
need_prog qemu-img
need_prog ip
need_prog nft
need_prog md5sum
[ -x /usr/sbin/dnsmasq ] || skip_all "dnsmasq is not installed"
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "qemu-system-x86_64 is not installed"
[ -c /dev/net/tun ] || skip_all "/dev/net/tun is missing"
need_jail_probe
guest_kernel
for a in mount sleep head dd tr md5sum cut ip udhcpc ping; do
    busybox --list | grep -qx "$a" || skip_all "busybox has no $a applet"
done
netns_setup dvt-djb

agent_setup_qemu
D=$T/desired
I=$T/images
MiB=1048576

# ---- the guest: virtio disk and network modules, /init, the DHCP script --------------------
R=$T/initramfs
INITRD=$T/boot/initrd.gz
mkdir -p "$R/bin" "$T/boot"
# udhcpc runs this on each event; "bound" carries the lease.
cat > "$R/bin/dhcp" <<'SH'
#!/bin/sh
case "$1" in
bound | renew)
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}"
    echo "$ip ${router%% *}" > /lease
    ;;
esac
SH
chmod 0755 "$R/bin/dhcp"
# Every line the test reads starts with "DVJAIL". The disk: a marker at offset 0 and 64 KiB
# of known bytes at 1 MiB come from the backing image; the guest writes at 8 MiB and
# reads it back from the device (page cache dropped).
guest_initramfs "$R" "$INITRD" virtio_pci virtio_blk virtio_net <<'INIT'
#!/bin/sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in /lib/modules/*.ko; do [ -e "$m" ] && insmod "$m"; done
name=
for a in $(cat /proc/cmdline); do case $a in dvname=*) name=${a#dvname=} ;; esac; done
i=0; while ! [ -b /dev/vda -a -e /sys/class/net/eth0 ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
echo "DVJAIL marker $(head -c 64 /dev/vda | tr -dc 'A-Za-z0-9-')"
echo "DVJAIL known $(dd if=/dev/vda bs=65536 skip=16 count=1 2>/dev/null | md5sum | cut -d' ' -f1)"
printf 'written-by-%s' "$name" | dd of=/dev/vda bs=512 seek=16384 conv=notrunc,fsync 2>/dev/null
echo 3 > /proc/sys/vm/drop_caches
echo "DVJAIL wrote $(dd if=/dev/vda bs=512 skip=16384 count=1 2>/dev/null | tr -dc 'A-Za-z0-9-')"
ip link set eth0 up
# dnsmasq pings an address before it offers it and answers nothing else meanwhile (up to
# 3 s an address): with two guests asking at once, a reply can come later than udhcpc's
# three requests wait. A DHCP client tries again, as this one does, at most three times.
n=1
until udhcpc -i eth0 -n -q -t 10 -T 4 -s /bin/dhcp; do
    echo "DVJAIL udhcpc attempt $n failed"
    n=$((n + 1)); [ $n -le 3 ] || break
done
read ip gw < /lease
echo "DVJAIL lease $ip"
ping -c 1 -W 10 "$gw" >/dev/null 2>&1 && echo "DVJAIL ping $gw ok"
echo "DVJAIL ready"
while :; do sleep 3600; done
INIT

# ---- the shared base image and one overlay per guest ----------------------------------------
mkdir -p "$I"
MARK=dvjail-base-$$-$RANDOM
BASE=$I/base.raw
truncate -s $((16 * MiB)) "$BASE"
printf '%s' "$MARK" | dd of="$BASE" conv=notrunc 2>/dev/null
head -c 65536 /dev/urandom | dd of="$BASE" bs=65536 seek=16 conv=notrunc 2>/dev/null
KNOWN=$(dd if="$BASE" bs=65536 skip=16 count=1 2>/dev/null | md5sum | cut -d' ' -f1)
# root's alone: the agent opens every layer and passes it; nothing is handed to a guest.
chmod 0600 "$BASE"
base_sum=$(md5sum < "$BASE")
for g in g1 g2; do
    qemu-img create -q -f qcow2 -b "$BASE" -F raw "$I/$g.qcow2"
    chmod 0600 "$I/$g.qcow2"
done
size0_g1=$(stat -c %s "$I/g1.qcow2")
size0_g2=$(stat -c %s "$I/g2.qcow2")

# dom_xml NAME [POLICY-ATTRS]
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
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$KERNEL</kernel>
    <initrd>$INITRD</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 dvname=$1</cmdline>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$I/$1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='nat1'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <target port='0'/>
    </serial>
    <graphics type='vnc'/>
  </devices>
</domain>
XML
}
console() { cat "$T/state/domains/$1.console.log" 2>/dev/null; }
# said NAME WHAT: the rest of the guest's "DVJAIL WHAT ..." console line.
said() { console "$1" | tr -d '\r' | sed -n "s/^DVJAIL $2 //p" | head -n 1; }
# logs NAME: the ends of the guest's console and QEMU logs, for a failure's detail.
logs() {
    echo "console of $1:"; console "$1" | tail -n 15
    echo "QEMU log of $1:"; tail -n 15 "$T/state/domains/$1.qemu.log" 2>/dev/null
}
booted() { console "$1" | grep -q "^DVJAIL ready"; }
in_range() {
    local ip=$1 last=${1##*.}
    [[ "$ip" =~ ^192\.0\.2\.[0-9]+$ ]] && [ "$last" -ge 100 ] && [ "$last" -le 150 ]
}
# Two guests boot at once under TCG on two shared CPUs: generous, a deadline not a sleep.
BOOT=240

# ---- both guests start ----------------------------------------------------------------------
nat_net_xml nat1 dvjb0 > "$D/nat1.xml"
dom_xml g1 > "$D/g1.xml"
dom_xml g2 > "$D/g2.xml"
agent_start_ns
check "the network is ready" wait_until 30 phase_is network/nat1 ready
for g in g1 g2; do
    check "$g is started" wait_until 60 phase_is "domain/$g" ready
done
pid1=$(qemu_pid g1)
pid2=$(qemu_pid g2)
check "both QEMUs run" eval 'alive "$pid1" && alive "$pid2"'
uid1=$(applied_uid g1)
uid2=$(applied_uid g2)
check "each has a uid of its own in its last-applied record" \
    eval '[ -n "$uid1" ] && [ -n "$uid2" ] && [ "$uid1" != 0 ] && [ "$uid2" != 0 ] && [ "$uid1" != "$uid2" ]'
check "g1's QEMU runs as it" eval '[ "$(stat -c %u "/proc/$pid1")" = "$uid1" ]'
check "g2's QEMU runs as it" eval '[ "$(stat -c %u "/proc/$pid2")" = "$uid2" ]'
mnt_self=$(readlink /proc/self/ns/mnt)
check "each QEMU is in a mount namespace of its own" eval '
    m1=$(readlink "/proc/$pid1/ns/mnt") && m2=$(readlink "/proc/$pid2/ns/mnt") &&
    [ "$m1" != "$mnt_self" ] && [ "$m2" != "$mnt_self" ] && [ "$m1" != "$m2" ]'
check "the base image is not handed to either guest (root's, 0600)" \
    test "$(stat -c '%u %a' "$BASE")" = "0 600"

# ---- both boot from their overlays -----------------------------------------------------------
for g in g1 g2; do
    check "$g boots in its jail to the end of its /init" eval 'wait_until $BOOT booted '$g' || { logs '$g'; false; }'
done
for g in g1 g2; do
    check "$g reads the base image's marker through its overlay" test "$(said $g marker)" = "$MARK"
    check "$g reads the base image's known bytes" test "$(said $g known)" = "$KNOWN"
    check "$g writes to its disk and reads it back" test "$(said $g wrote)" = "written-by-$g"
    check "$g leases an address of the network's range" eval 'in_range "$(said '$g' lease)" || { logs '$g'; false; }'
    check "$g's address is dnsmasq's lease for its MAC" eval '
        mac=$(grep -o "<mac address=.[0-9a-f:]*" "$T/state/domains/'$g'.xml" | grep -o "[0-9a-f:]\{17\}") &&
        grep -q " $mac $(said '$g' lease) " "$T/state/networks/nat1.leases"'
    check "$g pings the gateway" test "$(said $g ping)" = "192.0.2.1 ok"
done
for g in g1 g2; do
    echo "# $g: $(console $g | grep -c '^DVJAIL udhcpc attempt') failed DHCP attempt(s) before its lease"
done
check "the two leases differ" test "$(said g1 lease)" != "$(said g2 lease)"
check "the base image is unchanged" test "$(md5sum < "$BASE")" = "$base_sum"
check "g1's overlay grew" wait_until 10 eval '[ "$(stat -c %s "$I/g1.qcow2")" -gt "$size0_g1" ]'
check "g2's overlay grew" wait_until 10 eval '[ "$(stat -c %s "$I/g2.qcow2")" -gt "$size0_g2" ]'
for g in g1 g2; do
    check "$g's VNC socket answers RFB" vnc_answers "$T/run/qemu-vnc/$g/vnc"
done

# ---- what g1's QEMU can reach -------------------------------------------------------------------
check "as g1's QEMU in its jail, the base image's path is not there" probe_says "$pid1" "$BASE" ENOENT
check "nor g2's overlay" probe_says "$pid1" "$I/g2.qcow2" ENOENT
check "nor its own overlay's path (QEMU has it as a descriptor)" probe_says "$pid1" "$I/g1.qcow2" ENOENT
check "nor /etc/shadow" probe_says "$pid1" /etc/shadow ENOENT
check "while its kernel opens (the probe is real)" probe_says "$pid1" "$KERNEL" ok

# ---- stopping them --------------------------------------------------------------------------------
dom_xml g1 "state='stopped'" > "$D/g1.xml"
check "state='stopped' stops g1's QEMU" wait_until 30 eval '! alive "$pid1"'
check "g1 is stopped" wait_until 15 phase_is domain/g1 stopped
check "g2 still runs meanwhile" alive "$pid2"
rm "$D/g2.xml"
check "removing g2's file stops its QEMU" wait_until 30 eval '! alive "$pid2"'
check "g2 leaves status.xml" wait_until 15 eval '[ -z "$(phase_of domain/g2)" ]'
check "the base image is left in place, unchanged" test "$(md5sum < "$BASE")" = "$base_sum"
check "so are both overlays" eval '[ -f "$I/g1.qcow2" ] && [ -f "$I/g2.qcow2" ]'
# Each overlay holds its guest's write over the base image's marker.
for g in g1 g2; do
    check "$g's overlay holds its write on the base image's data" eval '
        qemu-img convert -f qcow2 -O raw "$I/$g.qcow2" "$T/$g.raw" &&
        [ "$(head -c ${#MARK} "$T/$g.raw")" = "$MARK" ] &&
        [ "$(dd if="$T/$g.raw" bs=512 skip=16384 count=1 2>/dev/null | tr -d "\0")" = "written-by-$g" ]'
done
check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop
