#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# dnsmasq look-alikes (issue 17, attack 4): dnsmasq hands its pidfile to the user it drops
# to (nobody on Debian), who could write any PID into it, kill dnsmasq and leave the network
# "ready" with DHCP dead. Now dnsmasq runs as a user of its own ("dnsmasq", created by
# Debian's dnsmasq-base), so nobody cannot signal it; the agent writes the pidfile again as
# root once it has checked the daemon, records its identity (RUN_DIR/dnsmasq/NAME.ident:
# PID, start time, uid/gid, binary) and believes nothing else: a nobody-owned process with
# dnsmasq's command line is neither taken for dnsmasq nor signalled, the real one is started
# again (here after root killed it) and DHCP works.
# The real agent runs in a network namespace of the test's own, as in network-nat.sh.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog ip
need_prog busybox
need_prog setpriv
[ -x /usr/sbin/dnsmasq ] || skip_all "dnsmasq is not installed"
LOOKALIKE=$REPO/${BUILD:-build}/tools/lookalike
[ -x "$LOOKALIKE" ] || skip_all "build/tools/lookalike is not built (make build-all)"
netns_setup dvt-host dvt-guest

agent_setup
D=$T/desired
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
as_nobody() { "${NOBODY[@]}" "$@"; }
R=$T/run/dnsmasq
PIDFILE=$R/nat1.pid
CONF=$R/nat1.conf
dnsmasq_pid() { cat "$PIDFILE" 2>/dev/null; }
# A nobody-owned process with exactly dnsmasq's command line (exec -a); prints its PID.
fake_dnsmasq() {
    "${NOBODY[@]}" bash -c 'exec -a dnsmasq "$1" --conf-file="$2"' fake "$LOOKALIKE" "$CONF" \
        >/dev/null 2>&1 &
    echo $!
}
# lease: a DHCP lease for the guest namespace within 20 s.
lease() {
    ip netns exec "$GS" timeout 20 busybox udhcpc -i eth0 -n -q -f -t 8 -T 1 -s /bin/true 2>&1 |
        grep -Eq "(Lease of|lease of) 192\.0\.2\.1[0-4][0-9] obtained"
}

cat > "$D/nat1.xml" <<XML
<network>
  <name>nat1</name>
  <forward mode='nat'/>
  <bridge name='dvlk0' stp='on' delay='0'/>
  <ip address='192.0.2.1' prefix='24'><dhcp><range start='192.0.2.100' end='192.0.2.150'/></dhcp></ip>
</network>
XML
agent_start_ns
check "the NAT network is ready" wait_until 15 phase_is network/nat1 ready
pid1=$(dnsmasq_pid)
check "dnsmasq runs" alive "$pid1"
duid=$(stat -c %u "/proc/$pid1")
check "dnsmasq runs as an unprivileged user (uid $duid)" test "$duid" != 0
if own=$(getent passwd dnsmasq); then
    own_uid=$(cut -d: -f3 <<<"$own")
    own_gid=$(cut -d: -f4 <<<"$own")
    check "that user is dnsmasq's own (uid $own_uid), with its primary group (gid $own_gid)" \
        eval 'grep -Eq "^Uid:\s+$own_uid\s+$own_uid\s" /proc/$pid1/status &&
              grep -Eq "^Gid:\s+$own_gid\s+$own_gid\s" /proc/$pid1/status'
    check "its configuration says so" \
        eval 'grep -qx user=dnsmasq "$CONF" && grep -qx "group=$(getent group "$own_gid" | cut -d: -f1)" "$CONF"'
    for sig in TERM KILL; do
        check "nobody cannot send SIG$sig to dnsmasq (EPERM)" \
            eval '! as_nobody kill -s '$sig' "$pid1" 2>"$T/kill.err" && grep -q "Operation not permitted" "$T/kill.err"'
    done
    check "dnsmasq is still alive and still the one recorded" \
        eval 'alive "$pid1" && [ "$(dnsmasq_pid)" = "$pid1" ] && grep -q "^pid=$pid1 " "$R/nat1.ident"'
else
    skip "nobody cannot signal dnsmasq" "there is no user dnsmasq on this host (dnsmasq-base creates it)"
fi
check "its pidfile is root's, 0644, written again by the agent" test "$(stat -c '%u %a' "$PIDFILE")" = "0 644"
check "its record is root's, 0600, and names it with the uid it dropped to" \
    eval '[ "$(stat -c "%u %a" "$R/nat1.ident")" = "0 600" ] && grep -q "^pid=$pid1 .* uid=$duid,$duid " "$R/nat1.ident"'
check "their directory is root's, 0755" test "$(stat -c '%u %a' "$R")" = "0 755"
check "nobody cannot write the pidfile" eval '! as_nobody sh -c "echo 1 > $PIDFILE" 2>/dev/null'
check "nor the record" eval '! as_nobody sh -c "echo pid=1 > $R/nat1.ident" 2>/dev/null'
check "nor replace either through their directory" \
    eval '! as_nobody sh -c "echo 1 > $R/x && mv -f $R/x $PIDFILE" 2>/dev/null && [ "$(dnsmasq_pid)" = "$pid1" ]'
ip link add dvtvh$$ netns "$NS" type veth peer name eth0 netns "$GS"
in_ns ip link set "dvtvh$$" master dvlk0 up
ip -n "$GS" link set eth0 up
# DHCP once the port forwards (port_forwards in lib.sh says why).
check "the guest's bridge port forwards" wait_until 15 port_forwards "dvtvh$$"
check "a guest gets a DHCP lease" lease
# dnsmasq opened its lease file as root before dropping root and writes through that
# descriptor: nothing in the state directory needs to be its user's.
check "dnsmasq wrote the lease to its lease file, which stays root's 0644 in root's directory" \
    wait_until 5 eval '[ "$(stat -c "%u %a" "$T/state/networks/nat1.leases")" = "0 644" ] &&
        [ "$(stat -c "%u %a" "$T/state/networks")" = "0 755" ] &&
        grep -Eq " 192\.0\.2\.1[0-4][0-9] " "$T/state/networks/nat1.leases"'

# ---- the attack: dnsmasq killed, a look-alike under its PID ---------------------------------------
# nobody can no longer kill dnsmasq (above): root does it here, to see what a look-alike gets
# when the real one has gone (a crash, or a host whose dnsmasq still runs as nobody). The PID
# of the look-alike goes into the pidfile by root's hand too (nobody cannot write it: above).
kill -9 "$pid1"
fake=$(fake_dnsmasq)
on_exit kill -9 "$fake"
check "the look-alike runs as nobody with dnsmasq's command line" wait_until 5 eval \
    '[ "$(stat -c %u /proc/'"$fake"')" = 65534 ] && [ "$(tr "\0" " " < /proc/'"$fake"'/cmdline)" = "dnsmasq --conf-file=$CONF " ]'
echo "$fake" > "$PIDFILE"
check "the agent starts a real dnsmasq again" wait_until 15 eval \
    'p=$(dnsmasq_pid); [ -n "$p" ] && [ "$p" != "$fake" ] && [ "$p" != "$pid1" ] && alive "$p" &&
     [ "$(readlink /proc/$p/exe)" = /usr/sbin/dnsmasq ]'
check "the network is ready" wait_until 10 phase_is network/nat1 ready
check "the look-alike was never signalled" alive "$fake"
check "DHCP works again" lease
pid2=$(dnsmasq_pid)

# ---- with no record (an agent that kept none): the look-alike in the pidfile is not taken either ---
agent_stop
kill -9 "$pid2"
wait_until 5 eval '! alive "$pid2"' >/dev/null
rm -f "$R/nat1.ident"
echo "$fake" > "$PIDFILE"
agent_start_ns
check "without a record, a look-alike in the pidfile is not dnsmasq: a real one starts" wait_until 15 eval \
    'p=$(dnsmasq_pid); [ -n "$p" ] && [ "$p" != "$fake" ] && alive "$p" && [ "$(readlink /proc/$p/exe)" = /usr/sbin/dnsmasq ]'
check "the agent's log says it is not ours and leaves it unsignalled" \
    eval 'grep -F "process $fake of $PIDFILE is not ours" "$T/agent.log" | grep -qF "exe $LOOKALIKE"'
check "the look-alike is still alive" alive "$fake"
check "the network is ready" wait_until 10 phase_is network/nat1 ready
check "DHCP works" lease

# ---- removal stops only the real dnsmasq ----------------------------------------------------------------
pid3=$(dnsmasq_pid)
rm "$D/nat1.xml"
check "removal: dnsmasq is gone" wait_until 15 eval '! alive "$pid3"'
check "removal: its pidfile and record are gone" wait_until 5 eval '[ ! -e "$PIDFILE" ] && [ ! -e "$R/nat1.ident" ]'
check "the look-alike is still alive" alive "$fake"
check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop
