#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Xen domains through the real agent (issue 8) without a hypervisor: a private xenstore
# (build/tools/xenstored, reached through XENSTORED_PATH by the agent, libxenstore and the
# xenstore-* tools) and the xl stand-in build/tools/fake-xl named as xen.xl in agent.conf.
# A PV and an HVM domain reach ready through `xl create RUN_DIR/xen/NAME.cfg` with the cfg
# `declvirt native` prints, observed XML carries id='DOMID' (libvirt's schema checked), a
# domain that vanishes (a crash) is seen through the xenstore watch well before the 1 h
# resync and restarted, stops go through `xl shutdown -w` and, past shutdown-timeout,
# `xl destroy`; a removed file stops its domain. Bad input: a PV domain without kernel or
# bootloader, an unsupported device (both invalid files: the driver's check runs when the
# file is loaded and in `declvirt validate`), xl failing; with no xenstore at all, a Xen domain is
# blocked while a dir pool next to it becomes ready. See docs/xen.md.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog python3
need_prog xenstore-write
need_prog xenstore-read
need_prog xenstore-list
XSD=$REPO/${BUILD:-build}/tools/xenstored
XL=$REPO/${BUILD:-build}/tools/fake-xl
[ -x "$XSD" ] && [ -x "$XL" ] || skip_all "build/tools/xenstored and fake-xl are not built (make build-all)"
RESYNC=1h agent_setup
cat >> "$T/agent.conf" <<CONF
xen:
  enabled: auto
  xl: $XL
CONF
D=$T/desired

# The private xenstore: everything below, the agent included, talks to it.
export XENSTORED_PATH=$T/xenstored.sock
"$XSD" "$XENSTORED_PATH" "$T/xenstored.pid" &
XSD_PID=$!
on_exit 'kill -TERM $XSD_PID; wait $XSD_PID'
wait_until 10 test -s "$T/xenstored.pid" || { not_ok "xenstored starts"; exit 1; }
xenstore-write /tool/fake-xl/log "$T/xl.log"
# An `xl shutdown` told to hang is killed by the agent's timeout; nothing else outlives us.

# dom_xml NAME KIND [POLICY-ATTRS] [EXTRA-DEVICES]: KIND pv, hvm or pv-bare (no kernel).
n=0
dom_xml() {
    n=$((n + 1))
    local os
    case $2 in
    pv) os="<type arch='x86_64' machine='xenpv'>xen</type><kernel>/boot/vmlinuz-test</kernel><cmdline>console=hvc0</cmdline>" ;;
    hvm) os="<type arch='x86_64' machine='xenfv'>hvm</type><boot dev='hd'/>" ;;
    pv-bare) os="<type arch='x86_64' machine='xenpv'>xen</type>" ;;
    esac
    cat <<XML
<domain type='xen'>
  <name>$1</name>
  <uuid>$(printf '6a1b2c3d-0000-4000-8000-%012d' "$n")</uuid>
  <metadata>
    <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' restart='always' shutdown-timeout='2' ${3:-}/>
  </metadata>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>$os</os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$T/$1.img'/>
      <target dev='xvda' bus='xen'/>
    </disk>
    <interface type='bridge'>
      <mac address='00:16:3e:7e:00:$(printf %02x "$n")'/>
      <source bridge='xenbr0'/>
    </interface>
    ${4:-}
  </devices>
</domain>
XML
}
domid_of() { cut -d' ' -f1 "$T/run/xen/$1.domid" 2>/dev/null; }
in_xenstore() { xenstore-list /local/domain | while read -r d; do
    [ "$(xenstore-read "/local/domain/$d/name" 2>/dev/null)" = "$1" ] && echo "$d"; done | grep -q .; }
xl_called() { grep -qxF -- "$1" "$T/xl.log" 2>/dev/null; }
xl_count() { grep -cxF -- "$1" "$T/xl.log" 2>/dev/null || true; }
valid_xml() { virt-xml-validate "$1" domain 2>&1 || { cat "$1"; return 1; }; }
# The cfg without comment lines: what the agent wrote and what `declvirt native` prints.
cfg_body() { grep -v '^#' "$1"; }

