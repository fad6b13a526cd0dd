#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Look-alike QEMUs (issue 17, attack 4): any user can give a process the command line of
# a domain's QEMU (-name guest=NAME and the agent's QMP socket). A process is a domain's
# QEMU only with the identity the agent recorded when it started it (RUN_DIR/qemu/NAME.ident:
# PID, start time, uid/gid, emulator binary); anything else blocks the domain with a
# message naming the PID and why, and is never adopted or signalled. Run as nobody, with
# the real agent; legitimate adoption after an agent restart keeps working.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
[ -x /usr/bin/python3 ] || skip_all "/usr/bin/python3 is not installed"
need_prog setpriv
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "qemu-system-x86_64 is not installed"
agent_setup_qemu
D=$T/desired

NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
as_nobody() { "${NOBODY[@]}" "$@"; }
PY=$(readlink -f /usr/bin/python3)
# lookalike NAME [RUN-AS...]: a python3 process with QEMU's argv[0] and the command line
# of domain NAME's QEMU; prints its PID (setpriv and bash exec it: the PID is its own;
# RUN-AS is a program, not a function, which bash would run in a subshell of its own).
lookalike() {
    local name=$1; shift
    "$@" bash -c 'exec -a qemu-system-x86_64 /usr/bin/python3 -c "import time; time.sleep(3600)" \
        -name "guest=$1,debug-threads=on" -qmp "unix:$2/run/qemu/$1.qmp,server=on,wait=off" \
        -pidfile "$2/run/qemu/$1.pid" -daemonize' lookalike "$name" "$T" >/dev/null 2>&1 &
    echo $!
}
bare_dom() {
    cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <metadata><dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' shutdown-timeout='1'/></metadata>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices/>
</domain>
XML
}

# ---- a nobody-owned look-alike started before the agent ---------------------------------------
fake=$(lookalike lk1 "${NOBODY[@]}")
on_exit kill -9 "$fake"
check "the look-alike runs as nobody" wait_until 5 eval '[ "$(stat -c %u /proc/'"$fake"')" = 65534 ] &&
    tr "\0" " " < /proc/'"$fake"'/cmdline | grep -q "guest=lk1"'
bare_dom lk1 > "$D/lk1.xml"
agent_start
check "the domain is blocked, not ready" wait_until 15 phase_is domain/lk1 blocked
check "the message names the PID and the uid it runs as" eval \
    'st_msg domain/lk1 | grep -qF "process $fake has the command line of domain lk1 but runs as uid 65534 gid 65534"'
check "and the binary it runs" eval 'st_msg domain/lk1 | grep -qF "exe $PY"'
check "it is not adopted: no pidfile, no record, no id in the observed XML" \
    eval '[ ! -e "$T/run/qemu/lk1.pid" ] && [ ! -e "$T/run/qemu/lk1.ident" ] &&
          ! grep -q "id=.$fake." "$T/state/domains/lk1.xml" 2>/dev/null'
check "it stays blocked and is never signalled (passes every 2 s)" \
    holds_for 5 eval 'alive "$fake" && phase_is domain/lk1 blocked'
check "no QEMU was started beside it" eval '[ "$(pgrep -f "guest=lk1.*$T" | tr "\n" " ")" = "$fake " ]'
check "the agent says why it does not start one" eval 'grep -qF "process $fake has the command line of domain lk1" "$T/agent.log"'

# ---- a root-owned look-alike: the right uid, the wrong binary -----------------------------------
rootfake=$(lookalike lk3 env)
on_exit kill -9 "$rootfake"
bare_dom lk3 > "$D/lk3.xml"
check "a root look-alike that is not the emulator is blocked too" wait_until 15 phase_is domain/lk3 blocked
check "its message names its binary" eval 'st_msg domain/lk3 | grep -qF "process $rootfake has the command line of domain lk3 but exe $PY"'
check "and it is left alone" holds_for 3 alive "$rootfake"

# ---- the look-alike goes: the domain gets its own QEMU --------------------------------------------
kill -9 "$fake"
check "once it is gone the domain runs" wait_until 30 phase_is domain/lk1 ready
q1=$(qemu_pid lk1)
# The uid allocated for the domain (qemu.uid_range), kept in its last-applied record.
lk1_uid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uid"])' "$T/state/applied/domain@lk1.json")
check "its QEMU is the emulator, run as the domain's own uid" eval '[ "$(stat -c %u /proc/$q1)" = "$lk1_uid" ] &&
    [ "$lk1_uid" != 0 ] &&
    [ "$(readlink /proc/$q1/exe)" = "$(readlink -f /usr/bin/qemu-system-x86_64)" ]'
check "its record is root's, 0600, and names it" eval '[ "$(stat -c "%u %a" "$T/run/qemu/lk1.ident")" = "0 600" ] &&
    grep -q "^pid=$q1 " "$T/run/qemu/lk1.ident"'
check "nobody cannot write the record or the pidfile, nor list their directory" \
    eval '! as_nobody sh -c "echo x > $T/run/qemu/lk1.ident" 2>/dev/null &&
          ! as_nobody sh -c "echo 1 > $T/run/qemu/lk1.pid" 2>/dev/null &&
          ! as_nobody ls "$T/run/qemu" >/dev/null 2>&1'
agent_stop
agent_start
check "after an agent restart the same QEMU is adopted" \
    wait_until 15 eval 'phase_is domain/lk1 ready && [ "$(qemu_pid lk1)" = "$q1" ]'

# ---- its PID reused by a look-alike: the recorded start time tells them apart --------------------
# The agent stops; QEMU dies; a nobody process gets the pidfile's PID (written there by root
# here: the kernel hands out PIDs, nobody cannot choose one).
agent_stop
kill -9 "$q1"
wait_until 5 eval '! alive "$q1"' >/dev/null
fake2=$(lookalike lk1 "${NOBODY[@]}")
on_exit kill -9 "$fake2"
wait_until 5 eval 'tr "\0" " " < /proc/'"$fake2"'/cmdline | grep -q "guest=lk1"' >/dev/null
echo "$fake2" > "$T/run/qemu/lk1.pid"
agent_start
check "a look-alike under the pidfile's PID is not adopted" wait_until 15 phase_is domain/lk1 blocked
check "the message names it and the recorded PID it is not" eval \
    'st_msg domain/lk1 | grep -qF "process $fake2 has the command line of domain lk1 but runs as uid 65534" &&
     st_msg domain/lk1 | grep -qF "is not the recorded PID $q1"'
check "it is never signalled" holds_for 3 alive "$fake2"
rm "$D/lk1.xml" "$D/lk3.xml"
check "removing the domains leaves the look-alikes alone" \
    wait_until 15 eval '[ -z "$(phase_of domain/lk1)" ] && [ -z "$(phase_of domain/lk3)" ]'
check "both still run" eval 'alive "$fake2" && alive "$rootfake"'
check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop
