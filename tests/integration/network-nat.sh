#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Networks end to end (issue 5): the real agent runs inside a network namespace of the
# test's own (the host's network is never touched) and brings up NAT, routed, isolated
# and open networks with netlink, nftables and dnsmasq; a guest namespace behind a veth
# pair gets a DHCP lease with busybox udhcpc. Addresses are TEST-NET ranges.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog ip
need_prog nft
need_prog busybox
[ -x /usr/sbin/dnsmasq ] || skip_all "dnsmasq is not installed"
netns_setup dvt-host dvt-guest

agent_setup
D=$T/desired


# net_xml NAME BRIDGE MODE ADDR PREFIX [RANGE_START RANGE_END] [POLICY-ATTRS]
net_xml() {
    local fwd=
    [ "$3" != none ] && fwd="<forward mode='$3'/>"
    local dhcp=
    [ -n "${6:-}" ] && dhcp="<dhcp><range start='$6' end='$7'/></dhcp>"
    cat <<XML
<network>
  <name>$1</name>
  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' ${8:-}/>
  $fwd
  <bridge name='$2' stp='on' delay='0'/>
  <ip address='$4' prefix='$5'>$dhcp</ip>
</network>
XML
}
ifindex() { in_ns cat "/sys/class/net/$1/ifindex" 2>/dev/null; }
dnsmasq_pid() { cat "$T/run/dnsmasq/$1.pid" 2>/dev/null; }
table() { in_ns nft list table inet declvirt 2>/dev/null; }

# ---- a NAT network with DHCP ----------------------------------------------------------
net_xml nat1 dvnat0 nat 192.0.2.1 24 192.0.2.100 192.0.2.150 > "$D/nat1.xml"
agent_start_ns
check "the NAT network is ready" wait_until 15 phase_is network/nat1 ready
check "its bridge exists in the namespace" in_ns ip link show dvnat0
check "the bridge is up" eval 'in_ns ip -o link show dvnat0 | grep -q "state UP\|,UP"'
check "the bridge has its address" eval 'in_ns ip -o addr show dev dvnat0 | grep -q "192.0.2.1/24"'
check "the host's own namespace has no such bridge" eval '! ip link show dvnat0 2>/dev/null'
check "STP is on" test "$(in_ns cat /sys/class/net/dvnat0/bridge/stp_state)" != 0
check "the nft table holds the masquerade rule" eval 'table | grep -q masquerade'
check "forwarding is on in the namespace" test "$(in_ns cat /proc/sys/net/ipv4/ip_forward)" = 1
pid1=$(dnsmasq_pid nat1)
check "dnsmasq runs for it" alive "$pid1"
check "dnsmasq reads only our configuration" eval 'tr "\0" " " < /proc/$pid1/cmdline | grep -q -- "--conf-file=$T/run/dnsmasq/nat1.conf"'
check "observed network XML exists" test -s "$T/state/networks/nat1.xml"
if command -v virt-xml-validate >/dev/null; then
    check "observed network XML passes virt-xml-validate network" \
        virt-xml-validate "$T/state/networks/nat1.xml" network
fi
check "observed XML has a generated MAC" grep -q "<mac address='52:54:00:" "$T/state/networks/nat1.xml"
check "and a UUID" grep -q "<uuid>" "$T/state/networks/nat1.xml"
mac1=$(grep -o "52:54:00:[0-9a-f:]*" "$T/state/networks/nat1.xml" | head -1)
check "the bridge carries that MAC" test "$(in_ns cat /sys/class/net/dvnat0/address)" = "$mac1"

# A guest behind a veth pair gets a lease.
ip link add dvtvh$$ netns "$NS" type veth peer name eth0 netns "$GS"
in_ns ip link set "dvtvh$$" master dvnat0 up
ip -n "$GS" link set eth0 up
# DHCP once the port forwards (port_forwards in lib.sh says why).
check "the guest's bridge port forwards" wait_until 15 port_forwards "dvtvh$$"
lease=$(ip netns exec "$GS" timeout 20 busybox udhcpc -i eth0 -n -q -f -t 8 -T 1 -s /bin/true 2>&1)
check "a guest gets a DHCP lease in the range" eval 'grep -Eq "(Lease of|lease of) 192\.0\.2\.1[0-4][0-9] obtained" <<<"$lease" ||
    { sed "s/^/# udhcpc: /" <<<"$lease"; false; }' 
check "the lease is in the lease file beside the network's state" \
    wait_until 5 grep -q "192.0.2.1" "$T/state/networks/nat1.leases"

# ---- a DHCP change restarts only dnsmasq ------------------------------------------------
idx=$(ifindex dvnat0)
net_xml nat1 dvnat0 nat 192.0.2.1 24 192.0.2.160 192.0.2.200 > "$D/nat1.xml"
check "a DHCP range change restarts dnsmasq" wait_until 10 eval '[ -n "$(dnsmasq_pid nat1)" ] && [ "$(dnsmasq_pid nat1)" != "$pid1" ] && alive "$(dnsmasq_pid nat1)"'
check "the old dnsmasq is gone" eval '! alive "$pid1"'
check "the bridge is the same (ifindex unchanged)" test "$(ifindex dvnat0)" = "$idx"
check "the new range is in its configuration" grep -q "192.0.2.160" "$T/run/dnsmasq/nat1.conf"
check "the network is ready again" wait_until 10 phase_is network/nat1 ready
pid2=$(dnsmasq_pid nat1)

# ---- restart: nothing is recreated --------------------------------------------------------
rules_before=$(table | grep -c .)
applies_before=$(grep -c "network/nat1: apply done" "$T/agent.log")
agent_stop
check "stopping the agent leaves the bridge" in_ns ip link show dvnat0
check "and dnsmasq" alive "$pid2"
agent_start_ns
check "after a restart the network is ready" wait_until 10 phase_is network/nat1 ready
sleep 0.5
check "after a restart the bridge is the same" test "$(ifindex dvnat0)" = "$idx"
check "after a restart dnsmasq is the same process" test "$(dnsmasq_pid nat1)" = "$pid2"
check "after a restart no network action ran" test "$(grep -c "network/nat1: apply done" "$T/agent.log")" = "$applies_before"
check "after a restart the rules are the same" test "$(table | grep -c .)" = "$rules_before"

# ---- dnsmasq dies: the agent restarts it ------------------------------------------------------
kill -9 "$pid2"
check "a dnsmasq that died is started again (resync)" wait_until 10 eval 'alive "$(dnsmasq_pid nat1)" && [ "$(dnsmasq_pid nat1)" != "$pid2" ]'

# ---- the other forward modes ------------------------------------------------------------------
net_xml routed dvrt0 route 198.51.100.1 24 > "$D/routed.xml"
net_xml iso dviso0 none 203.0.113.1 24 > "$D/iso.xml"
check "a routed network is ready" wait_until 15 phase_is network/routed ready
check "an isolated network is ready" wait_until 15 phase_is network/iso ready
check "the routed network has forward rules and no masquerade of its own" \
    eval 'table | grep -q dvrt0 && ! table | grep masquerade | grep -q 198.51.100'
check "the isolated network's bridge is fenced in the table" eval 'table | grep dviso0 | grep -Eq "reject|drop"'
cat > "$D/open1.xml" <<XML
<network>
  <name>open1</name>
  <forward mode='open'/>
  <bridge name='dvopen0'/>
  <ip address='100.64.10.1' prefix='24'/>
</network>
XML
check "an open network is ready" wait_until 15 phase_is network/open1 ready
check "an open network adds no rule of its own" eval '! table | grep -q dvopen0'

# ---- bad input ---------------------------------------------------------------------------------
in_ns ip link add taken0 type bridge
idx_taken=$(ifindex taken0)
net_xml taken taken0 nat 100.64.20.1 24 > "$D/taken.xml"
check "a bridge name that exists and is not ours is blocked" wait_until 10 phase_is network/taken blocked
check "the message says it is not ours" eval 'grep -q "not created by declvirt" "$T/state/status.xml"'
net_xml over1 dvov1 nat 100.64.30.1 24 > "$D/over1.xml"
net_xml over2 dvov2 nat 100.64.30.129 25 > "$D/over2.xml"
check "two overlapping networks are both blocked" \
    wait_until 10 eval 'phase_is network/over1 blocked && phase_is network/over2 blocked'
check "each names the other" eval 'grep -q "network/over2" "$T/state/status.xml" && grep -q "network/over1" "$T/state/status.xml"'
check "neither bridge was created" eval '! in_ns ip link show dvov1 2>/dev/null && ! in_ns ip link show dvov2 2>/dev/null'
cat > "$D/nodev.xml" <<XML
<network>
  <name>nodev</name>
  <forward mode='nat' dev='nosuchdev0'/>
  <bridge name='dvnodev0'/>
  <ip address='100.64.40.1' prefix='24'/>
</network>
XML
check "a forward dev that does not exist is blocked" wait_until 10 phase_is network/nodev blocked
check "the message names the device" eval 'grep -q "nosuchdev0" "$T/state/status.xml"'
# Refused by validation (file:line in status.xml, no object).
bad() { printf '%s\n' "$2" > "$D/$1.xml"; }
bad badmask "<network><name>badmask</name><bridge name='dvbm0'/><ip address='192.0.2.1' netmask='255.255.255.0'><dhcp><range start='198.51.100.10' end='198.51.100.20'/></dhcp></ip></network>"
bad longname "<network><name>longname</name><bridge name='this-name-is-too-long0'/><ip address='100.64.50.1' prefix='24'/></network>"
check "a DHCP range outside the subnet is refused with its line" \
    wait_until 10 eval 'dv validate "$D/badmask.xml" 2>&1 | grep -q "badmask.xml:1:"'
check "an interface name that is too long is refused" \
    eval 'dv validate "$D/longname.xml" 2>&1 | grep -qi "too long\|longer"'
check "both are reported in status.xml" wait_until 5 eval 'grep -q badmask.xml "$T/state/status.xml" && grep -q longname.xml "$T/state/status.xml"'
rm -f "$D/badmask.xml" "$D/longname.xml" "$D/over1.xml" "$D/over2.xml" "$D/nodev.xml"
rm "$D/taken.xml"
wait_pass; wait_pass
check "the bridge that was not ours is untouched" test "$(ifindex taken0)" = "$idx_taken"

# ---- removal: stop removes dnsmasq, rules and bridge; keep leaves them ---------------------------
pid3=$(dnsmasq_pid nat1)
rm "$D/nat1.xml"
check "removal: the bridge goes" wait_until 10 eval '! in_ns ip link show dvnat0 2>/dev/null'
check "removal: dnsmasq is gone" eval '! alive "$pid3"'
check "removal: no rule names the bridge" eval '! table | grep -q dvnat0'
check "removal: the network leaves status.xml" wait_until 5 eval '[ -z "$(phase_of network/nat1)" ]'
check "removal: its observed XML is removed" wait_until 5 test ! -e "$T/state/networks/nat1.xml"
net_xml kept dvkeep0 nat 100.64.60.1 24 100.64.60.10 100.64.60.20 "on-remove='keep'" > "$D/kept.xml"
check "a network with on-remove='keep' is ready" wait_until 15 phase_is network/kept ready
kpid=$(dnsmasq_pid kept)
rm "$D/kept.xml"
check "on-remove='keep': forgotten" wait_until 10 eval '[ -z "$(phase_of network/kept)" ]'
check "on-remove='keep': the bridge stays" in_ns ip link show dvkeep0
check "on-remove='keep': dnsmasq stays" alive "$kpid"
rm "$D/routed.xml" "$D/iso.xml" "$D/open1.xml"
check "every removed network's bridge is gone" wait_until 10 eval '! in_ns ip link show dvrt0 2>/dev/null && ! in_ns ip link show dviso0 2>/dev/null && ! in_ns ip link show dvopen0 2>/dev/null'
check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop

# ---- agent --once: a removed file's network goes after removal_delay, and --once exits 0 ---------
once() { in_ns timeout 60 "$DECLVIRT" --config "$T/agent.conf" agent --once 2>&1; }
net_xml once1 dvonce0 nat 100.64.70.1 24 100.64.70.10 100.64.70.20 > "$D/once1.xml"
res=$(once); rc=$?
check "agent --once brings a NAT network up and exits 0 (rc $rc)" \
    eval '[ $rc = 0 ] && phase_is network/once1 ready && in_ns ip link show dvonce0 >/dev/null'
opid=$(dnsmasq_pid once1)
check "agent --once: dnsmasq runs for it" alive "$opid"
check "agent --once: the nft table has rules for its bridge" eval 'table | grep -q dvonce0'
rm "$D/once1.xml"
res=$(once); rc=$?
check "agent --once with the file removed exits 0 (rc $rc)" eval '[ $rc = 0 ] || { tail -5 <<<"$res"; false; }'
check "agent --once waited out removal_delay" eval 'grep -q "(removal_delay) before a removal" <<<"$res"'
check "agent --once: the bridge is gone" eval '! in_ns ip link show dvonce0 2>/dev/null'
check "agent --once: dnsmasq is gone" eval '! alive "$opid"'
check "agent --once: no rule names the bridge" eval '! table | grep -q dvonce0'
check "agent --once: the network left status.xml" eval '[ -z "$(phase_of network/once1)" ]'