dom_xml pv1 pv > "$D/pv1.xml"
dom_xml hvm1 hvm > "$D/hvm1.xml"
agent_start
check "a PV domain becomes ready" wait_until 20 phase_is domain/pv1 ready
check "an HVM domain becomes ready" wait_until 20 phase_is domain/hvm1 ready
check "xl create was run with the domain's cfg" xl_called "create $T/run/xen/pv1.cfg"
check "and for the HVM one" xl_called "create $T/run/xen/hvm1.cfg"
check "the cfg is private (0600)" test "$(stat -c %a "$T/run/xen/pv1.cfg")" = 600
check "the domains are in xenstore" eval 'in_xenstore pv1 && in_xenstore hvm1'
for d in pv1 hvm1; do
    check "$d: the cfg is what declvirt native prints" \
        eval 'diff <(cfg_body "$T/run/xen/'$d'.cfg") <(dv native "$D/'$d'.xml" | grep -v "^#")'
done
check "declvirt native shows the xl command line" \
    eval 'dv native "$D/pv1.xml" | grep -qF "$XL create $T/run/xen/pv1.cfg"'
id1=$(domid_of pv1)
check "the domid is recorded" test -n "$id1"
check "observed XML has id='DOMID'" \
    wait_until 5 grep -q "^<domain type='xen' id='$id1'>" "$T/state/domains/pv1.xml"
check "observed XML names the backend vif" grep -q "<target dev='vif$id1.0'/>" "$T/state/domains/pv1.xml"
if command -v virt-xml-validate >/dev/null 2>&1; then
    check "observed PV domain XML is valid for libvirt's domain schema" valid_xml "$T/state/domains/pv1.xml"
    check "observed HVM domain XML is valid for libvirt's domain schema" valid_xml "$T/state/domains/hvm1.xml"
else
    skip "observed domain XML is valid for libvirt's domain schema" "virt-xml-validate is not installed (libvirt-clients)"
fi

# ---- a crash: seen through the watch (resync is 1 h) and restarted -----------------------------
"$XL" crash pv1
check "a vanished domain is started again at once (restart='always', resync 1 h)" \
    wait_until 10 eval 'id=$(domid_of pv1); [ -n "$id" ] && [ "$id" != "$id1" ] && in_xenstore pv1'
check "xl create ran a second time" test "$(xl_count "create $T/run/xen/pv1.cfg")" -ge 2
check "the agent logged the exit" grep -q "exited\|is gone" "$T/agent.log"
id2=$(domid_of pv1)
check "observed XML shows the new domid" \
    wait_until 5 grep -q "^<domain type='xen' id='$id2'>" "$T/state/domains/pv1.xml"

# ---- agent restart: adopted, not created again -------------------------------------------------
creates=$(xl_count "create $T/run/xen/pv1.cfg")
agent_stop
agent_start
check "after an agent restart the domain is ready" wait_until 15 phase_is domain/pv1 ready
check "with the same domid, not created again" \
    eval '[ "$(domid_of pv1)" = "$id2" ] && [ "$(xl_count "create $T/run/xen/pv1.cfg")" = "$creates" ]'

# ---- stop: xl shutdown -w, and past shutdown-timeout xl destroy ---------------------------------
n=0; dom_xml pv1 pv "state='stopped'" > "$D/pv1.xml" # same UUID and MAC as before
check "state='stopped' runs xl shutdown -w" wait_until 15 xl_called "shutdown -w pv1"
check "the domain is stopped" wait_until 15 phase_is domain/pv1 stopped
check "and gone from xenstore, its files removed" \
    eval '! in_xenstore pv1 && [ ! -e "$T/run/xen/pv1.cfg" ] && [ ! -e "$T/run/xen/pv1.domid" ]'
