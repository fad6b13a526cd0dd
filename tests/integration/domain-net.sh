#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A QEMU domain with an interface on a NAT network (issue 6), inside a network namespace
# of the test's own: the domain waits for the network, its tap is enslaved to the bridge,
# its generated MAC is stable across a restart, and the network outlives its removal
# until the domain that uses it stops. No guest OS is needed. Addresses are TEST-NET.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog ip
need_prog nft
need_prog qemu-img
[ -x /usr/sbin/dnsmasq ] || skip_all "dnsmasq is not installed"
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "qemu-system-x86_64 is not installed"
[ -c /dev/net/tun ] || skip_all "/dev/net/tun is missing"
# Anything left running in the namespace (the agent, QEMU, dnsmasq) is killed by PID
# before it goes; QEMU also by its pidfile (agent_setup_qemu), in case it left it.
netns_setup dvt-dnet

agent_setup_qemu
D=$T/desired
P1=$T/pools/p1
MiB=1048576


# dom_xml [POLICY-ATTRS]
dom_xml() {
    cat <<XML
<domain type='qemu'>
  <name>vm1</name>
  <metadata>
    <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' ${1:-} shutdown-timeout='1'/>
  </metadata>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='raw'/>
      <source pool='p1' volume='vm1.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='nat1'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
XML
}
pid_of() { cat "$T/run/qemu/vm1.pid" 2>/dev/null; }
# The domain's taps: devices named dvt* in the namespace (the test's veths are not).
taps() { in_ns ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep '^dvt' || true; }
obs_mac() { grep -o "<mac address='[0-9a-f:]*'" "$T/state/domains/vm1.xml" 2>/dev/null | grep -o '[0-9a-f]\{2\}\(:[0-9a-f]\{2\}\)\{5\}'; }
applied_mac() {
    /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["macs"][0])' \
        "$T/state/applied/domain@vm1.json" 2>/dev/null
}
cmdline() { tr '\0' '\n' < "/proc/$1/cmdline"; }

# ---- the domain waits for its network -----------------------------------------------------
pool_xml p1 "$P1" > "$D/p1.xml"
vol_xml p1 vm1.img $((8 * MiB)) raw > "$D/vm1.img.xml"
agent_start_ns
check "the volume is ready" wait_until 15 phase_is volume/p1/vm1.img ready
dom_xml > "$D/vm1.xml"
check "the domain waits for its network" \
    wait_until 10 eval 'phase_is domain/vm1 waiting && st_msg domain/vm1 | grep -q "waiting for network/nat1"'
check "no QEMU is started meanwhile" eval '[ -z "$(pid_of)" ] && [ -z "$(taps)" ]'
nat_net_xml nat1 dvdn0 > "$D/nat1.xml"
check "the network becomes ready" wait_until 15 phase_is network/nat1 ready
check "then the domain is ready" wait_until 30 phase_is domain/vm1 ready
pid1=$(pid_of)
check "QEMU runs" alive "$pid1"

# ---- its tap -------------------------------------------------------------------------------
tap=$(taps | head -1)
check "one dvt* tap exists in the namespace" test "$(taps | wc -l)" = 1
check "the tap name is dvt + 8 hex digits" eval '[[ "$tap" =~ ^dvt[0-9a-f]{8}$ ]]'
check "the tap is enslaved to dvdn0" eval 'in_ns ip -o link show "$tap" | grep -q " master dvdn0 "'
check "the tap is up" eval 'in_ns ip -o link show "$tap" | grep -q "[<,]UP[,>]"'
check "the bridge lists the tap" eval 'in_ns ip -o link show master dvdn0 | grep -q "$tap"'
check "the host's own namespace has no such tap" eval '! ip link show "$tap" 2>/dev/null'

# ---- the MAC: command line, observed XML, last-applied record -------------------------------
check "the observed XML has a MAC" wait_until 5 eval '[ -n "$(obs_mac)" ]'
mac1=$(obs_mac)
check "the observed XML names the network" grep -q "<source network='nat1'" "$T/state/domains/vm1.xml"
check "the observed XML names the tap as the interface's target" grep -q "<target dev='$tap'/>" "$T/state/domains/vm1.xml"
check "the MAC is a 52:54:00 one" eval '[[ "$mac1" == 52:54:00:* ]]'
# QEMU runs as its own user, without CAP_NET_ADMIN: the agent attaches to the tap and
# passes the descriptor (-netdev tap,fd=N), which the kernel shows bound to that tap.
check "the QEMU command line has the tap as a descriptor" eval '
    n=$(cmdline "$pid1" | sed -n "s/^tap,.*fd=\([0-9]*\).*/\1/p") &&
    [ -n "$n" ] && grep -qx "iff:[[:space:]]*$tap" "/proc/$pid1/fdinfo/$n"'
check "the QEMU command line has the MAC" eval 'cmdline "$pid1" | grep -q "\"mac\": *\"$mac1\"\|mac=$mac1"'
check "the last-applied record holds the same MAC" test "$(applied_mac)" = "$mac1"

# ---- a stop and start keeps the MAC ---------------------------------------------------------
dom_xml "state='stopped'" > "$D/vm1.xml"
check "state='stopped' stops QEMU" wait_until 15 eval '! alive "$pid1"'
check "the domain is stopped" wait_until 10 phase_is domain/vm1 stopped
check "stopping removes the tap" wait_until 5 eval '! in_ns ip link show "$tap" 2>/dev/null'
check "the MAC stays in the last-applied record while stopped" test "$(applied_mac)" = "$mac1"
dom_xml > "$D/vm1.xml"
check "state='running' starts it again" wait_until 30 phase_is domain/vm1 ready
pid2=$(pid_of)
check "a new QEMU runs" eval 'alive "$pid2" && [ "$pid2" != "$pid1" ]'
check "the tap is back under the same name" eval '[ "$(taps)" = "$tap" ]'
check "enslaved to dvdn0 again" eval 'in_ns ip -o link show "$tap" | grep -q " master dvdn0 "'
check "the observed MAC is the same after the restart" wait_until 5 eval '[ "$(obs_mac)" = "$mac1" ]'
check "the new QEMU has the same MAC" eval 'cmdline "$pid2" | grep -q "\"mac\": *\"$mac1\"\|mac=$mac1"'
check "the last-applied MAC is the same" test "$(applied_mac)" = "$mac1"

# ---- the network is held while the domain runs -----------------------------------------------
rm "$D/nat1.xml"
check "removing the network file leaves it held by the running domain" \
    wait_until 10 eval 'st_msg network/nat1 | grep -qF "not stopped: in use by running domain/vm1"'
check "its bridge stays" in_ns ip link show dvdn0
check "the domain keeps running" eval 'alive "$pid2" && phase_is domain/vm1 ready'
check "the tap stays attached" eval 'in_ns ip -o link show "$tap" | grep -q " master dvdn0 "'
check "it still holds after another pass" eval 'wait_pass; in_ns ip link show dvdn0 &&
    st_msg network/nat1 | grep -qF "in use by running domain/vm1"'

# ---- stopping the domain lets the removal finish ---------------------------------------------
dom_xml "state='stopped'" > "$D/vm1.xml"
check "state='stopped' stops QEMU again" wait_until 15 eval '! alive "$pid2"'
check "its tap is removed" wait_until 5 eval '! in_ns ip link show "$tap" 2>/dev/null && [ -z "$(taps)" ]'
check "then the network removal completes: the bridge goes" \
    wait_until 15 eval '! in_ns ip link show dvdn0 2>/dev/null'
check "the network leaves status.xml" wait_until 10 eval '[ -z "$(phase_of network/nat1)" ]'
check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop
