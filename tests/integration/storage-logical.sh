#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Logical (LVM) pools with the real agent on real loop devices. No device-mapper here:
# LVM runs with activation disabled (metadata only), through a private LVM_SYSTEM_DIR
# whose filter accepts only this run's loop devices.
. "$(dirname "$0")/../helpers/lib.sh"

need_root
for p in losetup pvcreate vgcreate vgs lvs lvcreate mkfs.ext4 blkid mount; do need_prog "$p"; done
[ -x "$DECLVIRT" ] || skip_all "$DECLVIRT is not built"

agent_setup
mkdir -p "$T/img" "$T/lvm" "$T/mnt"

# ---- loop devices and a private LVM configuration ------------------------------------------
DEVS=()
mkdev() {
    truncate -s 64M "$T/img/$1" || return 1
    local d; d=$(losetup -f --show "$T/img/$1") || return 1
    on_exit losetup -d "$d"
    DEVS+=("$d")
    echo "$d"
}
for n in a b c d e f; do
    mkdev "$n.img" >/dev/null || skip_all "cannot create loop devices"
done
A=${DEVS[0]} B=${DEVS[1]} C=${DEVS[2]} D=${DEVS[3]} E=${DEVS[4]} F=${DEVS[5]}

filter=
for d in "${DEVS[@]}"; do filter+="\"a|^$d\$|\", "; done
filter+='"r|.*|"'
cat > "$T/lvm/lvm.conf" <<CONF
devices {
    filter = [ $filter ]
    global_filter = [ $filter ]
    use_devicesfile = 0
    obtain_device_list_from_udev = 0
}
global {
    activation = 0
}
activation {
    udev_sync = 0
    udev_rules = 0
}
backup {
    backup_dir = "$T/lvm/backup"
    archive_dir = "$T/lvm/archive"
}
CONF
export LVM_SYSTEM_DIR=$T/lvm
export LVM_SUPPRESS_FD_WARNINGS=1

S=dvt$$
VGA=${S}a VGB=${S}b
# Whatever a failed run leaves: our VGs and PVs (only our devices are visible).
on_exit "vgremove -f $VGA; vgremove -f $VGB; for d in ${DEVS[*]}; do pvremove -ff -y \$d; done"

pvs_of() { vgs --noheadings -o pv_name -S "vg_name=$1" 2>/dev/null | tr -d ' ' | sort | tr '\n' ' '; }
lv_size() { lvs --noheadings --units b --nosuffix -o lv_size "$1/$2" 2>/dev/null | tr -d ' '; }
has_lv() { lvs "$1/$2" >/dev/null 2>&1; }
vg_tags() { vgs --noheadings -o vg_tags -S "vg_name=$1" 2>/dev/null | tr -d ' '; }

# lpool_xml NAME VG [POLICY-ATTRS] [DEVICES...]
lpool_xml() {
    local name=$1 vg=$2 pol=${3:-}; shift 3
    echo "<pool type='logical'>"
    echo "  <name>$name</name>"
    echo "  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' $pol/>"
    echo "  <source>"
    local d; for d in "$@"; do echo "    <device path='$d'/>"; done
    echo "    <name>$vg</name>"
    echo "    <format type='lvm2'/>"
    echo "  </source>"
    echo "  <target><path>/dev/$vg</path></target>"
    echo "</pool>"
}
MiB=1048576

validate_xml() {
    command -v virt-xml-validate >/dev/null 2>&1 || return 0
    virt-xml-validate "$1" "$2"
}

# ---- an existing VG to adopt, and an ext4 file system with a file -----------------------------
pvcreate -q "$D" "$E" >/dev/null 2>&1 && vgcreate -q "$VGB" "$D" "$E" >/dev/null 2>&1 &&
    lvcreate -q --name data -L $((8 * MiB))b "$VGB" --yes >/dev/null 2>&1 ||
    skip_all "LVM cannot create a volume group on loop devices here"
mkfs.ext4 -q -F "$C" >/dev/null 2>&1 || skip_all "mkfs.ext4 failed on $C"
head -c 100000 /dev/urandom > "$T/precious"
if mount "$C" "$T/mnt" 2>/dev/null; then
    cp "$T/precious" "$T/mnt/precious" && sync
    umount "$T/mnt"
    CAN_MOUNT=1
else
    CAN_MOUNT=0
fi

# KEEP_LOG=FILE keeps the agent log and state of a run for debugging.
[ -n "${KEEP_LOG:-}" ] && on_exit "cp $T/agent.log $KEEP_LOG; cp -r $T/state ${KEEP_LOG}.state"
agent_start

# ---- build a VG from two empty loop devices ---------------------------------------------------
lpool_xml lvA "$VGA" "on-remove='delete'" "$A" "$B" > "$T/desired/lvA.xml"
if wait_until 20 phase_is pool/lvA ready; then ok "pool built from two empty devices is ready"
else not_ok "pool built from two empty devices is ready" "$(phase_of pool/lvA): $(st_msg pool/lvA)"; fi
want=$(printf '%s\n' "$A" "$B" | sort | tr '\n' ' ')
check "the volume group has both devices" [ "$(pvs_of "$VGA")" = "$want" ]
check "observed pool XML validates (storagepool)" validate_xml "$T/state/pools/lvA.xml" storagepool
check "observed pool XML has the VG size" grep -q "<capacity unit='bytes'>[1-9]" "$T/state/pools/lvA.xml"

