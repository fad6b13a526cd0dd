#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# UEFI guests under the real agent (issue 18): <os firmware='efi'> as virt-install writes it
# is chosen from QEMU's firmware descriptors (Debian's ovmf), OVMF runs as the domain's own
# uid in its jail and prints its boot manager on the serial console; the domain's NVRAM is
# made from the varstore template at the first start (root's, 0600), changed by the
# firmware, kept across a restart and when the domain's file goes. On q35 with secure boot
# and enrolled keys (virt-install's Windows 11 default) the firmware refuses its own
# unsigned shell: secure boot is on, with SMM. A firmware feature no descriptor offers is
# refused before any QEMU starts, naming what was asked.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog python3
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "qemu-system-x86_64 is not installed"
[ -d /usr/share/qemu/firmware ] || skip_all "no QEMU firmware descriptors (install ovmf)"
agent_setup_qemu
D=$T/desired

# efi_xml NAME MACHINE [FIRMWARE-CHILDREN]
efi_xml() {
    cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <metadata>
    <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' shutdown-timeout='1'/>
  </metadata>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='$2'>hvm</type>
    ${3:-}
  </os>
  <features>
    <acpi/>
  </features>
  <devices>
    <serial type='pty'>
      <target port='0'/>
    </serial>
  </devices>
</domain>
XML
}
console() { tr -d '\r' < "$T/state/domains/$1.console.log" 2>/dev/null; }
NV=$T/state/domains/e1_VARS.fd
# OVMF under TCG takes some seconds to reach its boot manager, more on a loaded machine.
FW=120

efi_xml e1 pc > "$D/e1.xml"
agent_start
check "a UEFI guest on pc is running" wait_until 60 phase_is domain/e1 ready
pid1=$(qemu_pid e1)
uid1=$(applied_uid e1)
check "its QEMU runs as the domain's own uid" \
    eval '[ -n "$uid1" ] && [ "$(awk "/^Uid:/ { print \$2 }" /proc/$pid1/status)" = "$uid1" ]'
check "in a mount namespace of its own" \
    test "$(readlink "/proc/$pid1/ns/mnt")" != "$(readlink /proc/self/ns/mnt)"
check "the firmware is the descriptors' non-secure OVMF, as a read-only pflash descriptor" \
    eval 'tr "\0" "\n" < /proc/$pid1/cmdline | grep -q "opaque=/usr/share/OVMF/OVMF_CODE_4M.fd$"'
check "its NVRAM was made from the template: root's, 0600" \
    eval '[ "$(stat -c "%u %a %s" "$NV")" = "0 600 $(stat -c %s /usr/share/OVMF/OVMF_VARS_4M.fd)" ]'
check "OVMF runs: its boot manager starts the UEFI shell on the serial console" \
    wait_until $FW eval 'console e1 | grep -q "BdsDxe: starting Boot.*EFI Internal Shell"'
check "and the firmware wrote its variables into the NVRAM" \
    wait_until 30 eval '! cmp -s "$NV" /usr/share/OVMF/OVMF_VARS_4M.fd'
sum1=$(md5sum < "$NV")

# A restart keeps the NVRAM (the domain's data): not made again from the template.
efi_xml e1 pc | sed "s|shutdown-timeout='1'|shutdown-timeout='1' state='stopped'|" > "$D/e1.xml"
check "state='stopped' stops it" wait_until 30 phase_is domain/e1 stopped
check "the NVRAM stays, as the firmware left it" test "$(md5sum < "$NV")" = "$sum1"
efi_xml e1 pc > "$D/e1.xml"
check "started again" wait_until 60 phase_is domain/e1 ready
check "the same NVRAM file is used (made from the template once only)" \
    test "$(grep -c "NVRAM $NV made from" "$T/agent.log")" = 1

# Secure boot as virt-install writes it for Windows 11: q35, keys enrolled.
efi_xml e2 q35 "<firmware><feature enabled='yes' name='enrolled-keys'/><feature enabled='yes' name='secure-boot'/></firmware>" > "$D/e2.xml"
check "a secure-boot guest on q35 is running" wait_until 60 phase_is domain/e2 ready
pid2=$(qemu_pid e2)
check "with the secure-boot firmware and Microsoft's keys" \
    eval 'tr "\0" "\n" < /proc/$pid2/cmdline | grep -q "opaque=/usr/share/OVMF/OVMF_CODE_4M.ms.fd$"'
check "SMM on and the pflash secure" \
    eval 'tr "\0" "\n" < /proc/$pid2/cmdline | grep -q "smm=on" &&
          tr "\0" "\n" < /proc/$pid2/cmdline | grep -qx "driver=cfi.pflash01,property=secure,value=on"'
check "secure boot is enforced: the firmware refuses its own unsigned shell" \
    wait_until $FW eval 'console e2 | grep -q "failed to start Boot.*EFI Internal Shell.*Security Violation"'
check "its NVRAM was made from the enrolled keys' varstore" \
    grep -q "NVRAM $T/state/domains/e2_VARS.fd made from /usr/share/OVMF/OVMF_VARS_4M.ms.fd" "$T/agent.log"

# What no descriptor offers: refused before any QEMU starts, naming what was asked.
efi_xml e3 pc "<firmware><feature enabled='yes' name='secure-boot'/></firmware>" > "$D/e3.xml"
check "secure boot on pc (no firmware offers it) is refused" \
    wait_until 20 eval 'st_msg domain/e3 | grep -q "no firmware descriptor.*offers UEFI for x86_64 machine pc, with secure boot"'
check "and no QEMU runs for it" eval '[ -z "$(qemu_pid e3)" ]'
check "nor an NVRAM made" test ! -e "$T/state/domains/e3_VARS.fd"

# Removing the files stops the guests; the NVRAM files stay (the agent never deletes them).
rm -f "$D/e1.xml" "$D/e2.xml" "$D/e3.xml"
check "the guests go with their files" wait_until 30 eval '! st_has domain/e1 && ! st_has domain/e2'
check "their NVRAM files stay" eval '[ -s "$NV" ] && [ -s "$T/state/domains/e2_VARS.fd" ]'
check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop
