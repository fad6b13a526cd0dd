#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# netfs pools with the real agent. This kernel has no NFS or CIFS, so a real mount must
# fail: the error shows in status.xml, in bounded time, and never holds up other pools.
# An "NFS share" faked by a tmpfs whose source reads host:/dir exercises the rest:
# found mounted (no mount run), volumes, restart with nothing re-done, stop, and removal
# (on-remove='delete' keeps a mount point that the agent did not make).
# Every address used is on loopback.
. "$(dirname "$0")/../helpers/lib.sh"

need_root
for p in mount umount findmnt; do need_prog "$p"; done
need_prog /usr/bin/python3
[ -x "$DECLVIRT" ] || skip_all "$DECLVIRT is not built"

agent_setup
D=$T/desired
MiB=1048576
on_exit 'for m in $(grep -o " $T/[^ ]*" /proc/self/mountinfo | tac); do umount -l "$m"; done'

# netfs_xml NAME HOST DIR FORMAT TARGET [POLICY-ATTRS]
netfs_xml() {
    cat <<XML
<pool type='netfs'>
  <name>$1</name>
  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' ${6:-}/>
  <source>
    <host name='$2'/>
    <dir path='$3'/>
    <format type='$4'/>
  </source>
  <target>
    <path>$5</path>
  </target>
</pool>
XML
}
not_mounted() { ! findmnt -rn -M "$1" >/dev/null; }
msg_has() { st_msg "$1" | grep -qF -- "$2"; }

# ---- a mount that cannot work: failed with mount's own words, others unaffected -----------------
agent_start
t0=$(date +%s)
netfs_xml n1 127.0.0.1 /export nfs "$T/pools/n1" > "$D/n1.xml"
netfs_xml c1 127.0.0.1 /share cifs "$T/pools/c1" > "$D/c1.xml"
pool_xml d1 "$T/pools/d1" > "$D/d1.xml"
check "a dir pool next to them is ready at once" wait_until 5 phase_is pool/d1 ready
check "the nfs pool fails" wait_until 40 phase_is pool/n1 failed
check "within the bounded time" [ $(( $(date +%s) - t0 )) -le 40 ]
msg=$(st_msg pool/n1)
check "its message names mount and carries its stderr" eval 'grep -q "^mount failed" <<<"$msg" && grep -qi "nfs" <<<"$msg"'
echo "# n1: $msg"
check "the cifs pool fails too" wait_until 40 phase_is pool/c1 failed
echo "# c1: $(st_msg pool/c1)"
check "its target directory was built" [ -d "$T/pools/n1" ]
check "nothing is mounted there" not_mounted "$T/pools/n1"
vol_xml d1 dv $MiB raw > "$D/dv.xml"
check "a volume of the dir pool is made meanwhile" wait_until 5 phase_is volume/d1/dv ready
rm -f "$D/n1.xml" "$D/c1.xml"
check "the failed pools go with their files" wait_until 10 eval '! st_has pool/n1 && ! st_has pool/c1'

# ---- a bad source is refused before anything runs ------------------------------------------------
netfs_xml n2 127.0.0.1 relative nfs "$T/pools/n2" > "$D/n2.xml"
check "a relative source dir: the file is refused with its line" \
    wait_until 10 eval 'st_file "$D/n2.xml" | grep -qF "is not absolute"'
check "and the pool is not made" [ ! -e "$T/pools/n2" ]
rm -f "$D/n2.xml"

# ---- someone else's filesystem on the target -------------------------------------------------------
mkdir -p "$T/pools/n3" && mount -t tmpfs declvirt-other "$T/pools/n3"
netfs_xml n3 127.0.0.1 /export nfs "$T/pools/n3" > "$D/n3.xml"
check "a target mounted from something else: blocked" wait_until 10 phase_is pool/n3 blocked
check "the reason names both" \
    msg_has pool/n3 "target $T/pools/n3 is mounted from declvirt-other, not from 127.0.0.1:/export"
rm -f "$D/n3.xml"
wait_pass; wait_pass
check "the other filesystem is left mounted" eval 'findmnt -rn -M "$T/pools/n3" | grep -q declvirt-other'
umount "$T/pools/n3"

# ---- a share found mounted (a tmpfs standing in for NFS) -----------------------------------------
mkdir -p "$T/pools/n4" && mount -t tmpfs 127.0.0.1:/export/images "$T/pools/n4"
lines=$(wc -l < "$T/agent.log")
netfs_xml n4 127.0.0.1 /export/images/ nfs "$T/pools/n4" "on-remove='delete'" > "$D/n4.xml"
vol_xml n4 v4 $MiB raw > "$D/v4.xml"
check "a share already mounted is ready" wait_until 10 phase_is pool/n4 ready
check "its volume is made on it" wait_until 10 phase_is volume/n4/v4 ready
check "the volume is on the share" \
    eval '[ "$(stat -c %d "$T/pools/n4/v4")" = "$(stat -c %d "$T/pools/n4")" ] && [ "$(stat -f -c %T "$T/pools/n4")" = tmpfs ]'
check "no mount ran for it" eval '! tail -n +$((lines + 1)) "$T/agent.log" | grep -q "running mount"'
if command -v virt-xml-validate >/dev/null; then
    check "the observed pool XML validates" virt-xml-validate "$T/state/pools/n4.xml" storagepool
else
    skip "the observed pool XML validates" "virt-xml-validate is not installed"
fi

mounts_before=$(grep -F " $T/" /proc/self/mountinfo)
agent_stop
lines=$(wc -l < "$T/agent.log")
agent_start
wait_pass; wait_pass
after=$(tail -n +"$((lines + 1))" "$T/agent.log")
check "after restart the pool is ready" phase_is pool/n4 ready
check "after restart the volume is ready" phase_is volume/n4/v4 ready
check "after restart no build/start/create is done" eval '! grep -E "(build|start|create) done" <<<"$after"'
check "after restart no mount or umount ran" eval '! grep -E "running (mount|umount)" <<<"$after"'
check "the mount table is unchanged" [ "$(grep -F " $T/" /proc/self/mountinfo)" = "$mounts_before" ]

netfs_xml n4 127.0.0.1 /export/images/ nfs "$T/pools/n4" "state='inactive' on-remove='delete'" > "$D/n4.xml"
check "state='inactive' unmounts the share" wait_until 10 phase_is pool/n4 stopped
check "nothing is mounted on the target" not_mounted "$T/pools/n4"
rm -f "$D/v4.xml" "$D/n4.xml"
check "the pool goes with its file" wait_until 15 eval '! st_has pool/n4'
# The agent found the share mounted and did not build it: on-remove='delete' leaves it.
check "a mount point the agent did not make is kept" [ -d "$T/pools/n4" ]
agent_stop
