#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Disk pools through the real agent on real loop devices: a gpt label written on an
# empty device, partitions created, listed and deleted as volumes, a too-large partition
# refused before anything is done, a device holding ext4 never labelled (blocked, its file
# intact), another partition table in the way, a mounted partition never deleted, and a
# restart of the agent that redoes nothing.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog parted
need_prog losetup
need_prog mkfs.ext4
need_prog wipefs
need_prog /usr/bin/python3
agent_setup

D=$T/desired
MiB=1048576
IMG=$T/img
mkdir -p "$IMG" "$T/mnt"

# new_loop VAR NAME: a 64 MiB image attached with partition scanning, its device in VAR
# (not through $(...): the detach must be registered in this shell, not a subshell).
new_loop() {
    truncate -s 64M "$IMG/$2"
    local dev
    dev=$(losetup -f --show -P "$IMG/$2") || skip_all "cannot attach a loop device"
    on_exit losetup -d "$dev"
    printf -v "$1" '%s' "$dev"
}
new_loop E empty
new_loop X ext4
new_loop M msdos
EB=$(basename "$E")

# The ext4 device holds a file whose checksum is compared at the end.
mkfs.ext4 -q "$X"
mount "$X" "$T/mnt" && on_exit umount "$T/mnt"
head -c 300000 /dev/urandom > "$T/mnt/precious"
SUM=$(sha256sum < "$T/mnt/precious")
umount "$T/mnt"
parted -s "$M" mklabel msdos

# disk_pool_xml NAME DEV [FORMAT] [POLICY-ATTRS] [TARGET]
disk_pool_xml() {
    cat <<XML
<pool type='disk'>
  <name>$1</name>
  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' ${4:-}/>
  <source>
    <device path='$2'/>
    <format type='${3:-gpt}'/>
  </source>
  ${5:+<target><path>$5</path></target>}
</pool>
XML
}
# explain ID: the object's phase and message, for a failed check.
explain() { echo "$1: phase $(phase_of "$1"): $(st_msg "$1")"; }
# check_st NAME ID CMD...: like check, showing the object's status when CMD fails.
check_st() {
    local name=$1 id=$2; shift 2
    if "$@" >/dev/null 2>&1; then ok "$name"; else not_ok "$name" "$(explain "$id")"; fi
}
# part_xml POOL NAME BYTES [FORMAT]
part_xml() {
    cat <<XML
<volume>
  <name>$2</name>
  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' pool='$1' on-remove='delete'/>
  <capacity unit='bytes'>$3</capacity>
  ${4:+<target><format type='$4'/></target>}
</volume>
XML
}
parts() { parted -s -m "$1" unit B print 2>/dev/null | awk -F: 'NR > 2 { print $1 ":" $2 ":" $4 }'; }
label() { parted -s -m "$1" unit B print 2>/dev/null | awk -F: 'NR == 2 { print $6 }'; }
table_id() { head -c $MiB "$1" | sha256sum; }

disk_pool_xml d1 "$E" gpt "on-remove='delete'" /dev > "$D/d1.xml"
disk_pool_xml dx "$X" "" "" /dev > "$D/dx.xml"
disk_pool_xml dm "$M" gpt > "$D/dm.xml"
part_xml d1 "${EB}p1" $((8 * MiB)) > "$D/v1.xml"
part_xml d1 "${EB}p2" $((4 * MiB)) linux-lvm > "$D/v2.xml"
agent_start

# ---- label and partitions ----------------------------------------------------------------
check "an empty device: the pool is ready" wait_until 15 phase_is pool/d1 ready
check "the first partition is ready" wait_until 15 phase_is "volume/d1/${EB}p1" ready
check "the second partition is ready" wait_until 15 phase_is "volume/d1/${EB}p2" ready
# Read once the agent is done with the device: while it creates the partitions, parted's
# print of the same device can fail (the kernel re-reads the table), and that is no bug.
check "parted sees a gpt label" test "$(label "$E")" = gpt
check "two partitions of 8 and 4 MiB, 1 MiB aligned" \
    test "$(parts "$E" | tr '\n' ' ')" = "1:1048576B:8388608B 2:9437184B:4194304B "
check "the kernel sees ${EB}p1 at once" wait_until 5 test -b "${E}p1"
check "${EB}p1 has 8 MiB" test "$(blockdev --getsize64 "${E}p1" 2>/dev/null)" = $((8 * MiB))
check "the linux-lvm partition has the lvm flag" \
    eval 'parted -s -m "$E" unit B print | grep -q "^2:.*:lvm;"'
check "the observed volume shows linux-lvm" \
    eval 'grep -q "<format type=.linux-lvm./>" "$T/state/volumes/d1/${EB}p2.xml"'
check "the observed pool shows the device size" \
    eval 'grep -q "<capacity unit=.bytes.>67108864</capacity>" "$T/state/pools/d1.xml"'
check "the observed pool shows 12 MiB allocated" \
    eval 'grep -q "<allocation unit=.bytes.>12582912</allocation>" "$T/state/pools/d1.xml"'
if command -v virt-xml-validate >/dev/null; then
    check "observed pool XML validates" virt-xml-validate "$T/state/pools/d1.xml" storagepool
    check "observed volume XML validates" \
        virt-xml-validate "$T/state/volumes/d1/${EB}p1.xml" storagevol
    wait_until 15 test -s "$T/state/pools/dm.xml"
    check "observed XML of a disk pool written without <target> validates" \
        virt-xml-validate "$T/state/pools/dm.xml" storagepool
    check "it shows the target path libvirt shows (/dev)" \
        grep -q "<path>/dev</path>" "$T/state/pools/dm.xml"
    check "observed pool XML lists the free extents of the device" \
        grep -q "<freeExtent start=" "$T/state/pools/d1.xml"
else
    skip "observed XML validates" "virt-xml-validate is not installed"
fi

# ---- refusals -------------------------------------------------------------------------------
check "a device holding ext4 is blocked" wait_until 15 phase_is pool/dx blocked
check "the reason names the device and the signature" \
    eval 'st_msg pool/dx | grep -qF "$X holds a ext4 signature; not formatting (build='"'if-empty'"')"'
check "a device with a dos table under a gpt pool is blocked" wait_until 15 phase_is pool/dm blocked
check "the reason names the other table" \
    eval 'st_msg pool/dm | grep -qF "device $M has a dos partition table, not gpt"'
check "the dos table is untouched" test "$(label "$M")" = msdos

before=$(table_id "$E")
part_xml d1 "${EB}p3" $((100 * MiB)) > "$D/v3.xml"
check "a partition larger than any free extent fails" \
    wait_until 15 eval 'phase_is "volume/d1/${EB}p3" failed || phase_is "volume/d1/${EB}p3" blocked'
check "the reason says how much is free" \
    eval 'st_msg "volume/d1/${EB}p3" | grep -q "needs 104857600 bytes but the largest free extent has only"'
check "nothing was created for it" test "$(table_id "$E")" = "$before"
part_xml d1 "${EB}p4" $MiB > "$D/v4.xml"
check "a name out of parted's numbering is refused" \
    wait_until 15 eval 'st_msg "volume/d1/${EB}p4" | grep -q "parted numbers the next partition"'
rm -f "$D/v3.xml" "$D/v4.xml"
check "the refused volumes go away with their files" \
    wait_until 15 eval '! st_has "volume/d1/${EB}p3" && ! st_has "volume/d1/${EB}p4"'
check "still only two partitions" test "$(parts "$E" | wc -l)" = 2

# ---- restart: nothing redone ----------------------------------------------------------------
check "converged before the restart" dv wait --timeout 15 pool/d1 "volume/d1/${EB}p1" "volume/d1/${EB}p2"
before=$(table_id "$E")
dev_mtime=$(stat -c %Y.%y "$E")
agent_stop
done_before=$(grep -cE "(build|create|start) done" "$T/agent.log")
mark=$(wc -l < "$T/agent.log")
agent_start
wait_pass
wait_pass
check "after a restart the pool is ready" phase_is pool/d1 ready
check "after a restart the volumes are ready" \
    eval 'phase_is "volume/d1/${EB}p1" ready && phase_is "volume/d1/${EB}p2" ready'
check "no build, start or create done after the restart" \
    test "$(grep -cE "(build|create|start) done" "$T/agent.log")" = "$done_before"
check "no mklabel, mkpart or rm after the restart" \
    eval '! tail -n +$((mark + 1)) "$T/agent.log" | grep -qE "running parted .*(mklabel|mkpart| rm )"'
check "the partition table is byte for byte the same" test "$(table_id "$E")" = "$before"
check "the device node was not written" test "$(stat -c %Y.%y "$E")" = "$dev_mtime"
check "the ext4 device is still blocked" phase_is pool/dx blocked

# ---- observe is cheap: unchanged devices are not re-read --------------------------------------
mark=$(wc -l < "$T/agent.log")
wait_pass
wait_pass
sleep 2.5 # at least one periodic resync (2 s)
wait_pass
check "resyncs of unchanged disks do not run parted" \
    eval '! tail -n +$((mark + 1)) "$T/agent.log" | grep -q "running parted"'

# ---- a mounted partition is never deleted --------------------------------------------------
mkfs.ext4 -q "${E}p1"
mount "${E}p1" "$T/mnt" && on_exit umount "$T/mnt"
rm -f "$D/v1.xml"
check "deleting a mounted partition is refused" \
    wait_until 15 eval 'st_msg "volume/d1/${EB}p1" | grep -qF "partition ${E}p1 is in use (mounted or held)"'
check "the mounted partition is still in the table" eval 'parts "$E" | grep -q "^1:"'
umount "$T/mnt"
# A refusal waits for the file to change (or the longest backoff): write it back, then
# remove it again.
# (with a change, an allocation: the engine resets a refusal's backoff on a new hash only)
part_xml d1 "${EB}p1" $((8 * MiB)) | sed "s|</capacity>|&<allocation unit='bytes'>$((8 * MiB))</allocation>|" \
    > "$D/v1.xml"
check_st "written back, the volume is ready again" "volume/d1/${EB}p1" \
    wait_until 15 phase_is "volume/d1/${EB}p1" ready
rm -f "$D/v1.xml"
check_st "once unmounted, it is deleted" "volume/d1/${EB}p1" \
    wait_until 15 eval '! parts "$E" | grep -q "^1:"'
check "the kernel dropped ${EB}p1" wait_until 5 eval '! test -e "${E}p1"'
check "the other partition stays" eval 'parts "$E" | grep -q "^2:"'

# ---- removal of the volumes, then of the pool (on-remove='delete') ------------------------------
rm -f "$D/v2.xml"
check_st "the second partition is deleted" "volume/d1/${EB}p2" \
    wait_until 15 eval '! parts "$E" | grep -q "^2:"'
rm -f "$D/d1.xml"
check_st "the pool's label is removed (on-remove='delete')" pool/d1 \
    wait_until 15 eval '[ "$(label "$E")" = unknown ]'
check "the pool is gone from status" wait_until 15 eval '! st_has pool/d1'
check "nothing is left on the device" eval '[ -z "$(wipefs -n "$E" 2>/dev/null)" ]'

# ---- the ext4 file is intact ----------------------------------------------------------------------
agent_stop
check "the ext4 device still holds ext4" test "$(blkid -p -s TYPE -o value "$X")" = ext4
if mount -o ro "$X" "$T/mnt"; then
    check "the file on it is intact" test "$(sha256sum < "$T/mnt/precious")" = "$SUM"
    umount "$T/mnt"
else
    not_ok "the ext4 device mounts read-only"
fi
check "the msdos device still has its table" test "$(label "$M")" = msdos