# ---- volumes: create, list, grow -------------------------------------------------------------
vol_xml lvA v1 $((8 * MiB)) raw "on-remove='delete'" > "$T/desired/v1.xml"
if wait_until 20 phase_is volume/lvA/v1 ready; then ok "LV v1 created"
else not_ok "LV v1 created" "$(phase_of volume/lvA/v1): $(st_msg volume/lvA/v1)"; fi
check "LV v1 has 8 MiB" [ "$(lv_size "$VGA" v1)" = $((8 * MiB)) ]
check "observed volume XML validates (storagevol)" validate_xml "$T/state/volumes/lvA/v1.xml" storagevol
check "observed volume path is /dev/VG/v1" grep -q "<path>/dev/$VGA/v1</path>" "$T/state/volumes/lvA/v1.xml"

vol_xml lvA v1 $((16 * MiB)) raw "on-remove='delete'" > "$T/desired/v1.xml"
if wait_until 20 eval '[ "$(lv_size "$VGA" v1)" = $((16 * MiB)) ]' && wait_until 10 phase_is volume/lvA/v1 ready
then ok "LV v1 grown to 16 MiB"
else not_ok "LV v1 grown to 16 MiB" "$(lv_size "$VGA" v1) $(phase_of volume/lvA/v1): $(st_msg volume/lvA/v1)"; fi

# ---- a volume larger than vg_free: refused before anything is created ------------------------
vol_xml lvA big $((1024 * MiB)) > "$T/desired/big.xml"
if wait_until 20 eval 'st_msg volume/lvA/big | grep -q "available"'; then ok "too large LV refused with the free space named"
else not_ok "too large LV refused with the free space named" "$(phase_of volume/lvA/big): $(st_msg volume/lvA/big)"; fi
check "nothing was created for the too large LV" eval '! has_lv "$VGA" big'
rm -f "$T/desired/big.xml"

# A size LVM would round up (whole extents) is refused with the size to write.
vol_xml lvA odd $((5 * MiB)) > "$T/desired/odd.xml"
if wait_until 20 eval 'st_msg volume/lvA/odd | grep -q "extent size"'; then ok "size that is not whole extents refused"
else not_ok "size that is not whole extents refused" "$(st_msg volume/lvA/odd)"; fi
check "nothing was created for the odd-sized LV" eval '! has_lv "$VGA" odd'
rm -f "$T/desired/odd.xml"

# ---- delete only with on-remove='delete' ----------------------------------------------------
vol_xml lvA keepme $((4 * MiB)) > "$T/desired/keepme.xml"
wait_until 20 phase_is volume/lvA/keepme ready
rm -f "$T/desired/keepme.xml"
wait_until 10 eval '[ "$(st_attr volume/lvA/keepme managed)" = no ]'
check "LV of a removed file with on-remove='keep' is kept" has_lv "$VGA" keepme

rm -f "$T/desired/v1.xml"
if wait_until 20 eval '! has_lv "$VGA" v1'; then ok "LV of a removed file with on-remove='delete' is deleted"
else not_ok "LV of a removed file with on-remove='delete' is deleted" "$(st_msg volume/lvA/v1)"; fi

# ---- an existing VG adopted by name -------------------------------------------------------------
lpool_xml lvB "$VGB" "on-remove='delete'" > "$T/desired/lvB.xml"
if wait_until 20 phase_is pool/lvB ready; then ok "existing VG adopted by name"
else not_ok "existing VG adopted by name" "$(phase_of pool/lvB): $(st_msg pool/lvB)"; fi
if wait_until 10 eval '[ "$(st_attr volume/lvB/data managed)" = no ]'; then ok "its LV is listed as unmanaged"
else not_ok "its LV is listed as unmanaged"; fi
check "the adopted VG is untouched" [ "$(pvs_of "$VGB")" = "$(printf '%s\n' "$D" "$E" | sort | tr '\n' ' ')" ]
check "its LV is untouched" [ "$(lv_size "$VGB" data)" = $((8 * MiB)) ]

# ---- a VG that exists with other devices than the file lists ----------------------------------
lpool_xml lvC "$VGB" "" "$F" > "$T/desired/lvC.xml"
if wait_until 20 phase_is pool/lvC blocked; then ok "VG with other devices: blocked"
else not_ok "VG with other devices: blocked" "$(phase_of pool/lvC): $(st_msg pool/lvC)"; fi
check "the reason names both device lists" eval 'st_msg pool/lvC | grep -q "already exists with devices.*$D.*lists $F"'
check "the listed device was not touched" eval '[ -z "$(blkid -p -o value -s TYPE "$F")" ]'
rm -f "$T/desired/lvC.xml"

# ---- a device holding ext4 is never formatted ----------------------------------------------------
lpool_xml lvD "${S}d" "" "$C" > "$T/desired/lvD.xml"
if wait_until 20 phase_is pool/lvD blocked; then ok "ext4 device: pool blocked"
else not_ok "ext4 device: pool blocked" "$(phase_of pool/lvD): $(st_msg pool/lvD)"; fi
check "the reason names the device and the signature" eval 'st_msg pool/lvD | grep -qF "$C holds a ext4 signature; not formatting (build='"'"'if-empty'"'"')"'
check "the device still holds ext4" [ "$(blkid -p -o value -s TYPE "$C")" = ext4 ]
if [ "$CAN_MOUNT" = 1 ] && mount -o ro "$C" "$T/mnt" 2>/dev/null; then
    check "the file on it is intact" cmp "$T/precious" "$T/mnt/precious"
    umount "$T/mnt"
else
    skip "the file on it is intact" "mounting ext4 on a loop device failed here"
fi
rm -f "$T/desired/lvD.xml"

# ---- stop and start: the agent's choice is a VG tag ----------------------------------------------
lpool_xml lvA "$VGA" "on-remove='delete' state='inactive'" "$A" "$B" > "$T/desired/lvA.xml"
if wait_until 20 phase_is pool/lvA stopped; then ok "state='inactive' stops the pool"
else not_ok "state='inactive' stops the pool" "$(phase_of pool/lvA): $(st_msg pool/lvA)"; fi
check "the stopped VG carries the tag" [ "$(vg_tags "$VGA")" = declvirt_inactive ]
lpool_xml lvA "$VGA" "on-remove='delete'" "$A" "$B" > "$T/desired/lvA.xml"
if wait_until 20 phase_is pool/lvA ready; then ok "state='active' starts it again"
else not_ok "state='active' starts it again" "$(phase_of pool/lvA): $(st_msg pool/lvA)"; fi
check "the started VG has no tag" [ -z "$(vg_tags "$VGA")" ]
vol_xml lvA v2 $((4 * MiB)) raw "on-remove='delete'" > "$T/desired/v2.xml"
wait_until 20 phase_is volume/lvA/v2 ready

# ---- restart with the pools active: nothing re-done ----------------------------------------------
wait_pass
seq_before=$(vgs --noheadings -o vg_seqno "$VGA" 2>/dev/null | tr -d ' ')
agent_stop
lines=$(wc -l < "$T/agent.log")
agent_start
wait_pass; wait_pass
after=$(tail -n +"$((lines + 1))" "$T/agent.log")
check "after restart pool/lvA is ready" phase_is pool/lvA ready
check "after restart pool/lvB is ready" phase_is pool/lvB ready
check "after restart volume v2 is ready" phase_is volume/lvA/v2 ready
check "after restart no build/start/create is done" eval '! grep -E "(build|start|create|resize) done" <<<"$after"'
check "after restart no LVM change ran" eval '! grep -E "running (pvcreate|vgcreate|vgchange|lvcreate|lvextend|lvremove)" <<<"$after"'
check "after restart the VG metadata is unchanged" [ "$(vgs --noheadings -o vg_seqno "$VGA" 2>/dev/null | tr -d ' ')" = "$seq_before" ]

# Observe is cheap: an unchanged VG is not listed again (lvs cached by the VG seqno).
lvs_before=$(log_count "running lvs ")
vgs_before=$(log_count "running vgs ")
sleep 4.5 # two periodic resyncs (2 s)
check "resyncs ran vgs" [ "$(log_count "running vgs ")" -gt "$vgs_before" ]
check "resyncs of unchanged VGs did not run lvs" [ "$(log_count "running lvs ")" = "$lvs_before" ]

# ---- removal: an adopted VG is never deleted; ours only when empty ------------------------------
rm -f "$T/desired/lvB.xml"
wait_until 10 eval '! st_has pool/lvB'
check "adopted VG kept although on-remove='delete'" eval 'has_lv "$VGB" data && [ -n "$(pvs_of "$VGB")" ]'

rm -f "$T/desired/v2.xml" "$T/desired/lvA.xml"
if wait_until 20 eval 'st_msg pool/lvA | grep -q "still holds 1 logical volume (keepme)"'
then ok "pool delete refused while an LV is left"
else not_ok "pool delete refused while an LV is left" "$(phase_of pool/lvA): $(st_msg pool/lvA)"; fi
check "the kept LV survives" has_lv "$VGA" keepme
lvremove -q -f "$VGA/keepme" >/dev/null 2>&1
# A refusal waits for the file to change: written again, then removed again.
lpool_xml lvA "$VGA" "on-remove='delete'" "$A" "$B" > "$T/desired/lvA.xml"
wait_until 20 phase_is pool/lvA ready
rm -f "$T/desired/lvA.xml"
if wait_until 20 eval '! vgs "$VGA" >/dev/null 2>&1'; then ok "empty VG deleted with on-remove='delete'"
else not_ok "empty VG deleted with on-remove='delete'" "$(phase_of pool/lvA): $(st_msg pool/lvA)"; fi
check "its devices carry no signature any more" wait_until 10 eval '[ -z "$(blkid -p -o value -s TYPE "$A")$(blkid -p -o value -s TYPE "$B")" ]'

agent_stop
