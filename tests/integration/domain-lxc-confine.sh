#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# What a container's root can no longer do (issue 16), tried by its own init (a busybox
# shell script with the container's real credentials and namespaces) through the real
# agent:
# - by default (no <idmap>): a user namespace of its own with 65536 ids the agent
#   allocated from container.id_range (/proc/self/uid_map inside shows the base of its
#   record, not the identity); two containers get disjoint ranges, kept across a restart
#   of the container and of the agent; the user's directory root is not chowned (idmapped
#   mount) while a file root writes into a template root is owned by the range's base on
#   the host; init cannot mknod a block device, write a sysctl, remount /sys read-write,
#   write a <readonly/> directory (a 0777 one, even after remounting it) nor read a host
#   disk through a node planted in its root;
# - privileged='yes' (the opt-out): no user namespace, but init's capability sets lack
#   sys_module, sys_rawio, sys_time, mac_admin, audit_control and mknod (and the rest of
#   the list), the device allow-list holds, and the same attacks fail;
# - <idmap> (the documented form): starts with a directory root and with a writable
#   template root (whose overlay used to fail with EACCES), and writes;
# - an upgrade: an init started without a user namespace (as before this change) is
#   adopted as it is and its status says "running unconfined"; at its next start it is
#   confined, and what it wrote in its template's layer as the host's root moves to its
#   range (set-uid bits kept) so that it can still change it;
# - no container's init holds a descriptor of the agent;
# - with every range of container.id_range taken, a container is not started at all and
#   its status names the key.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog losetup
need_prog unshare
[ -x /bin/busybox ] || skip_all "busybox-static is not installed"
[ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || skip_all "no cgroups"

agent_setup
cat >> "$T/agent.conf" <<CONF
container:
  template_dir: $T/templates
  data_dir: $T/containers
CONF
on_exit 'for f in "$T"/run/lxc/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")"; done'
D=$T/desired
S=$$
pid_of() { cat "$T/run/lxc/$1.pid" 2>/dev/null; }
# The first id of a container's range, from its last-applied record.
base_of() { sed -n 's/^ *"id_base": *\([0-9]*\).*/\1/p' "$T/state/applied/domain@$1.json"; }

# mkroot DIR: busybox-static and the probing init, which writes DATA/result when done
# (DATA: /data, or / when the container has no /data).
mkroot() {
    mkdir -p "$1/bin" "$1/sbin" "$1/proc" "$1/sys" "$1/dev" "$1/tmp" "$1/data"
    cp /bin/busybox "$1/bin/busybox"
    for a in sh sleep cat echo mknod mount head grep mv id touch chmod; do ln -sf busybox "$1/bin/$a"; done
    cat > "$1/sbin/init" <<'SH'
#!/bin/sh
trap 'exit 0' TERM
d=/data
grep -q " /data " /proc/mounts || d=
r=$d/result.tmp
: > $r
if mknod /tmp/blk b 8 0 2>/dev/null; then echo "mknod allowed" >> $r; else echo "mknod refused" >> $r; fi
if mount -o remount,rw /sys 2>/dev/null || mount -o remount,bind,rw /sys 2>/dev/null; then echo "sys rw" >> $r; else echo "sys stays ro" >> $r; fi
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
if grep -q " /ro " /proc/mounts; then
    mount -o remount,rw /ro 2>/dev/null; mount -o remount,bind,rw /ro 2>/dev/null
    if touch /ro/x 2>/dev/null; then echo "ro written" >> $r; else echo "ro stays ro" >> $r; fi
fi
grep '^CapBnd:' /proc/self/status >> $r
cat /proc/self/uid_map > $d/uid_map
id -u > $d/uid
echo started > $d/marker
touch /rootmark 2>/dev/null && echo "root writable" >> $r
mv $r $d/result
while true; do sleep 1; done
SH
    chmod 0755 "$1/sbin/init"
}

# ct_xml NAME ROOTFS-ELEMENT [EXTRA] [DATA]
ct_xml() {
    cat <<XML
<domain type='lxc'>
  <name>$1</name>
  <memory unit='KiB'>65536</memory>
  <os>
    <type>exe</type>
    <init>/sbin/init</init>
  </os>
  ${3:-}
  <devices>
    $2
    ${4:+<filesystem type='mount'><source dir='$4'/><target dir='/data'/></filesystem>}
  </devices>
</domain>
XML
}
dir_root() { echo "<filesystem type='mount'><source dir='$1'/><target dir='/'/></filesystem>"; }
tmpl_root() { echo "<filesystem type='template'><source name='$1'/><target dir='/'/></filesystem>"; }
PRIV="<metadata><dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' privileged='yes'/></metadata>"
fds_ok() {
    local f t
    for f in /proc/$1/fd/*; do
        t=$(readlink "$f") || continue
        case "$t" in /dev/null|*console.log|*/sbin/init) ;; *) echo "init holds $f -> $t"; return 1 ;; esac
    done
}

# ---- a host block device with known content, planted in the containers' roots ----------
mkroot "$T/rootfs"
mkroot "$T/rootfs-priv"
mkdir -p "$T/templates" && mkroot "$T/templates/tmpl"
mkdir -p "$T/data1" "$T/data-priv"
printf 'HOSTDISK' > "$T/disk.img" && truncate -s 1M "$T/disk.img"
LOOP=$(losetup -f --show "$T/disk.img") && on_exit losetup -d "$LOOP"
for r in "$T/rootfs" "$T/rootfs-priv"; do
    mknod "$r/hostdisk" b "$(stat -c '%t' "$LOOP" | xargs printf '%d')" \
        "$(stat -c '%T' "$LOOP" | xargs printf '%d')"
done
check "the host itself reads the planted node" test "$(head -c 8 "$T/rootfs/hostdisk")" = HOSTDISK

agent_start
# ---- by default: a user namespace of its own ------------------------------------------------
C1=dvt-userns-$S
C3=dvt-utmpl-$S
mkdir -p "$T/ro1" && chmod 0777 "$T/ro1"
RO="<filesystem type='mount'><source dir='$T/ro1'/><target dir='/ro'/><readonly/></filesystem>"
ct_xml "$C1" "$(dir_root "$T/rootfs") $RO" "" "$T/data1" > "$D/c1.xml"
# The template container has a network namespace of its own: a sysfs of its own.
ct_xml "$C3" "$(tmpl_root tmpl)" "<features><privnet/></features>" > "$D/c3.xml"
check "two default containers become ready" dv wait --timeout 20 "domain/$C1" "domain/$C3"
check "their inits report" wait_until 10 eval 'test -s "$T/data1/result" && test -s "$T/containers/$C3/upper/result"'
B1=$(base_of "$C1")
B3=$(base_of "$C3")
check "each record holds a range of container.id_range ($B1, $B3)" \
    eval '[ "$B1" -ge 1879048192 ] && [ "$B3" -ge 1879048192 ] && [ $(( (B1 - 1879048192) % 65536 )) = 0 ]'
check "the two ranges are disjoint" eval '[ $(( B1 > B3 ? B1 - B3 : B3 - B1 )) -ge 65536 ]'
check "uid_map inside is not the identity but the record's range" \
    eval '[ "$(tr -s " " < "$T/data1/uid_map" | sed "s/^ //")" = "0 $B1 65536" ]'
check "init is root inside" test "$(cat "$T/data1/uid")" = 0
p1=$(pid_of "$C1")
check "and uid $B1 on the host" eval 'grep -q "^Uid:[[:space:]]*$B1[[:space:]]" /proc/$p1/status'
check "in a user namespace other than the host's" \
    test "$(readlink /proc/$p1/ns/user)" != "$(readlink /proc/self/ns/user)"
res() { grep -qx "$2" "$1"; }
R1=$T/data1/result
check "init cannot mknod a block device" res "$R1" "mknod refused"
check "init cannot write a sysctl" res "$R1" "sysctl refused"
check "init cannot remount /sys read-write" res "$R1" "sys stays ro"
check "a <readonly/> directory stays read-only, even after a remount" \
    eval 'res "$R1" "ro stays ro" && [ ! -e "$T/ro1/x" ]'
check "init cannot read a host block device through a planted node" \
    eval 'grep -q "^hostdisk refused: " "$R1"'
check "the user's directory root is not chowned (idmapped): still root's" \
    test "$(stat -c %u:%g "$T/rootfs/sbin/init")" = 0:0
check "what its root writes there is root's on disk too" \
    test "$(stat -c %u "$T/rootfs/rootmark")" = 0
check "init holds no descriptor of the agent" fds_ok "$p1"
R3=$T/containers/$C3/upper/result
check "a file its root writes in a template root is the range's base on the host" \
    test "$(stat -c %u:%g "$T/containers/$C3/upper/rootmark")" = "$B3:$B3"
check "the template is unchanged" test ! -e "$T/templates/tmpl/rootmark"
check "template container: no mknod of a block device" res "$R3" "mknod refused"
check "template container: no sysctl write" res "$R3" "sysctl refused"
check "template container (its own sysfs): /sys stays read-only, even bound again" res "$R3" "sys stays ro"
check "no descriptor of the agent in the template container" fds_ok "$(pid_of "$C3")"
check "status does not call them unconfined" eval '! dv status 2>&1 | grep -q unconfined'

# The range is the domain's for its life: a restart of the agent, then of the container.
agent_stop
agent_start
p3=$(pid_of "$C3")
check "the agent adopts them again" dv wait --timeout 20 "domain/$C1" "domain/$C3"
check "the records keep their ranges" eval '[ "$(base_of "$C1")" = "$B1" ] && [ "$(base_of "$C3")" = "$B3" ]'
rm -f "$T/containers/$C3/upper/uid_map"
kill -9 "$p3"
check "the killed template container is started again" \
    wait_until 30 eval '[ -n "$(pid_of "$C3")" ] && [ "$(pid_of "$C3")" != "$p3" ] && test -s "$T/containers/$C3/upper/uid_map"'
check "with the same range" \
    eval '[ "$(tr -s " " < "$T/containers/$C3/upper/uid_map" | sed "s/^ //")" = "0 $B3 65536" ]'

# ---- privileged='yes': the host's root, less the dangerous capabilities ---------------------
C2=dvt-priv-$S
ct_xml "$C2" "$(dir_root "$T/rootfs-priv")" "$PRIV" "$T/data-priv" > "$D/c2.xml"
check "the privileged container becomes ready" dv wait --timeout 20 "domain/$C2"
check "its init reports" wait_until 10 test -s "$T/data-priv/result"
R2=$T/data-priv/result
p2=$(pid_of "$C2")
check "no range is allocated for it" eval '[ -z "$(base_of "$C2")" ]'
check "it shares the host's user namespace" \
    test "$(readlink /proc/$p2/ns/user)" = "$(readlink /proc/self/ns/user)"
check "init cannot mknod a block device" res "$R2" "mknod refused"
check "init cannot write a sysctl (/proc/sys is read-only)" res "$R2" "sysctl refused"
check "init cannot remount /sys read-write" res "$R2" "sys stays ro"
check "init cannot remount /proc/sys read-write" res "$R2" "procsys stays ro"
if [ -f /sys/fs/cgroup/devices/devices.allow ]; then
    check "init cannot read a host block device node (device cgroup: EPERM)" \
        eval 'grep -q "^hostdisk refused: .*Operation not permitted" "$R2"'
    check "the device cgroup holds the allow-list" \
        eval 'grep -qx "c 136:\* rwm" /sys/fs/cgroup/devices/declvirt/$C2/devices.list &&
              ! grep -q "^a " /sys/fs/cgroup/devices/declvirt/$C2/devices.list'
else
    skip "init cannot read a host block device node" "no cgroup v1 devices controller"
    skip "the device cgroup holds the allow-list" "no cgroup v1 devices controller"
fi
bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' "$R2")
# CAP_SYS_MODULE 16, CAP_SYS_RAWIO 17, CAP_SYS_TIME 25, CAP_MAC_ADMIN 33,
# CAP_AUDIT_CONTROL 30, CAP_MKNOD 27 (the opt-out's promise); CAP_SYS_ADMIN 21,
# CAP_DAC_READ_SEARCH 2; CAP_NET_ADMIN 12 and CAP_NET_RAW 13 as it shares the host's network
for c in 16 17 25 33 30 27 21 2 12 13; do
    check "capability $c is not in init's bounding set ($bnd)" eval '[ $(( (0x$bnd >> c) & 1 )) = 0 ]'
done
check "CAP_NET_BIND_SERVICE (10) stays" eval '[ $(( (0x$bnd >> 10) & 1 )) = 1 ]'
eff=$(sed -n 's/^CapEff:[[:space:]]*//p' "/proc/$p2/status")
check "init's effective set lacks them too ($eff)" eval '[ $(( 0x$eff & ((1<<16)|(1<<17)|(1<<25)|(1<<33)|(1<<30)|(1<<27)|(1<<21)) )) = 0 ]'
check "init holds no descriptor of the agent" fds_ok "$p2"
check "the plan shows the dropped capabilities" \
    eval 'dv native "$D/c2.xml" 2>/dev/null | grep -q "^capabilities drop .*sys_module .*sys_rawio .*sys_time .*mac_admin .*audit_control .*mknod"'
check "status does not call a privileged container unconfined" \
    eval '! dv status 2>&1 | grep "$C2" | grep -q unconfined'

# ---- the documented <idmap> form: a directory root, and a writable template root -------------
BASE=3170000
mkroot "$T/rootfs4"
mkdir -p "$T/data4" && chown "$BASE:$BASE" "$T/data4"
C4=dvt-idmap-$S
C5=dvt-idtmpl-$S
IDMAP="<idmap><uid start='0' target='$BASE' count='65536'/><gid start='0' target='$BASE' count='65536'/></idmap>"
ct_xml "$C4" "$(dir_root "$T/rootfs4") $RO" "$IDMAP" "$T/data4" > "$D/c4.xml"
ct_xml "$C5" "$(tmpl_root tmpl)" "$IDMAP" > "$D/c5.xml"
check "the <idmap> containers become ready (directory and template roots)" \
    dv wait --timeout 20 "domain/$C4" "domain/$C5"
check "their inits write their markers" \
    wait_until 10 eval 'test -s "$T/data4/result" && test -s "$T/containers/$C5/upper/result"'
check "the marker is owned by the mapped root on the host" test "$(stat -c %u "$T/data4/marker")" = "$BASE"
check "uid_map inside is the written map, not the identity" \
    eval '[ "$(tr -s " " < "$T/data4/uid_map" | sed "s/^ //")" = "0 $BASE 65536" ]'
p4=$(pid_of "$C4")
check "init is uid $BASE on the host" eval 'grep -q "^Uid:[[:space:]]*$BASE[[:space:]]" /proc/$p4/status'
R4=$T/data4/result
check "inside <idmap>: no mknod of a block device" res "$R4" "mknod refused"
check "inside <idmap>: /sys stays read-only" res "$R4" "sys stays ro"
check "inside <idmap>: a <readonly/> directory stays read-only, even after a remount" \
    eval 'res "$R4" "ro stays ro" && [ ! -e "$T/ro1/x" ]'
check "inside <idmap>: no sysctl write, even after trying to remount /proc/sys" res "$R4" "sysctl refused"
check "the <idmap> template root is writable" res "$T/containers/$C5/upper/result" "root writable"
check "what it writes is the mapped root's on the host" \
    test "$(stat -c %u "$T/containers/$C5/upper/rootmark")" = "$BASE"
check "no descriptor of the agent in the <idmap> containers" \
    eval 'fds_ok "$p4" && fds_ok "$(pid_of "$C5")"'

# ---- an upgrade: an init started without a user namespace, as before -------------------------
# What the previous agent left: an init of its own pid namespace in the container's
# cgroups, with its pidfile and start time.
# Its writable layer holds what it wrote as the host's root: a file and a set-uid one.
C6=dvt-old-$S
mkdir -p "$T/containers/$C6/upper" "$T/containers/$C6/work"
echo old > "$T/containers/$C6/upper/rootmark"
cp /bin/busybox "$T/containers/$C6/upper/suid" && chmod 4755 "$T/containers/$C6/upper/suid"
if [ -d /sys/fs/cgroup/memory ]; then
    cgs=(memory cpu unified devices)
    cgpath() { echo "/sys/fs/cgroup/$1/declvirt/$C6"; }
else
    cgs=(.)
    cgpath() { echo "/sys/fs/cgroup/declvirt/$C6"; }
fi
for h in "${cgs[@]}"; do [ -d "/sys/fs/cgroup/$h" ] && mkdir -p "$(cgpath "$h")"; done
on_exit "for h in ${cgs[*]}; do rmdir \"\$(cgpath \$h)\" 2>/dev/null; done"
unshare --pid --fork --mount --uts --ipc /bin/busybox sh -c \
    'trap "exit 0" TERM; while :; do sleep 1; done' 2>/dev/null &
UPID=$!
on_exit "kill -9 $UPID 2>/dev/null"
check "the old-style init runs" wait_until 5 eval '[ -n "$(pgrep -P $UPID)" ]'
OLD=$(pgrep -P $UPID)
on_exit 'kill -9 $OLD 2>/dev/null'
for h in "${cgs[@]}"; do
    [ -d "/sys/fs/cgroup/$h" ] && echo "$OLD" > "$(cgpath "$h")/cgroup.procs"
done
mkdir -p "$T/run/lxc"
echo "$OLD" > "$T/run/lxc/$C6.pid"
awk '{ print $22 }' "/proc/$OLD/stat" > "$T/run/lxc/$C6.start"
ct_xml "$C6" "$(tmpl_root tmpl)" > "$D/c6.xml"
check "it is adopted as it is" dv wait --timeout 20 "domain/$C6"
check "the same init runs" test "$(pid_of "$C6")" = "$OLD"
check "status names it as running unconfined" \
    wait_until 10 eval 'dv status 2>&1 | grep "$C6" | grep -q "running unconfined"'
# Its next start (the init dies; the restart policy starts it again) confines it.
kill -9 "$OLD"
check "the agent starts it again after its init died" \
    wait_until 30 eval '[ -n "$(pid_of "$C6")" ] && [ "$(pid_of "$C6")" != "$OLD" ]'
p6=$(pid_of "$C6")
B6=$(base_of "$C6")
check "now in a user namespace of its own, with a range of its record ($B6)" \
    eval '[ -n "$B6" ] && [ "$(tr -s " " < /proc/$p6/uid_map | sed "s/^ //")" = "0 $B6 65536" ]'
check "what it wrote before moved to its range, set-uid bit kept" \
    eval '[ "$(stat -c %u:%g:%a "$T/containers/$C6/upper/suid")" = "$B6:$B6:4755" ]'
check "and its root can still write what it wrote before" \
    wait_until 10 eval 'grep -qx "root writable" "$T/containers/$C6/upper/result"'
check "and status no longer calls it unconfined" \
    wait_until 10 eval '! dv status 2>&1 | grep "$C6" | grep -q unconfined'

rm -f "$D"/*.xml
check "removing the files stops them all" wait_until 30 eval '! ls "$T"/run/lxc/*.pid 2>/dev/null'
check "their device cgroups are gone" wait_until 10 eval '[ ! -d /sys/fs/cgroup/devices/declvirt/$C2 ] && [ ! -d /sys/fs/cgroup/devices/declvirt/$C1 ]'
agent_stop

# ---- every range taken: the container is not started, the message names the key ---------------
# A range of one container's ids (the top of the default range, which nothing here used).
printf 'container:\n  template_dir: %s\n  data_dir: %s\n  id_range: 2147287040-2147352575\n' \
    "$T/templates" "$T/containers" > "$T/conf.tail"
sed -i '/^container:/,$d' "$T/agent.conf" && cat "$T/conf.tail" >> "$T/agent.conf"
agent_start
C7=dvt-full1-$S
C8=dvt-full2-$S
ct_xml "$C7" "$(tmpl_root tmpl)" > "$D/c7.xml"
check "the first container gets the only range" dv wait --timeout 20 "domain/$C7"
check "its range is the configured one" test "$(base_of "$C7")" = 2147287040
ct_xml "$C8" "$(tmpl_root tmpl)" > "$D/c8.xml"
check "the second fails, naming container.id_range" \
    wait_until 20 eval 'st_msg domain/$C8 | grep -q "container.id_range"'
check "and it was never started (not in the host's user namespace either)" \
    eval '[ ! -e "$T/run/lxc/$C8.pid" ] && [ ! -e "$T/containers/$C8/upper/result" ]'
rm -f "$D"/*.xml
check "the first stops" wait_until 30 eval '! ls "$T"/run/lxc/*.pid 2>/dev/null'
agent_stop
