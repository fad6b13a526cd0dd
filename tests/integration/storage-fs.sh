#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fs pools with the real agent on real loop devices: mkfs of an empty device, mount,
# volumes on the mounted filesystem, a device with data never formatted, devices and
# targets in the way, stop/start, restart with nothing re-done, on-remove='delete'.
. "$(dirname "$0")/../helpers/lib.sh"

need_root
for p in losetup mkfs.ext4 mkfs.vfat blkid mount umount sha256sum; do need_prog "$p"; done
need_prog /usr/bin/python3
[ -x "$DECLVIRT" ] || skip_all "$DECLVIRT is not built"

agent_setup
mkdir -p "$T/img" "$T/mnt"
D=$T/desired
MiB=1048576

DEVS=()
mkdev() {
    truncate -s 64M "$T/img/$1" || return 1
    local d; d=$(losetup -f --show "$T/img/$1") || return 1
    on_exit losetup -d "$d"
    DEVS+=("$d")
}
for n in empty data busy; do
    mkdev "$n.img" || skip_all "cannot create loop devices"
done
EMPTY=${DEVS[0]} DATA=${DEVS[1]} BUSY=${DEVS[2]}
# Unmount whatever is left on exit (registered after losetup -d, so it runs first).
on_exit 'for m in $(grep -o " $T/[^ ]*" /proc/self/mountinfo | tac); do umount -l "$m"; done'

# fs_xml NAME DEVICE TARGET FORMAT [POLICY-ATTRS]
fs_xml() {
    cat <<XML
<pool type='fs'>
  <name>$1</name>
  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' ${5:-}/>
  <source>
    <device path='$2'/>
    <format type='$4'/>
  </source>
  <target>
    <path>$3</path>
  </target>
</pool>
XML
}
# mounted DEVICE TARGET: the mount table has both, on one line.
mounted() { findmnt -rn -S "$1" -M "$2" >/dev/null; }
not_mounted() { ! findmnt -rn -M "$1" >/dev/null; }
reason_has() { st_msg "pool/$1" | grep -qF -- "$2"; }

# The data device: ext4 holding a file whose checksum is known.
mkfs.ext4 -q -F "$DATA"
mount "$DATA" "$T/mnt" && head -c 3000000 /dev/urandom > "$T/mnt/precious" && sync
sum_before=$(sha256sum < "$T/mnt/precious")
umount "$T/mnt"
data_intact() {
    mount -o ro "$DATA" "$T/mnt" || return 1
    local s; s=$(sha256sum < "$T/mnt/precious"); umount "$T/mnt"
    [ "$s" = "$sum_before" ] && [ "$(blkid -o value -s TYPE "$DATA")" = ext4 ]
}

# ---- build on an empty device: mkfs, mount ---------------------------------------------------
fs_xml p1 "$EMPTY" "$T/pools/p1" ext4 "on-remove='delete'" > "$D/p1.xml"
vol_xml p1 v1 $MiB raw > "$D/v1.xml"
agent_start
check "pool p1 on an empty device becomes ready" wait_until 20 phase_is pool/p1 ready
check "the device now holds ext4" [ "$(blkid -o value -s TYPE "$EMPTY")" = ext4 ]
check "it is mounted on the target" mounted "$EMPTY" "$T/pools/p1"
check "with nodev,nosuid,noexec" eval 'findmnt -rn -o OPTIONS -M "$T/pools/p1" | grep -q "nosuid,nodev,noexec"'
check "volume v1 is ready" wait_until 10 phase_is volume/p1/v1 ready
check "v1 is a file on the mounted filesystem" \
    eval '[ -f "$T/pools/p1/v1" ] && [ "$(stat -c %d "$T/pools/p1/v1")" = "$(stat -c %d "$T/pools/p1/lost+found")" ]'
check "the pool XML shows the capacity" eval 'grep -q "<capacity unit=.bytes.>[1-9]" "$T/state/pools/p1.xml"'
if command -v virt-xml-validate >/dev/null; then
    check "the observed pool XML validates" virt-xml-validate "$T/state/pools/p1.xml" storagepool
    check "the observed volume XML validates" virt-xml-validate "$T/state/volumes/p1/v1.xml" storagevol
else
    skip "the observed XML validates" "virt-xml-validate is not installed"
fi

# ---- data safety: a device holding ext4 and a file is never formatted -----------------------
fs_xml p2 "$DATA" "$T/pools/p2" vfat > "$D/p2.xml"
check "a device with another filesystem: pool blocked" wait_until 10 phase_is pool/p2 blocked
check "the reason names the device and its signature" \
    reason_has p2 "$DATA holds a ext4 signature; not formatting (build='if-empty')"
wait_pass; wait_pass
check "nothing was mounted on its target" not_mounted "$T/pools/p2"
check "no mkfs ran on it" eval '! grep -F "running mkfs" "$T/agent.log" | grep -qF "$DATA"'
check "the ext4 filesystem and its file are intact" data_intact
rm -f "$D/p2.xml"
check "its status goes when its file goes" wait_until 10 eval '! st_has pool/p2'

# The same device with the filesystem it holds is simply mounted, data and all.
fs_xml p3 "$DATA" "$T/pools/p3" ext4 > "$D/p3.xml"
check "a device with the requested filesystem: pool ready" wait_until 10 phase_is pool/p3 ready
check "its file is there, unchanged" \
    eval '[ "$(sha256sum < "$T/pools/p3/precious")" = "$sum_before" ]'
check "p3 lists the file as an unmanaged volume" \
    wait_until 10 eval 'st_attr volume/p3/precious managed | grep -q no'
rm -f "$D/p3.xml"
check "p3 is unmounted when its file goes (on-remove stop)" wait_until 10 not_mounted "$T/pools/p3"
check "and the data is still intact" data_intact

# ---- things in the way -----------------------------------------------------------------------
mkfs.ext4 -q -F "$BUSY"
mkdir -p "$T/elsewhere" && mount "$BUSY" "$T/elsewhere"
fs_xml p4 "$BUSY" "$T/pools/p4" ext4 > "$D/p4.xml"
check "a device mounted elsewhere: blocked" wait_until 10 phase_is pool/p4 blocked
check "the reason names both places" reason_has p4 "$BUSY is already mounted on $T/elsewhere"
check "not mounted a second time" not_mounted "$T/pools/p4"
umount "$T/elsewhere"
check "once unmounted there, p4 becomes ready (resync)" wait_until 15 phase_is pool/p4 ready
rm -f "$D/p4.xml"
wait_until 10 not_mounted "$T/pools/p4"

fs_xml p5 /dev/declvirt-no-such-disk "$T/pools/p5" ext4 > "$D/p5.xml"
check "a missing device: blocked" wait_until 10 phase_is pool/p5 blocked
check "the reason names it" reason_has p5 "source device /dev/declvirt-no-such-disk does not exist"
check "its target is not made" [ ! -e "$T/pools/p5" ]
rm -f "$D/p5.xml"

: > "$T/pools/afile"
fs_xml p6 "$BUSY" "$T/pools/afile" ext4 > "$D/p6.xml"
check "a target that is a file: blocked" wait_until 10 phase_is pool/p6 blocked
check "the reason names the target" reason_has p6 "target path $T/pools/afile is not a directory"
rm -f "$D/p6.xml"

# Someone else's filesystem on our target.
mkdir -p "$T/pools/p7" && mount -t tmpfs declvirt-other "$T/pools/p7"
fs_xml p7 "$BUSY" "$T/pools/p7" ext4 > "$D/p7.xml"
check "a target mounted from something else: blocked" wait_until 10 phase_is pool/p7 blocked
check "the reason names what is mounted there" \
    reason_has p7 "target $T/pools/p7 is mounted from declvirt-other, not from $BUSY"
rm -f "$D/p7.xml"
wait_pass; wait_pass
check "the other filesystem is not unmounted" eval 'findmnt -rn -M "$T/pools/p7" | grep -q declvirt-other'
umount "$T/pools/p7"

# ---- stop and start ---------------------------------------------------------------------------
fs_xml p1 "$EMPTY" "$T/pools/p1" ext4 "state='inactive' on-remove='delete'" > "$D/p1.xml"
check "state='inactive' stops the pool" wait_until 10 phase_is pool/p1 stopped
check "and unmounts it" not_mounted "$T/pools/p1"
check "v1 is not in the bare mount point" [ ! -e "$T/pools/p1/v1" ]
fs_xml p1 "$EMPTY" "$T/pools/p1" ext4 "on-remove='delete'" > "$D/p1.xml"
check "state='active' mounts it again" wait_until 10 phase_is pool/p1 ready
check "v1 is back" wait_until 10 phase_is volume/p1/v1 ready
check "no second mkfs" [ "$(grep -c "running mkfs.*$EMPTY" "$T/agent.log")" = 1 ]

# ---- restart with the pool active: nothing re-done --------------------------------------------
mounts_before=$(grep -F " $T/" /proc/self/mountinfo)
agent_stop
check "the pool stays mounted while the agent is down" mounted "$EMPTY" "$T/pools/p1"
lines=$(wc -l < "$T/agent.log")
agent_start
wait_pass; wait_pass
after=$(tail -n +"$((lines + 1))" "$T/agent.log")
check "after restart pool p1 is ready" phase_is pool/p1 ready
check "after restart volume v1 is ready" phase_is volume/p1/v1 ready
check "after restart no build/start/create is done" eval '! grep -E "(build|start|create) done" <<<"$after"'
check "after restart no mount or mkfs ran" eval '! grep -E "running (mount|mkfs|umount)" <<<"$after"'
check "the mount table is unchanged" [ "$(grep -F " $T/" /proc/self/mountinfo)" = "$mounts_before" ]

# ---- on-remove='delete': unmounted, empty mount point removed, filesystem kept ----------------
rm -f "$D/v1.xml"
check "the volume file goes first (on-remove keep: forgotten)" wait_until 10 eval '! st_attr volume/p1/v1 managed | grep -q yes'
rm -f "$T/pools/p1/v1"
rm -f "$D/p1.xml"
check "the pool is unmounted" wait_until 15 not_mounted "$T/pools/p1"
check "its status goes" wait_until 15 eval '! st_has pool/p1'
check "the empty mount point is removed" [ ! -e "$T/pools/p1" ]
check "the filesystem on the device is kept" [ "$(blkid -o value -s TYPE "$EMPTY")" = ext4 ]
agent_stop
