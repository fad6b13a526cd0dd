#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# What a container's root can no longer do (issue 16), tried by its own init (a busybox
# shell script with the container's real credentials) through the real agent:
# - without <idmap> (its root is the host's root): mknod of a block device, a write to a
#   sysctl (/proc/sys/vm/swappiness, its own value written back), a remount of /sys or
#   /proc/sys read-write, reading a host block device through a node planted in its root
#   before the start (the device cgroup says EPERM while the host reads it fine); its
#   bounding set lacks the dropped capabilities; init holds no descriptor of the agent;
# - with <idmap> (the documented form, which used to fail with EOVERFLOW on /dev/pts):
#   it starts, init runs as the mapped uid on the host, /proc/self/uid_map inside is the
#   written map, and init writes its marker; /sys stays read-only and sysctls unwritable.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog losetup
[ -x /bin/busybox ] || skip_all "busybox-static is not installed"
[ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || skip_all "no cgroups"

agent_setup
on_exit 'for f in "$T"/run/lxc/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")"; done'
D=$T/desired
S=$$
pid_of() { cat "$T/run/lxc/$1.pid" 2>/dev/null; }

# mkroot DIR: busybox-static and the probing init, which writes /data/result when done.
mkroot() {
    mkdir -p "$1/bin" "$1/sbin" "$1/proc" "$1/sys" "$1/dev" "$1/tmp" "$1/data"
    cp /bin/busybox "$1/bin/busybox"
    for a in sh sleep cat echo mknod mount head grep mv id; do ln -sf busybox "$1/bin/$a"; done
    cat > "$1/sbin/init" <<'SH'
#!/bin/sh
trap 'exit 0' TERM
r=/data/result.tmp
: > $r
if mknod /tmp/blk b 8 0 2>/dev/null; then echo "mknod allowed" >> $r; else echo "mknod refused" >> $r; fi
if mount -o remount,rw /sys 2>/dev/null; then echo "sys rw" >> $r; else echo "sys stays ro" >> $r; fi
if mount -o remount,rw /proc/sys 2>/dev/null; then echo "procsys rw" >> $r; else echo "procsys stays ro" >> $r; fi
# After the remount attempts: whatever they did, the host's sysctl must stay unwritten.
v=$(cat /proc/sys/vm/swappiness)
if [ -n "$v" ] && echo "$v" 2>/dev/null > /proc/sys/vm/swappiness; then
    echo "sysctl written" >> $r
else
    echo "sysctl refused" >> $r
fi
if [ -e /hostdisk ]; then
    if e=$(head -c 8 /hostdisk 2>&1 >/dev/null); then echo "hostdisk read" >> $r
    else echo "hostdisk refused: $e" >> $r; fi
fi
grep '^CapBnd:' /proc/self/status >> $r
cat /proc/self/uid_map > /data/uid_map
id -u > /data/uid
echo started > /data/marker
mv $r /data/result
while true; do sleep 1; done
SH
    chmod 0755 "$1/sbin/init"
}

# ct_xml NAME ROOT DATA [EXTRA]
ct_xml() {
    cat <<XML
<domain type='lxc'>
  <name>$1</name>
  <memory unit='KiB'>65536</memory>
  <os>
    <type>exe</type>
    <init>/sbin/init</init>
  </os>
  ${4:-}
  <devices>
    <filesystem type='mount'><source dir='$2'/><target dir='/'/></filesystem>
    <filesystem type='mount'><source dir='$3'/><target dir='/data'/></filesystem>
  </devices>
</domain>
XML
}

# ---- a host block device with known content, planted in the privileged container's root ----
mkroot "$T/rootfs"
mkdir -p "$T/data1"
printf 'HOSTDISK' > "$T/disk.img" && truncate -s 1M "$T/disk.img"
LOOP=$(losetup -f --show "$T/disk.img") && on_exit losetup -d "$LOOP"
mknod "$T/rootfs/hostdisk" b "$(stat -c '%t' "$LOOP" | xargs printf '%d')" \
    "$(stat -c '%T' "$LOOP" | xargs printf '%d')"
check "the host itself reads the planted node" test "$(head -c 8 "$T/rootfs/hostdisk")" = HOSTDISK

agent_start
C1=dvt-priv-$S
ct_xml "$C1" "$T/rootfs" "$T/data1" > "$D/c1.xml"
check "the container without <idmap> becomes ready" dv wait --timeout 20 "domain/$C1"
check "its init reports" wait_until 10 test -s "$T/data1/result"
res() { grep -qx "$1" "$T/data1/result"; }
check "init cannot mknod a block device" res "mknod refused"
check "init cannot write a sysctl (/proc/sys is read-only)" res "sysctl refused"
check "init cannot remount /sys read-write" res "sys stays ro"
check "init cannot remount /proc/sys read-write" res "procsys stays ro"
if [ -f /sys/fs/cgroup/devices/devices.allow ]; then
    check "init cannot read a host block device node (device cgroup: EPERM)" \
        eval 'grep -q "^hostdisk refused: .*Operation not permitted" "$T/data1/result"'
    check "the device cgroup holds the allow-list" \
        eval 'grep -qx "c 136:\* rwm" /sys/fs/cgroup/devices/declvirt/$C1/devices.list &&
              ! grep -q "^a " /sys/fs/cgroup/devices/declvirt/$C1/devices.list'
else
    skip "init cannot read a host block device node" "no cgroup v1 devices controller"
    skip "the device cgroup holds the allow-list" "no cgroup v1 devices controller"
fi
bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' "$T/data1/result")
# CAP_MKNOD 27, CAP_SYS_ADMIN 21, CAP_SYS_MODULE 16, CAP_SYS_RAWIO 17, CAP_SYS_TIME 25,
# CAP_AUDIT_CONTROL 30, CAP_MAC_ADMIN 33, CAP_DAC_READ_SEARCH 2; CAP_NET_ADMIN 12 and
# CAP_NET_RAW 13 as it shares the host's network
for c in 27 21 16 17 25 30 33 2 12 13; do
    check "capability $c is not in init's bounding set ($bnd)" eval '[ $(( (0x$bnd >> c) & 1 )) = 0 ]'
done
check "CAP_NET_BIND_SERVICE (10) stays" eval '[ $(( (0x$bnd >> 10) & 1 )) = 1 ]'
p1=$(pid_of "$C1")
eff=$(sed -n 's/^CapEff:[[:space:]]*//p' "/proc/$p1/status")
check "init's effective set lacks them too ($eff)" eval '[ $(( 0x$eff & ((1<<27)|(1<<21)|(1<<16)|(1<<17)|(1<<25)|(1<<30)|(1<<33)) )) = 0 ]'
fds_ok() {
    local f t
    for f in /proc/$p1/fd/*; do
        t=$(readlink "$f") || continue
        case "$t" in /dev/null|*console.log|*/sbin/init) ;; *) echo "init holds $f -> $t"; return 1 ;; esac
    done
}
check "init holds no descriptor of the agent" fds_ok
check "the plan shows the dropped capabilities" \
    eval 'dv native "$D/c1.xml" | grep -q "^capabilities drop .*mknod .*sys_admin"'

