#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Linux containers through the real agent (issue 7), all inside a network namespace of the
# test's own: a busybox-static root built here; init is PID 1 and writes a marker through a
# bind mount; a read-only mount refuses writes; the memory limit is in the cgroup; an
# interface on a NAT network gets a DHCP address (udhcpc in the container); two containers
# from one template keep their writes apart; an ext4 loop device (type='block') and an ext4
# image (type='file', on a loop device the driver attaches) take the container's writes;
# stop on file removal; restart after kill -9;
# the agent restarts with the container running (same PID); observed XML valid; bad inputs.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog ip
need_prog nft
[ -x /bin/busybox ] || skip_all "busybox-static is not installed"
[ -x /usr/sbin/dnsmasq ] || skip_all "dnsmasq is not installed"
[ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || skip_all "no cgroups"
netns_setup dvt-lxc

agent_setup
cat >> "$T/agent.conf" <<CONF
container:
  template_dir: $T/templates
  data_dir: $T/containers
CONF
# Every container init the test started, by its pidfile.
on_exit 'for f in "$T"/run/lxc/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")"; done'
D=$T/desired
S=$$
pid_of() { cat "$T/run/lxc/$1.pid" 2>/dev/null; }

# ---- a root filesystem and a template from busybox-static ------------------------------
mkroot() {
    mkdir -p "$1/bin" "$1/sbin" "$1/etc" "$1/proc" "$1/sys" "$1/dev" "$1/tmp" "$1/data" "$1/ro"
    cp /bin/busybox "$1/bin/busybox"
    for a in sh sleep cat echo touch hostname ls mkdir ip udhcpc true grep; do ln -sf busybox "$1/bin/$a"; done
    cat > "$1/sbin/init" <<'SH'
#!/bin/sh
trap 'echo stopping > /data/stopped; exit 0' TERM
echo $$ > /data/pid
echo started > /data/marker
if touch /ro/x 2>/dev/null; then echo writable > /data/ro; else echo readonly > /data/ro; fi
echo "$DECLVIRT_NAME" > /mine
fs=""
if grep -q " /blk " /proc/mounts; then echo blk > /blk/marker && fs="blk"; fi
if grep -q " /img " /proc/mounts; then echo img > /img/marker && fs="$fs img"; fi
[ -n "$fs" ] && echo $fs > /data/fs
cat /mine > /data/mine
if [ -e /sys/class/net/eth0 ]; then
    udhcpc -i eth0 -q -n -t 20 -T 1 -s /sbin/dhcp >/dev/null 2>&1 &
fi
while true; do sleep 0.1; done
SH
    cat > "$1/sbin/dhcp" <<'SH'
#!/bin/sh
case "$1" in bound|renew) ip addr add "$ip/${mask:-24}" dev "$interface"; echo "$ip" > /data/ip ;; esac
SH
    chmod 0755 "$1/sbin/init" "$1/sbin/dhcp"
}
mkroot "$T/rootfs"
mkdir -p "$T/templates" && mkroot "$T/templates/tmpl"
mkdir -p "$T/ro" "$T/data1" "$T/data2" "$T/data3" "$T/data4"

# ct_xml NAME ROOT-FILESYSTEM DATA-DIR [MEMORY-KIB] [EXTRA-DEVICES] [POLICY]
ct_xml() {
    cat <<XML
<domain type='lxc'>
  <name>$1</name>
  <metadata>
    <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' shutdown-timeout='5' ${6:-}/>
  </metadata>
  <memory unit='KiB'>${4:-65536}</memory>
  <vcpu>1</vcpu>
  <os>
    <type>exe</type>
    <init>/sbin/init</init>
  </os>
  <devices>
    $2
    <filesystem type='mount'>
      <source dir='$3'/>
      <target dir='/data'/>
    </filesystem>
    <filesystem type='mount'>
      <source dir='$T/ro'/>
      <target dir='/ro'/>
      <readonly/>
    </filesystem>
    ${5:-}
  </devices>
</domain>
XML
}
root_mount() { echo "<filesystem type='mount'><source dir='$1'/><target dir='/'/></filesystem>"; }
root_tmpl() { echo "<filesystem type='template'><source name='$1'/><target dir='/'/></filesystem>"; }

agent_start_ns
C1=dvt-c1-$S
ct_xml "$C1" "$(root_mount "$T/rootfs")" "$T/data1" > "$D/c1.xml"
check "the container becomes ready" dv wait --timeout 20 "domain/$C1"
p1=$(pid_of "$C1")
check "its init runs" alive "$p1"
check "init wrote its marker through the bind mount" wait_until 5 test -s "$T/data1/marker"
check "init is PID 1 inside" test "$(cat "$T/data1/pid")" = 1
check "NSpid says so too" eval 'grep -q "^NSpid:[[:space:]]*$p1[[:space:]]1$" /proc/$p1/status'
check "the read-only mount refuses writes" wait_until 5 eval '[ "$(cat "$T/data1/ro")" = readonly ]'
check "nothing was written to the read-only source" test ! -e "$T/ro/x"
mem=$(cat /sys/fs/cgroup/memory/declvirt/$C1/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/declvirt/$C1/memory.max)
check "the memory limit is in the cgroup" test "$mem" = 67108864
check "init is in that cgroup" grep -q "/declvirt/$C1\$" /proc/$p1/cgroup
check "observed XML has id=PID" grep -q "<domain type='lxc' id='$p1'" "$T/state/domains/$C1.xml"
if command -v virt-xml-validate >/dev/null; then
    check "observed XML is valid for libvirt" virt-xml-validate "$T/state/domains/$C1.xml" domain
else
    skip "observed XML is valid for libvirt" "virt-xml-validate is not installed"
fi
check "declvirt native prints the plan" eval 'dv native "$D/c1.xml" | grep -q "^argv /sbin/init$"'

# ---- restart policy after kill -9 of the init ---------------------------------------------
kill -9 "$p1"
check "restart='always' starts it again after kill -9" \
    wait_until 20 eval 'p=$(pid_of "$C1"); [ -n "$p" ] && [ "$p" != "$p1" ] && alive "$p"'
p1=$(pid_of "$C1")

# ---- the agent restarts; the container keeps running ----------------------------------------
agent_stop
check "the container outlives the agent" alive "$p1"
agent_start_ns
check "the restarted agent finds it ready" dv wait --timeout 15 "domain/$C1"
check "with the same PID" test "$(pid_of "$C1")" = "$p1"
check "never restarted" alive "$p1"

# ---- two containers from one template ---------------------------------------------------------
T1=dvt-t1-$S T2=dvt-t2-$S
ct_xml "$T1" "$(root_tmpl tmpl)" "$T/data2" > "$D/t1.xml"
ct_xml "$T2" "$(root_tmpl tmpl)" "$T/data3" > "$D/t2.xml"
check "both template containers become ready" dv wait --timeout 20 "domain/$T1" "domain/$T2"
check "each sees its own write" wait_until 5 eval '[ "$(cat "$T/data2/mine")" = "$T1" ] && [ "$(cat "$T/data3/mine")" = "$T2" ]'
check "the writes are in each one's own layer" eval '[ "$(cat "$T/containers/$T1/upper/mine")" = "$T1" ] &&
    [ "$(cat "$T/containers/$T2/upper/mine")" = "$T2" ]'
check "the template is unchanged" test ! -e "$T/templates/tmpl/mine"

# ---- an interface on a NAT network gets its DHCP address -------------------------------------
cat > "$D/n.xml" <<XML
<network>
  <name>lxcnat</name>
  <forward mode='nat'/>
  <bridge name='dvlx0' stp='off'/>
  <ip address='192.0.2.1' prefix='24'>
    <dhcp><range start='192.0.2.100' end='192.0.2.150'/></dhcp>
  </ip>
</network>
XML
N1=dvt-n1-$S
ct_xml "$N1" "$(root_mount "$T/rootfs")" "$T/data4" 65536 \
    "<interface type='network'><mac address='52:54:00:42:00:01'/><source network='lxcnat'/></interface>" > "$D/n1.xml"
check "the container with an interface becomes ready" dv wait --timeout 30 "domain/$N1"
veth=$(grep -o "<target dev='dvc[0-9a-f]*'" "$T/state/domains/$N1.xml" | grep -o "dvc[0-9a-f]*")
check "its veth's host end is on the bridge" eval 'in_ns ip -o link show "$veth" | grep -q " master dvlx0 "'
pn=$(pid_of "$N1")
check "inside, eth0 has the MAC" eval 'nsenter -t "$pn" -n ip -o link show eth0 | grep -q "52:54:00:42:00:01"'
check "udhcpc in the container gets an address" wait_until 20 test -s "$T/data4/ip"
check "from the network's range" grep -q '^192\.0\.2\.1[0-4][0-9]$' "$T/data4/ip"

# ---- stop on file removal ---------------------------------------------------------------------
rm "$D/t2.xml"
pt2=$(pid_of "$T2")
check "removing the file stops the container" wait_until 15 eval '! alive "$pt2"'
check "gracefully (its trap ran)" test -s "$T/data3/stopped"
check "its cgroup is gone" wait_until 5 eval '[ ! -d /sys/fs/cgroup/memory/declvirt/$T2 ] && [ ! -d /sys/fs/cgroup/declvirt/$T2 ]'
check "its own layer stays" test -s "$T/containers/$T2/upper/mine"

# ---- block and file filesystems: a loop device and an image, both ext4 ------------------------
if command -v mkfs.ext4 >/dev/null; then
    truncate -s 32M "$T/blkfs.img" "$T/img.ext4"
    mkfs.ext4 -q -F "$T/blkfs.img" && mkfs.ext4 -q -F "$T/img.ext4"
    BLK=$(losetup -f --show "$T/blkfs.img") && on_exit losetup -d "$BLK"
    C5=dvt-c5-$S
    ct_xml "$C5" "$(root_mount "$T/rootfs")" "$T/data4" 65536 \
        "<filesystem type='block'><source dev='$BLK'/><target dir='/blk'/></filesystem>
         <filesystem type='file'><driver type='loop' format='raw'/><source file='$T/img.ext4'/><target dir='/img'/></filesystem>" \
        > "$D/c5.xml"
    check "a container with a block and a file filesystem becomes ready" dv wait --timeout 20 "domain/$C5"
    check "init wrote into both" wait_until 10 grep -qx "blk img" "$T/data4/fs"
    check "the image is on a loop device while it runs" eval '[ -n "$(losetup -j "$T/img.ext4")" ]'
    rm "$D/c5.xml"
    check "it stops when its file goes" wait_until 20 eval '[ -z "$(phase_of "domain/$C5")" ]'
    mkdir -p "$T/mnt"
    host_marker() { # DEVICE-OR-IMAGE WORD: the container's write is on that filesystem
        mount -o ro "$1" "$T/mnt" || return 1
        local r=0; grep -qx "$2" "$T/mnt/marker" || r=1
        umount "$T/mnt"; return $r
    }
    check "its write is on the block device" host_marker "$BLK" blk
    check "the image's loop device went with the container" wait_until 10 eval '[ -z "$(losetup -j "$T/img.ext4")" ]'
    check "its write is in the image" host_marker "$T/img.ext4" img
else
    skip "block and file filesystems" "mkfs.ext4 is not installed"
fi

# ---- bad inputs --------------------------------------------------------------------------------
B=dvt-bad-$S
sed 's|<init>/sbin/init</init>|<init>/sbin/nope</init>|' <(ct_xml "$B-init" "$(root_mount "$T/rootfs")" "$T/data1") > "$D/b1.xml"
check "a missing init is reported" wait_until 15 eval 'st_msg domain/$B-init | grep -q "init /sbin/nope not found in the container.s root filesystem"'
ct_xml "$B-root" "$(root_mount "$T/no-such-root")" "$T/data1" > "$D/b2.xml"
check "a missing root source is reported" wait_until 15 eval 'st_msg domain/$B-root | grep -q "source directory $T/no-such-root of <filesystem> (line [0-9]*): No such file"'
ct_xml "$B-tmpl" "$(root_tmpl nosuch)" "$T/data1" > "$D/b3.xml"
check "a missing template is reported" wait_until 15 eval 'st_msg domain/$B-tmpl | grep -q "template .nosuch. of <filesystem>"'
ct_xml "$B-mem" "$(root_mount "$T/rootfs")" "$T/data1" 1024 > "$D/b4.xml"
check "a memory limit below what a container needs makes the file invalid" \
    wait_until 15 eval 'st_file "$D/b4.xml" | grep -q "below the 4096 KiB"'
check "declvirt validate says the same" \
    eval '! dv validate "$D/b4.xml" >/dev/null 2>&1 && dv validate "$D/b4.xml" 2>&1 | grep -q "below the 4096 KiB"'
truncate -s 16M "$T/blk.img"
LOOP=$(losetup -f --show "$T/blk.img") && on_exit losetup -d "$LOOP"
blk="<filesystem type='block'><source dev='$LOOP'/><target dir='/blk'/></filesystem>"
ct_xml "$B-blk1" "$(root_mount "$T/rootfs")" "$T/data1" 65536 "$blk" > "$D/b5.xml"
ct_xml "$B-blk2" "$(root_mount "$T/rootfs")" "$T/data1" 65536 "$blk" > "$D/b6.xml"
check "two containers with one block device read-write: neither starts" \
    wait_until 15 eval 'st_msg domain/$B-blk1 | grep -q "$B-blk2" && st_msg domain/$B-blk2 | grep -q "$B-blk1"'
check "and no init runs for them" eval '[ -z "$(pid_of $B-blk1)" ] && [ -z "$(pid_of $B-blk2)" ]'
check "the bad inputs left no cgroup" eval '! ls -d /sys/fs/cgroup/memory/declvirt/$B-* 2>/dev/null'

# ---- clean up through the agent ------------------------------------------------------------
rm -f "$D"/*.xml
check "removing every file stops every container" wait_until 30 eval '! ls "$T"/run/lxc/*.pid 2>/dev/null'
check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop
