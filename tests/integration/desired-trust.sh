#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Attacks of a local user (nobody) on what the agent reads and where it puts things
# (docs/design.md#desired-files, docs/agent.conf.md#storage_locations):
# - a desired file reached through a directory nobody may change: nobody swaps its own
#   definition in with renameat2(RENAME_EXCHANGE); the file is refused, the definition
#   never applied, the object held on its last valid definition;
# - sticky and group-writable directories on the way; the ConfigMap layout still works;
# - a symlinked component taking a pool, a disk, a kernel... outside storage_locations.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog setpriv
SWAP=$REPO/${BUILD:-build}/tools/rename-exchange
[ -x "$SWAP" ] || skip_all "build/tools/rename-exchange is not built (make build-all)"
agent_setup
D=$T/desired
printf 'storage_locations:\n  - %s/pools/*\n' "$T" >> "$T/agent.conf"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
mkdir -m 0755 "$T/outside"

# ---- a symlinked desired file, and a directory on its way handed to nobody ---------------
mkdir -m 0755 "$T/cfg"
pool_xml good "$T/pools/good" > "$T/cfg/p.xml"
ln -s "$T/cfg/p.xml" "$D/x.xml"
agent_start
check "a desired file symlinked to a root-owned directory is applied" wait_until 10 phase_is pool/good ready
# The directory goes to nobody; nobody prepares its own definition next to root's.
chown nobody:nogroup "$T/cfg"
as_nobody sh -c "cat > '$T/cfg/planted.xml'" <<XML
$(pool_xml planted "$T/pools/planted")
XML
# While nobody swaps the two names as fast as it can, root touches the symlink so the
# agent looks again and again. The swap ends with nobody's file in place.
( while [ ! -e "$T/swap.done" ]; do touch -h "$D/x.xml"; sleep 0.02; done ) &
toucher=$!
on_exit "kill $toucher"
n=$(as_nobody "$SWAP" "$T/cfg/p.xml" "$T/cfg/planted.xml" 3); rc=$?
touch "$T/swap.done"; wait $toucher
check "nobody could swap the files (rename-exchange ran)" test $rc = 0 -a "${n:-0}" -gt 0
check "the file is refused, naming the directory nobody owns" \
    wait_until 10 eval 'st_cond pool/good FileInvalid | grep -qF "$T/cfg, owned by uid 65534, not root"'
wait_pass
check "nobody's definition was never applied: no pool built from it" test ! -e "$T/pools/planted"
check "nobody's pool is not an object" eval '! st_has pool/planted'
check "the object is held on its last valid definition" phase_is pool/good ready
check "the agent never logged nobody's pool" eval '! grep -q "pool/planted" "$T/agent.log"'
# A new file through that directory, root-owned itself: refused before anything.
pool_xml rootfile "$T/pools/rootfile" > "$T/cfg/q.xml"
chown root:root "$T/cfg/q.xml"
ln -s "$T/cfg/q.xml" "$D/y.xml"
check "a root-owned file in a nobody-owned directory is refused, naming the way" \
    wait_until 10 eval 'st_file "$D/y.xml" | grep -qF "refused: $D/y.xml is reached through $T/cfg, owned by uid 65534, not root"'
check "validate refuses it the same way" \
    eval 'dv validate "$D/y.xml" 2>&1 | grep -qF "reached through $T/cfg, owned by uid 65534"'
check "and its pool is not built" test ! -e "$T/pools/rootfile"

# ---- sticky and group-writable directories on the way ---------------------------------------
mkdir -m 1777 "$T/tmp"
mkdir -m 0755 "$T/tmp/rootcfg"
pool_xml sticky "$T/pools/sticky" > "$T/tmp/rootcfg/s.xml"
ln -s "$T/tmp/rootcfg/s.xml" "$D/s.xml"
check "a root-owned directory in a sticky one is trusted (only root can rename it)" \
    wait_until 10 phase_is pool/sticky ready
as_nobody mkdir -m 0755 "$T/tmp/ncfg"
pool_xml nsticky "$T/pools/nsticky" > "$T/tmp/ncfg/n.xml"
ln -s "$T/tmp/ncfg/n.xml" "$D/n.xml"
check "nobody's directory in a sticky one is refused" \
    wait_until 10 eval 'st_file "$D/n.xml" | grep -qF "$T/tmp/ncfg, owned by uid 65534 in a directory others can write"'
mkdir -m 0775 "$T/gw"; chgrp nogroup "$T/gw"; chmod 0775 "$T/gw"
pool_xml gw "$T/pools/gw" > "$T/gw/g.xml"
ln -s "$T/gw/g.xml" "$D/g.xml"
check "a group-writable directory on the way is refused" \
    wait_until 10 eval 'st_file "$D/g.xml" | grep -qF "$T/gw, writable by its group (mode 0775)"'
# A relative symlink climbing out through ".." is checked all the same.
ln -s "../gw/g.xml" "$D/g2.xml"
check "a relative symlink through .. is checked the same way" \
    wait_until 10 eval 'st_file "$D/g2.xml" | grep -qF "$T/gw, writable by its group"'
wait_pass
check "none of the refused pools is built" eval '[ ! -e "$T/pools/nsticky" ] && [ ! -e "$T/pools/gw" ]'

# ---- the Kubernetes ConfigMap layout ----------------------------------------------------------
mkdir -p "$D/cm/..2026_01"
pool_xml cmp "$T/pools/cmp" > "$D/cm/..2026_01/cmp.xml"
ln -s ..2026_01 "$D/cm/..data"
ln -s ..data/cmp.xml "$D/cm/cmp.xml"
check "ConfigMap: x.xml -> ..data/x.xml, ..data -> ..2026_01 is applied" wait_until 10 phase_is pool/cmp ready

# ---- storage_locations and a symlinked component ---------------------------------------------
mkdir -m 0755 "$T/pools/shared"; chown nobody:nogroup "$T/pools/shared"
as_nobody ln -s "$T/outside" "$T/pools/shared/esc"
E=$T/pools/shared/esc
pool_xml esc "$E/pe" > "$D/esc.xml"
check "a pool taken outside storage_locations by a symlink is refused, naming both paths" \
    wait_until 10 eval 'st_file "$D/esc.xml" | grep -qF "pool target $E/pe resolves to $T/outside/pe, outside storage_locations"'
wait_pass
check "nothing is created outside" eval '[ -z "$(ls -A "$T/outside")" ]'
cat > "$T/dom.xml" <<XML
<domain type='kvm'>
  <name>esc</name>
  <memory unit='MiB'>64</memory>
  <os>
    <type>hvm</type>
    <kernel>$E/vmlinuz</kernel>
    <initrd>$E/initrd.img</initrd>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <source file='$E/disk.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='disk'>
      <source dev='$E/sdb'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='$E/serial.log'/>
    </serial>
  </devices>
</domain>
XML
vout=$(dv validate "$T/dom.xml" 2>&1)
for what in "kernel $E/vmlinuz" "initrd $E/initrd.img" "disk file $E/disk.img" \
    "block disk $E/sdb" "serial file $E/serial.log"; do
    f=${what##* }
    grep -qF "$what resolves to $T/outside/${f##*/}, outside storage_locations" <<<"$vout" &&
        ok "validate refuses the ${what% *} taken outside by a symlink" ||
        not_ok "validate refuses the ${what% *} taken outside by a symlink" "$vout"
done
check "with the line of the element" eval 'grep -qE "^$T/dom.xml:11: disk file" <<<"$vout"'
cp "$T/dom.xml" "$D/dom.xml"
check "the agent refuses that domain file, naming the path" \
    wait_until 10 eval 'st_file "$D/dom.xml" | grep -qF "resolves to $T/outside/"'
check "it is not an object" eval '! st_has domain/esc'
# A symlink inside the allowed locations is fine.
mkdir -m 0755 "$T/pools/real"; ln -s "$T/pools/real" "$T/pools/link"
pool_xml lk "$T/pools/link/pl" > "$T/lk.xml"
check "a symlink that stays inside storage_locations is accepted" dv validate "$T/lk.xml"
ln -s "$T/outside" "$T/pools/out"
pool_xml lo "$T/pools/out/../x" > "$T/lo.xml"
check "a written .. is refused" eval '! dv validate "$T/lo.xml" 2>/dev/null'
agent_stop
