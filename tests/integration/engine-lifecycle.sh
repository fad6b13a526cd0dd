#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The reconcile engine through the real agent, one dir pool's life: create (files,
# sizes, sparse or allocated, qcow2), observed XML valid against libvirt's schemas,
# changes (grow, refused shrink, blocked target path, live permissions), removals
# (on-remove keep and delete, for volumes and pools) and an unmanaged file left alone.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog qemu-img
need_prog /usr/bin/python3
agent_setup
# The pools live on a tmpfs of their own: its sizes change only through what the test
# does, so nothing unrelated makes the agent rewrite its state by chance.
mount -t tmpfs -o size=256m,mode=0755 declvirt-test "$T/pools" || skip_all "cannot mount a tmpfs"
on_exit umount -l "$T/pools"

D=$T/desired
P1=$T/pools/p1
MiB=1048576

blocks_bytes() { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }
qimg() { qemu-img info -U --output=json "$1" | /usr/bin/python3 -c "import sys, json; print(json.load(sys.stdin)['$2'])"; }
# pool_perm_xml NAME TARGET MODE [POLICY-ATTRS]
pool_perm_xml() {
    cat <<XML
<pool type='dir'>
  <name>$1</name>
  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' ${4:-}/>
  <target>
    <path>$2</path>
    <permissions>
      <mode>$3</mode>
    </permissions>
  </target>
</pool>
XML
}

# ---- create --------------------------------------------------------------------------
pool_xml p1 "$P1" > "$D/p1.xml"
vol_xml p1 full $MiB raw > "$D/full.xml"                       # no allocation: fully allocated
vol_xml_alloc p1 sparse $((4 * MiB)) 0 raw > "$D/sparse.xml"    # allocation 0: sparse
vol_xml_alloc p1 disk.qcow2 $((10 * MiB)) 0 qcow2 > "$D/disk.xml"
vol_xml p1 keepme $MiB raw > "$D/keepme.xml"                     # default on-remove: keep
vol_xml p1 dropme $MiB raw "on-remove='delete'" > "$D/dropme.xml"
agent_start

if wait_until 15 phase_is volume/p1/disk.qcow2 ready && wait_until 5 phase_is volume/p1/sparse ready &&
    wait_until 5 phase_is volume/p1/full ready; then
    ok "pool and volumes reach ready"
else
    not_ok "pool and volumes reach ready" "$(cat "$T/state/status.xml" 2>&1; tail -20 "$T/agent.log")"
fi
check "pool directory created with the default mode 0711" test "$(stat -c %a "$P1")" = 711
check "raw volume without allocation has its capacity" test "$(stat -c %s "$P1/full")" = $MiB
check "raw volume without allocation is fully allocated" test "$(blocks_bytes "$P1/full")" -ge $MiB
check "raw volume with allocation 0 has its capacity" test "$(stat -c %s "$P1/sparse")" = $((4 * MiB))
check "raw volume with allocation 0 is sparse" test "$(blocks_bytes "$P1/sparse")" -lt $MiB
check "qcow2 volume: qemu-img says qcow2" test "$(qimg "$P1/disk.qcow2" format)" = qcow2
check "qcow2 volume: virtual size is the capacity" test "$(qimg "$P1/disk.qcow2" virtual-size)" = $((10 * MiB))
check "volume files are mode 0600" test "$(stat -c %a "$P1/full")" = 600
check "no temporary files left in the pool" test -z "$(ls -A "$P1" | grep '^\.')"

if command -v virt-xml-validate >/dev/null 2>&1; then
    check "observed pool XML passes virt-xml-validate storagepool" \
        virt-xml-validate "$T/state/pools/p1.xml" storagepool
    for v in full sparse disk.qcow2; do
        check "observed volume XML of $v passes virt-xml-validate storagevol" \
            virt-xml-validate "$T/state/volumes/p1/$v.xml" storagevol
    done
else
    skip "observed XML valid against libvirt's schemas" "virt-xml-validate is not installed"
fi
check "observed volume XML shows the live capacity" \
    grep -q "<capacity unit='bytes'>$((4 * MiB))</capacity>" "$T/state/volumes/p1/sparse.xml"
check "observed volume XML shows the live allocation of the sparse volume" \
    grep -q "<allocation unit='bytes'>0</allocation>" "$T/state/volumes/p1/sparse.xml"

# ---- an unmanaged file in the pool ----------------------------------------------------
head -c 65536 /dev/urandom > "$P1/foreign.img"
chmod 0640 "$P1/foreign.img"
touch -d '2020-01-01 00:00:00' "$P1/foreign.img"
foreign_sum=$(sha256sum < "$P1/foreign.img")
foreign_stat=$(stat -c '%s %a %Y %i' "$P1/foreign.img")
if wait_until 5 st_is volume/p1/foreign.img managed no; then
    ok "a file nobody declared is listed managed='no'"
else
    not_ok "a file nobody declared is listed managed='no'" "$(cat "$T/state/status.xml")"
fi

# ---- changes ---------------------------------------------------------------------------
vol_xml p1 full $((2 * MiB)) raw > "$D/full.xml"
vol_xml_alloc p1 disk.qcow2 $((20 * MiB)) 0 qcow2 > "$D/disk.xml"
if wait_until 10 eval 'test "$(stat -c %s "$P1/full")" = $((2 * MiB))' &&
    wait_until 10 eval 'test "$(qimg "$P1/disk.qcow2" virtual-size)" = $((20 * MiB))'; then
    ok "a larger capacity is applied (raw and qcow2)"
else
    not_ok "a larger capacity is applied (raw and qcow2)" "$(tail -20 "$T/agent.log")"
fi
check "a grown fully allocated raw volume stays fully allocated" test "$(blocks_bytes "$P1/full")" -ge $((2 * MiB))
check "the grown volumes are ready again" wait_until 5 eval 'phase_is volume/p1/full ready && phase_is volume/p1/disk.qcow2 ready'
check "resize was logged as done" grep -q "volume/p1/full: resize done" "$T/agent.log"

vol_xml p1 full $MiB raw > "$D/full.xml"
if wait_until 5 phase_is volume/p1/full blocked; then ok "a smaller capacity is blocked"; else
    not_ok "a smaller capacity is blocked" "phase $(phase_of volume/p1/full): $(st_msg volume/p1/full)"; fi
check "the blocked shrink says why" eval 'st_msg volume/p1/full | grep -q "shrinking from $((2 * MiB)) to $MiB bytes is refused"'
wait_pass
check "the file of a refused shrink keeps its size" test "$(stat -c %s "$P1/full")" = $((2 * MiB))
check "wait reports the blocked volume (exit 1)" eval 'dv wait --timeout 5 volume/p1/full 2>/dev/null; test $? = 1'
vol_xml p1 full $((2 * MiB)) raw > "$D/full.xml"
check "restoring the capacity makes it ready again" wait_until 5 phase_is volume/p1/full ready

# Target path: immutable.
pool_xml p1 "$T/pools/elsewhere" > "$D/p1.xml"
if wait_until 5 phase_is pool/p1 blocked; then ok "a pool target path change is blocked"; else
    not_ok "a pool target path change is blocked" "phase $(phase_of pool/p1): $(st_msg pool/p1)"; fi
check "the blocked path change says why" eval 'st_msg pool/p1 | grep -q "target path is immutable"'
check "the new target path is not created" test ! -e "$T/pools/elsewhere"
check "the volumes stay where they are" test -f "$P1/full" -a -f "$P1/disk.qcow2"
check "observed pool XML still describes the live pool while a path change is blocked" \
    test -f "$T/state/pools/p1.xml"
pool_xml p1 "$P1" > "$D/p1.xml"
check "restoring the path makes the pool ready again" wait_until 5 phase_is pool/p1 ready
check "and its volumes" wait_until 5 phase_is volume/p1/full ready