check "xl destroy was not needed" eval '! xl_called "destroy pv1"'
check "a stopped domain is not restarted" holds_for 1 eval '! in_xenstore pv1'

xenstore-write /tool/fake-xl/ignore-shutdown 1
n=1; dom_xml hvm1 hvm "state='stopped'" > "$D/hvm1.xml"
check "a guest that ignores the shutdown is destroyed after shutdown-timeout" \
    wait_until 20 eval 'grep -A1 -xF "shutdown -w hvm1" "$T/xl.log" | grep -qxF "destroy hvm1"'
check "it is stopped" wait_until 15 phase_is domain/hvm1 stopped
check "and gone from xenstore" eval '! in_xenstore hvm1'
xenstore-rm /tool/fake-xl/ignore-shutdown

# ---- removing the file stops the domain -------------------------------------------------------
n=0; dom_xml pv1 pv > "$D/pv1.xml"
check "back to running" wait_until 20 phase_is domain/pv1 ready
before=$(xl_count "shutdown -w pv1")
rm "$D/pv1.xml"
check "removing its file shuts it down" wait_until 15 eval '[ "$(xl_count "shutdown -w pv1")" -gt "$before" ]'
check "and it is gone from xenstore and from status" \
    wait_until 15 eval '! in_xenstore pv1 && [ -z "$(phase_of domain/pv1)" ]'
rm -f "$D/hvm1.xml"

# ---- bad input ---------------------------------------------------------------------------------
n=10; dom_xml pvbad pv-bare > "$D/pvbad.xml"
check "a PV domain with neither kernel nor bootloader is an invalid file" \
    wait_until 10 eval 'st_file "$D/pvbad.xml" | grep -qF "needs a <kernel> in <os> or a <bootloader>"'
check "xl is never run for it" eval '! grep -q pvbad "$T/xl.log"'
rm "$D/pvbad.xml"

n=11; dom_xml fsdom pv "" "<filesystem type='mount'><source dir='/srv'/><target dir='share'/></filesystem>" > "$D/fsdom.xml"
check "an unsupported device makes the file invalid, naming the element" \
    wait_until 10 eval 'st_file "$D/fsdom.xml" | grep -qF "<filesystem> is not supported by the Xen driver"'
check "declvirt validate says the same" \
    eval '! dv validate "$D/fsdom.xml" >/dev/null 2>&1 && dv validate "$D/fsdom.xml" 2>&1 | grep -qF "<filesystem> is not supported by the Xen driver"'
check "xl is never run for it" eval '! grep -q fsdom "$T/xl.log"'
rm "$D/fsdom.xml"

xenstore-write /tool/fake-xl/fail-create "libxl: error: libxl_create.c:1234: Domain 42:cannot make domain: -3"
n=12; dom_xml xlfail pv > "$D/xlfail.xml"
check "xl failing fails the domain" wait_until 15 phase_is domain/xlfail failed
check "xl's stderr reaches declvirt status" \
    eval 'dv status | grep -qF "cannot make domain: -3"'
check "its cfg is not left behind" test ! -e "$T/run/xen/xlfail.cfg"
xenstore-rm /tool/fake-xl/fail-create
rm "$D/xlfail.xml"
check "the failed domain leaves status with its file" wait_until 10 eval '[ -z "$(phase_of domain/xlfail)" ]'

# ---- no xenstore: Xen domains blocked, nothing else affected ------------------------------------
agent_stop
export XENSTORED_PATH=$T/no-such-xenstored.sock
agent_start
n=13; dom_xml nox pv > "$D/nox.xml"
pool_xml p1 "$T/pools/p1" > "$D/p1.xml"
check "without xenstore a Xen domain is blocked" wait_until 10 phase_is domain/nox blocked
check "with the reason" eval 'st_msg domain/nox | grep -qF "Xen is not available on this host"'
check "while a dir pool in the same directory becomes ready" wait_until 10 phase_is pool/p1 ready
check "xl is never run for it" eval '! grep -q nox "$T/xl.log"'