# ---- the documented <idmap> form ------------------------------------------------------------
BASE=3170000
mkroot "$T/rootfs2"
mkdir -p "$T/data2" && chown "$BASE:$BASE" "$T/data2"
C2=dvt-idmap-$S
ct_xml "$C2" "$T/rootfs2" "$T/data2" "<idmap><uid start='0' target='$BASE' count='65536'/><gid start='0' target='$BASE' count='65536'/></idmap>" > "$D/c2.xml"
check "the <idmap> container becomes ready" dv wait --timeout 20 "domain/$C2"
check "its init writes its marker" wait_until 10 test -s "$T/data2/result"
check "the marker is owned by the mapped root on the host" test "$(stat -c %u "$T/data2/marker")" = "$BASE"
check "uid_map inside is the written map, not the identity" \
    eval '[ "$(tr -s " " < "$T/data2/uid_map" | sed "s/^ //")" = "0 $BASE 65536" ]'
check "init is root inside" test "$(cat "$T/data2/uid")" = 0
p2=$(pid_of "$C2")
check "and uid $BASE on the host" eval 'grep -q "^Uid:[[:space:]]*$BASE[[:space:]]" /proc/$p2/status'
res2() { grep -qx "$1" "$T/data2/result"; }
check "inside <idmap>: no mknod of a block device" res2 "mknod refused"
check "inside <idmap>: /sys stays read-only" res2 "sys stays ro"
# A mount the container made in its own user namespace it may remount, but the sysctl
# files belong to the host's root, which its map does not name: the write still fails.
check "inside <idmap>: no sysctl write, even after trying to remount /proc/sys" res2 "sysctl refused"

rm -f "$D"/*.xml
check "removing the files stops both" wait_until 30 eval '! ls "$T"/run/lxc/*.pid 2>/dev/null'
check "their device cgroup is gone" wait_until 10 eval '[ ! -d /sys/fs/cgroup/devices/declvirt/$C1 ]'
agent_stop