# Permissions: applied live.
pool_perm_xml p1 "$P1" 0750 > "$D/p1.xml"
if wait_until 5 eval 'test "$(stat -c %a "$P1")" = 750'; then ok "a pool mode change is applied live"; else
    not_ok "a pool mode change is applied live" "mode $(stat -c %a "$P1"); $(tail -5 "$T/agent.log")"; fi
check "the pool is ready with its new mode" wait_until 5 phase_is pool/p1 ready
check "observed pool XML shows the new mode" wait_until 5 grep -q '<mode>0750</mode>' "$T/state/pools/p1.xml"
check "volumes survive the mode change" test -f "$P1/full" -a -f "$P1/sparse"

# ---- removals --------------------------------------------------------------------------
ino_keep=$(stat -c %i "$P1/keepme")
rm "$D/keepme.xml" "$D/dropme.xml"
if wait_until 5 test ! -e "$P1/dropme"; then ok "on-remove='delete' deletes the volume file"; else
    not_ok "on-remove='delete' deletes the volume file" "$(tail -10 "$T/agent.log")"; fi
check "the deleted volume is gone from status.xml" wait_until 5 eval '! st_has volume/p1/dropme'
check "its last-applied record is removed" wait_until 5 test ! -e "$T/state/applied/volume@p1@dropme.json"
check "its observed XML is removed" \
    wait_until 3 test ! -e "$T/state/volumes/p1/dropme.xml"
check "default on-remove keeps the volume file" test "$(stat -c %i "$P1/keepme" 2>/dev/null)" = "$ino_keep"
check "the kept volume becomes unmanaged" wait_until 5 st_is volume/p1/keepme managed no
check "its last-applied record is dropped" wait_until 5 test ! -e "$T/state/applied/volume@p1@keepme.json"

# Pools with on-remove='delete': an empty one is removed, one holding a file nobody
# declared is not (and the file survives).
pool_xml p2 "$T/pools/p2" "on-remove='delete'" > "$D/p2.xml"
pool_xml p3 "$T/pools/p3" "on-remove='delete'" > "$D/p3.xml"
check "two more pools are built" wait_until 5 eval 'phase_is pool/p2 ready && phase_is pool/p3 ready'
echo "operator notes" > "$T/pools/p3/README"
check "the file in p3 is listed as unmanaged" wait_until 5 st_is volume/p3/README managed no
rm "$D/p2.xml"
if wait_until 5 test ! -e "$T/pools/p2"; then ok "pool on-remove='delete' removes an empty directory"; else
    not_ok "pool on-remove='delete' removes an empty directory" "$(tail -10 "$T/agent.log")"; fi
# Nothing else changes now: what follows must not depend on another object's news.
check "the deleted pool is gone from status.xml" \
    wait_until 3 eval '! st_has pool/p2'
check "its last-applied record is removed" \
    wait_until 1 test ! -e "$T/state/applied/pool@p2.json"
check "its observed XML is removed" \
    wait_until 1 test ! -e "$T/state/pools/p2.xml"
rm "$D/p3.xml"
if wait_until 5 phase_is pool/p3 blocked; then ok "a pool with an unmanaged file inside is blocked, not deleted"; else
    not_ok "a pool with an unmanaged file inside is blocked, not deleted" "phase $(phase_of pool/p3): $(st_msg pool/p3)"; fi
check "the blocked deletion says the directory is not empty" eval 'st_cond pool/p3 ActionFailed | grep -q "not empty"'
check "the unmanaged file survives" test "$(cat "$T/pools/p3/README")" = "operator notes"
check "the pool directory survives" test -d "$T/pools/p3"

# ---- the unmanaged file was never touched --------------------------------------------
wait_pass
check "the unmanaged file's content is unchanged" test "$(sha256sum < "$P1/foreign.img")" = "$foreign_sum"
check "the unmanaged file's size, mode, mtime and inode are unchanged" \
    test "$(stat -c '%s %a %Y %i' "$P1/foreign.img")" = "$foreign_stat"
check "the unmanaged file is still listed managed='no'" test "$(st_attr volume/p1/foreign.img managed)" = no
check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop
