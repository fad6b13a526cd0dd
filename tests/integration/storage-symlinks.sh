#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 17, attack 1: a dir pool whose directory any user may write to, attacked as
# `nobody` through the real agent. A loop re-planting symlinks at the volume names and
# at the old temporary names while 20 qcow2 volumes are made never gets a root-owned
# 0600 file written; a pool target that is (or goes through) a planted symlink is
# blocked, naming it, and the symlink's target keeps its owner and mode; a symlink, a
# FIFO or a device node under a volume's name is blocked, naming it, never measured into
# the observed XML and never given to a guest; resize and delete never go through a
# symlink put in a volume's place.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog qemu-img
need_prog setpriv
need_prog /usr/bin/python3
agent_setup
QEMU=/usr/bin/qemu-system-x86_64
if [ -x $QEMU ]; then
    cat >> "$T/agent.conf" <<CONF
qemu:
  binary: $QEMU
  accel: tcg
CONF
    on_exit 'for f in "$T"/run/qemu/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")"; done'
fi
D=$T/desired
P=$T/pools/shared
MiB=1048576
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
sum() { sha256sum "$1" | cut -d' ' -f1; }
owner_mode() { stat -c '%U %a' "$1"; }

# The victim: a root-owned 0600 file nobody can read or write, only name.
head -c 65536 /dev/urandom > "$T/victim"
chmod 0600 "$T/victim"
victim_sum=$(sum "$T/victim")
victim_stat=$(stat -c '%s %Y %i' "$T/victim")
victim_intact() { [ "$(sum "$T/victim")" = "$victim_sum" ] && [ "$(stat -c '%s %Y %i' "$T/victim")" = "$victim_stat" ]; }

# vol_domain_xml NAME VOLUME: a small TCG guest whose one disk is VOLUME of the shared pool.
vol_domain_xml() {
    cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='raw'/>
      <source pool='shared' volume='$2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
XML
}

shared_xml() {
    cat <<XML
<pool type='dir'>
  <name>shared</name>
  <target>
    <path>$P</path>
    <permissions><mode>0777</mode></permissions>
  </target>
</pool>
XML
}
shared_xml > "$D/shared.xml"
agent_start
check "a pool directory everyone may write to is ready" wait_until 10 phase_is pool/shared ready
check "nobody can write to it" as_nobody touch "$P/probe"
rm -f "$P/probe"

# ---- the race: symlinks re-planted while 20 qcow2 volumes are made ------------------------
# As nobody, without pause: a symlink to the victim under each temporary name the agent
# used to unlink and hand to qemu-img, and under each volume name the moment it is free.
cat > "$T/planter.sh" <<'SH'
P=$1 V=$2
while :; do
    for i in $(seq 1 20); do
        ln -sfn "$V" "$P/.v$i.qcow2.creating" 2>/dev/null
        ln -s "$V" "$P/.v$i.qcow2.creating" 2>/dev/null
    done
done
SH
chmod 0755 "$T/planter.sh"
# setpriv execs bash: $! is the planter itself, killed by PID.
setpriv --reuid=nobody --regid=nogroup --clear-groups -- /bin/bash "$T/planter.sh" "$P" "$T/victim" &
PLANTER=$!
on_exit "kill $PLANTER"
for i in $(seq 1 20); do vol_xml shared v$i.qcow2 $MiB qcow2 > "$D/v$i.xml"; done
all_ready() { local i; for i in $(seq 1 20); do phase_is volume/shared/v$i.qcow2 ready || return 1; done; }
check "20 qcow2 volumes are made while nobody plants symlinks" wait_until 60 all_ready
kill "$PLANTER"; wait "$PLANTER" 2>/dev/null
check "the root-owned 0600 victim is byte-identical" victim_intact
check "the victim is still root's and 0600" test "$(owner_mode "$T/victim")" = "root 600"
bad=
for i in $(seq 1 20); do
    f=$P/v$i.qcow2
    { [ -f "$f" ] && [ ! -L "$f" ] && [ "$(stat -c %U "$f")" = root ] &&
        qemu-img info -f qcow2 -U "$f" >/dev/null 2>&1; } || bad="$bad v$i"
done
check "each volume is a root-owned qcow2 regular file" test -z "$bad"
rm -f "$P"/.v*.qcow2.creating

# ---- symlink, FIFO, device node under a volume's name -------------------------------------
as_nobody ln -s "$T/victim" "$P/evil.img"
as_nobody mkfifo "$P/fifo.img"
mknod "$P/dev.img" c 1 3 # nobody cannot make one; someone else may have
as_nobody ln -s "$T/victim" "$P/peek.img" # no volume declared under this name
for v in evil fifo dev; do vol_xml shared $v.img $MiB raw > "$D/$v.xml"; done
blocked_naming() { phase_is "volume/shared/$1" blocked && st_msg "volume/shared/$1" | grep -qF "$P/$1 is $2"; }
check "a symlink under a volume's name: blocked, naming it" wait_until 15 blocked_naming evil.img "a symbolic link"
check "a FIFO under a volume's name: blocked, naming it" wait_until 15 blocked_naming fifo.img "a FIFO"
check "a device node under a volume's name: blocked, naming it" wait_until 15 blocked_naming dev.img "a character device"
check "no observed XML measures the symlink's target" test ! -e "$T/state/volumes/shared/evil.img.xml"
check "no observed XML for the FIFO or the device" \
    eval 'test ! -e "$T/state/volumes/shared/fifo.img.xml" && test ! -e "$T/state/volumes/shared/dev.img.xml"'
check "an undeclared symlink is not adopted as an unmanaged volume" eval '! st_has volume/shared/peek.img'
check "the victim's size appears in no observed XML" eval '! grep -rqs "<capacity unit=.bytes.>65536<" "$T/state/volumes"'
check "the symlinks and the FIFO are left as they are" \
    eval 'test -L "$P/evil.img" && test -p "$P/fifo.img" && test -c "$P/dev.img"'

# ---- a guest whose disk is that volume is not started -------------------------------------
if [ -x $QEMU ]; then
    vol_domain_xml vm1 evil.img > "$D/vm1.xml"
    check "the domain waits for the blocked volume" \
        wait_until 15 eval 'st_msg domain/vm1 | grep -qF "waiting for volume/shared/evil.img (blocked)"'
    holds_for 2 eval '! ls "$T"/run/qemu/*.pid' && ok "no QEMU was started" ||
        not_ok "no QEMU was started" "$(ls -l "$T"/run/qemu)"
    rm -f "$D/vm1.xml"
else
    skip "the domain waits for the blocked volume" "qemu-system-x86_64 is not installed"
fi
check "the victim is byte-identical after the adoption attempts" victim_intact

# ---- resize and delete of a volume whose file nobody swapped for a symlink ------------------
vol_xml shared keep.img $MiB raw "on-remove='delete'" > "$D/keep.xml"
check "a raw volume is ready" wait_until 15 phase_is volume/shared/keep.img ready
as_nobody mv "$P/keep.img" "$P/keep.moved"
as_nobody ln -s "$T/victim" "$P/keep.img"
vol_xml shared keep.img $((2 * MiB)) raw "on-remove='delete'" > "$D/keep.xml"
check "growing it is blocked, naming the symlink" wait_until 15 blocked_naming keep.img "a symbolic link"
check "the victim did not grow" victim_intact
rm -f "$D/keep.xml"
wait_until 15 eval '! st_has volume/shared/keep.img'
wait_pass
check "deleting it removes neither the symlink nor the victim" \
    eval 'test -L "$P/keep.img" && victim_intact'
check "the moved volume file is untouched" test "$(stat -c %s "$P/keep.moved")" = $MiB

# ---- a pool target that is, or goes through, a symlink planted by nobody --------------------
mkdir -m 0755 "$T/home"
chown nobody:nogroup "$T/home"
mkdir -m 0700 "$T/rootdir" "$T/rootparent"
chmod 0700 "$T/rootparent"
as_nobody ln -s "$T/rootdir" "$T/home/pool"
as_nobody ln -s "$T/rootparent" "$T/home/link"
for n in evilpool deeppool; do
    [ $n = evilpool ] && path=$T/home/pool || path=$T/home/link/pool
    cat > "$D/$n.xml" <<XML
<pool type='dir'>
  <name>$n</name>
  <target>
    <path>$path</path>
    <permissions><owner>$(id -u nobody)</owner><mode>0775</mode></permissions>
  </target>
</pool>
XML
done
check "a symlinked pool target is reported, naming it" \
    wait_until 15 eval 'st_msg pool/evilpool | grep -qF "$T/home/pool is or goes through a symbolic link"'
check "a pool target through a symlinked directory is reported, naming it" \
    wait_until 15 eval 'st_msg pool/deeppool | grep -qF "$T/home/link/pool is or goes through a symbolic link"'
check "the symlinked pool is not ready" eval '! phase_is pool/evilpool ready'
wait_pass
check "the symlink's target keeps its owner and mode (root 700)" test "$(owner_mode "$T/rootdir")" = "root 700"
check "nothing was made through the symlinked directory" test ! -e "$T/rootparent/pool"
check "the directory above keeps its owner and mode" test "$(owner_mode "$T/rootparent")" = "root 700"

# ---- legitimate use still works ------------------------------------------------------------
vol_xml shared after.img $MiB raw > "$D/after.xml"
check "a new volume in the shared pool is still made" wait_until 15 phase_is volume/shared/after.img ready
check "the shared pool stays ready" phase_is pool/shared ready

# ---- a running guest's disk swapped for a symlink: QEMU keeps the file it was given ---------
# QEMU gets its disks as descriptors the agent opened (-add-fd), never a path to open: a
# swap after the start cannot hand it another file, and a restart refuses the symlink.
if [ -x $QEMU ]; then
    vol_xml shared guest.img $MiB raw > "$D/guest.xml"
    vol_domain_xml vm2 guest.img > "$D/vm2.xml"
    check "a guest on a volume of the shared pool runs" wait_until 30 phase_is domain/vm2 ready
    qpid=$(cat "$T/run/qemu/vm2.pid")
    guest_ino=$(stat -c %i "$P/guest.img")
    victim_ino=$(stat -c %i "$T/victim")
    fd_inos() { for f in /proc/$qpid/fd/*; do stat -L -c %i "$f" 2>/dev/null; done; }
    check "QEMU holds the volume's file" eval 'fd_inos | grep -qx "$guest_ino"'
    check "QEMU's command line names no disk file to open (only /dev/fdset)" \
        eval '! tr "\0" "\n" < /proc/$qpid/cmdline | grep -q "\"filename\":\"$P"'
    as_nobody mv "$P/guest.img" "$P/guest.moved"
    as_nobody ln -s "$T/victim" "$P/guest.img"
    check "after the swap QEMU still holds the original file" eval 'fd_inos | grep -qx "$guest_ino"'
    check "and holds nothing of the victim" eval '! fd_inos | grep -qx "$victim_ino"'
    kill -9 "$qpid"
    # Two outcomes are right, depending on whether the volume was observed again before
    # the domain's restart: the start refuses the symlink, or the domain waits for the
    # volume, now blocked. Either way no QEMU runs on it.
    check "QEMU killed: the agent does not start it on the symlink" \
        wait_until 20 eval 'st_msg domain/vm2 |
            grep -qE "a symbolic link|waiting for volume/shared/guest.img \(blocked\)"'
    check "no QEMU runs for the domain" holds_for 2 eval '! pgrep -f "guest=vm2" >/dev/null'
    check "no QEMU holds the victim" eval '! for p in $(pgrep -f qemu-system); do
        for f in /proc/$p/fd/*; do stat -L -c %i "$f" 2>/dev/null; done; done | grep -qx "$victim_ino"'
    check "the victim is byte-identical after the swap" victim_intact
    rm -f "$D/vm2.xml" "$D/guest.xml"
else
    skip "a guest on a volume of the shared pool runs" "qemu-system-x86_64 is not installed"
fi
agent_stop
