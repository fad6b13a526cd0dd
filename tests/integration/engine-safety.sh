#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The engine's safety rules through the real agent (docs/design.md, declvirt(8)): invalid files
# keep the last-known-good, duplicates apply neither file, a volume waits for a late
# pool, untrusted files are refused, one agent per state_dir, `declvirt wait` exit codes
# and freshness, and `declvirt plan` acting on nothing.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog qemu-img
need_prog /usr/bin/python3
agent_setup

D=$T/desired
P1=$T/pools/p1
MiB=1048576
vol_id() { stat -c '%i %s %Y' "$1" 2>/dev/null; }

pool_xml p1 "$P1" > "$D/p1.xml"
vol_xml p1 v $MiB raw > "$D/v.xml"
agent_start
check "the pool and the volume are ready" wait_until 10 phase_is volume/p1/v ready
check "wait returns 0 after convergence" dv wait --timeout 10
check "wait on a file returns 0 after convergence" dv wait --timeout 10 "$D/v.xml"
check "wait on KIND/NAME returns 0 after convergence" dv wait --timeout 10 volume/p1/v pool/p1
v_before=$(vol_id "$P1/v")

# ---- a file that becomes invalid keeps the last-known-good ---------------------------
# Line 4 holds the capacity: the error must name it.
sed -i "s/>$MiB</>lots</" "$D/v.xml"
if wait_until 5 eval 'st_cond volume/p1/v FileInvalid | grep -q "^true|"'; then
    ok "an invalid file shows a FileInvalid condition"
else
    not_ok "an invalid file shows a FileInvalid condition" "$(cat "$T/state/status.xml")"
fi
check "the condition carries file:line and the reason" \
    eval 'st_cond volume/p1/v FileInvalid | grep -qF "$D/v.xml:4: <capacity>: '"'lots'"' is not a number"'
check "the object stays ready on its last valid definition" phase_is volume/p1/v ready
check "its message says it runs on the last valid definition" \
    eval 'st_msg volume/p1/v | grep -q "last valid definition"'
wait_pass
check "the volume is untouched (inode, size, mtime)" test "$(vol_id "$P1/v")" = "$v_before"
check "the last-applied record is kept" test -s "$T/state/applied/volume@p1@v.json"
check "wait on the invalid file returns 1" eval 'dv wait --timeout 5 "$D/v.xml" 2>/dev/null; test $? = 1'
check "validate refuses it with file:line" eval 'dv validate "$D/v.xml" 2>&1 | grep -qF "$D/v.xml:4:"'
# Malformed XML: the same, with the parser's line.
printf "<volume>\n  <name>v</name>\n  <capacity unit='bytes'>1048576</capacity\n" > "$D/v.xml"
check "malformed XML: FileInvalid with a line" \
    wait_until 5 eval 'st_cond volume/p1/v FileInvalid | grep -qE "^true\|$D/v.xml:[0-9]+: malformed XML"'
check "malformed XML: the object stays ready" phase_is volume/p1/v ready
# A file turned invalid while the agent was down: the object must still be held.
agent_stop
agent_start
wait_pass
check "after a restart the object of an invalid file is still there" phase_is volume/p1/v ready
check "after a restart the FileInvalid condition is shown" \
    eval 'st_cond volume/p1/v FileInvalid | grep -q "^true|"'
check "after a restart the volume is untouched" test "$(vol_id "$P1/v")" = "$v_before"
vol_xml p1 v $MiB raw > "$D/v.xml"
check "a valid file again clears the condition" wait_until 5 eval '[ -z "$(st_cond volume/p1/v FileInvalid)" ]'

# ---- duplicates --------------------------------------------------------------------------
vol_xml p1 v $((2 * MiB)) raw > "$D/v-copy.xml"
if wait_until 5 eval 'st_cond volume/p1/v Duplicate | grep -q "^true|"'; then
    ok "two files defining one volume show a Duplicate condition"
else
    not_ok "two files defining one volume show a Duplicate condition" "$(cat "$T/state/status.xml")"
fi
check "both files are named" eval 'c=$(st_cond volume/p1/v Duplicate); [[ $c == *"$D/v.xml"* && $c == *"$D/v-copy.xml"* ]]'
wait_pass
check "neither is applied: the volume keeps its size" test "$(stat -c %s "$P1/v")" = $MiB
check "the last-applied record is the old one" eval 'grep -q "$D/v.xml" "$T/state/applied/volume@p1@v.json"'
check "wait on the applied file returns 1 on a duplicate" eval 'dv wait --timeout 5 "$D/v.xml" 2>/dev/null; test $? = 1'
check "wait on the other copy returns 1 on a duplicate" \
    eval 'dv wait --timeout 2 "$D/v-copy.xml" 2>/dev/null; test $? = 1'
rm "$D/v-copy.xml"
check "removing one copy clears the Duplicate condition" wait_until 5 eval '[ -z "$(st_cond volume/p1/v Duplicate)" ]'
wait_pass
check "no resize happened at any point" eval '! grep -q "volume/p1/v: resize" "$T/agent.log"'
check "the volume is untouched by the duplicate episode" test "$(vol_id "$P1/v")" = "$v_before"
check "the volume was never removed" eval '! grep -qE "volume/p1/v: (removing|delete|no longer managed)" "$T/agent.log"'
# A new object defined twice from the start: nothing is created, and it is reported.
vol_xml p1 twin $MiB raw > "$D/twin-a.xml"
vol_xml p1 twin $MiB raw > "$D/twin-b.xml"
pool_xml tp "$T/pools/tp" > "$D/tp-a.xml"
pool_xml tp "$T/pools/tp" > "$D/tp-b.xml"
wait_pass
check "nothing is created for a volume defined twice" test ! -e "$P1/twin"
check "nothing is created for a pool defined twice" test ! -e "$T/pools/tp"
check "a new volume defined twice is blocked" \
    wait_until 2 phase_is volume/p1/twin blocked
check "status.xml names both files of the volume" \
    eval 'grep -q twin-a.xml "$T/state/status.xml" && grep -q twin-b.xml "$T/state/status.xml"'
check "a new pool defined twice is blocked, not ready" \
    phase_is pool/tp blocked
check "status.xml names both files of the pool" \
    eval 'c=$(st_cond pool/tp Duplicate); [[ $c == *tp-a.xml* && $c == *tp-b.xml* ]]'
check "wait on a file of a never-applied duplicate returns 1" \
    eval 'dv wait --timeout 1 "$D/twin-a.xml" "$D/tp-a.xml" 2>/dev/null; test $? = 1'
rm "$D/twin-b.xml" "$D/tp-b.xml"
check "with one file left each is created" \
    wait_until 5 eval 'phase_is volume/p1/twin ready && phase_is pool/tp ready'

# ---- a volume whose pool arrives later ---------------------------------------------------
vol_xml late lv $MiB raw > "$D/lv.xml"
check "a volume without its pool is waiting" wait_until 5 phase_is volume/late/lv waiting
check "its message names the pool" eval 'st_msg volume/late/lv | grep -q "pool/late"'
pool_xml late "$T/pools/late" > "$D/late.xml"
check "once the pool file arrives the volume becomes ready" wait_until 10 phase_is volume/late/lv ready
check "and exists" test -f "$T/pools/late/lv"

# ---- untrusted files -----------------------------------------------------------------------
vol_xml p1 open $MiB raw > "$D/open.xml"
chmod 0666 "$D/open.xml"
check "a file writable by others is listed as refused" \
    wait_until 5 eval 'st_file "$D/open.xml" | grep -q "writable by others"'
wait_pass
check "its volume is not created" test ! -e "$P1/open"
check "it is not an object" eval '! st_has volume/p1/open'
check "validate refuses it" eval '! dv validate "$D/open.xml" 2>/dev/null'
check "validate says why" eval 'dv validate "$D/open.xml" 2>&1 | grep -q "writable by others"'
chmod 0644 "$D/open.xml"
check "once fixed it is applied" wait_until 5 phase_is volume/p1/open ready
# An applied file that becomes group-writable: refused, the object is held as it was.
chmod 0664 "$D/v.xml"
check "an applied file made group-writable is refused" \
    wait_until 5 eval 'st_cond volume/p1/v FileInvalid | grep -q "writable by its group"'
check "its object stays" phase_is volume/p1/v ready
chmod 0644 "$D/v.xml"
check "fixing the mode clears the refusal" wait_until 5 eval '[ -z "$(st_cond volume/p1/v FileInvalid)" ]'
# A directory writable by others: its files are refused, its objects kept as they are.
mkdir -m 0755 "$D/sub"
vol_xml p1 insub $MiB raw > "$D/sub/insub.xml"
check "a volume in a subdirectory is applied" wait_until 5 phase_is volume/p1/insub ready
chmod 0777 "$D/sub"
check "a subdirectory writable by others is reported" \
    wait_until 5 eval 'grep -q "$D/sub is writable by others" "$T/state/status.xml"'
vol_xml p1 insub2 $MiB raw > "$D/sub/insub2.xml"
wait_pass
check "a new file in it is not applied" test ! -e "$P1/insub2"
sleep 0.5 # longer than removal_delay
check "the objects of its files are not removed" eval 'phase_is volume/p1/insub ready && test -f "$P1/insub"'
chmod 0755 "$D/sub"
check "once fixed its new file is applied" wait_until 5 phase_is volume/p1/insub2 ready

# ---- one agent per state_dir ---------------------------------------------------------------
second=$(timeout 10 "$DECLVIRT" --config "$T/agent.conf" agent 2>&1); rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then ok "a second agent on the same state_dir exits non-zero"; else
    not_ok "a second agent on the same state_dir exits non-zero" "rc $rc: $second"; fi
check "it says another agent uses the state" eval '[[ $second == *"another declvirt agent (PID $AGENT_PID) is using $T/state"* ]]'
check "the first agent keeps running" kill -0 "$AGENT_PID"

# ---- wait: exit codes and freshness --------------------------------------------------------
vol_xml nopool stuck $MiB raw > "$D/stuck.xml"
start=$(date +%s%N)
dv wait --timeout 1 "$D/stuck.xml" >/dev/null 2>"$T/wait.err"; rc=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
check "wait returns 2 on timeout" test $rc = 2
check "wait gave up after about the timeout" test $took -ge 900 -a $took -lt 5000
check "wait says what it waited for" grep -q "volume/nopool/stuck: waiting" "$T/wait.err"
check "wait by id returns 2 on timeout too" eval 'dv wait --timeout 1 volume/nopool/stuck 2>/dev/null; test $? = 2'
rm "$D/stuck.xml"
vol_xml p1 big $((16 * MiB)) raw > "$D/big.xml"
check "wait returns 1 on a shrink refused (blocked)" eval '
    wait_until 10 phase_is volume/p1/big ready &&
    vol_xml p1 big $MiB raw > "$D/big.xml" && dv wait --timeout 10 "$D/big.xml" 2>/dev/null; test $? = 1'
rm "$D/big.xml"
check "wait returns 1 on a failed object" eval '
    vol_xml_alloc p1 huge $((1 << 50)) $((1 << 50)) raw > "$D/huge.xml" &&
    dv wait --timeout 10 "$D/huge.xml" 2>"$T/wait.err"; test $? = 1'
check "the failed object says why" grep -q "volume/p1/huge: failed" "$T/wait.err"
rm "$D/huge.xml"

# Never converged on old content: write a larger size and wait at once, several times,
# for a raw volume (fully allocated: the resize takes a moment) and a qcow2.
vol_xml p1 grow $((8 * MiB)) raw > "$D/grow.xml"
vol_xml_alloc p1 growq $((8 * MiB)) 0 qcow2 > "$D/growq.xml"
dv wait --timeout 10 "$D/grow.xml" "$D/growq.xml" >/dev/null 2>&1
fresh_ok=0 fresh_detail=
for i in 1 2 3 4 5; do
    cap=$(( (8 + 8 * i) * MiB ))
    vol_xml p1 grow $cap raw | put_atomic "$D/grow.xml"
    vol_xml_alloc p1 growq $cap 0 qcow2 | put_atomic "$D/growq.xml"
    if dv wait --timeout 20 "$D/grow.xml" "$D/growq.xml" >/dev/null 2>&1; then
        got=$(stat -c %s "$P1/grow") gotq=$(qemu-img info -U --output=json "$P1/growq" | grep -o '"virtual-size": [0-9]*' | grep -o '[0-9]*$')
        if [ "$got" = $cap ] && [ "$gotq" = $cap ]; then fresh_ok=$((fresh_ok + 1)); else
            fresh_detail+="round $i: wait returned 0 with sizes $got/$gotq, expected $cap; "; fi
    else
        fresh_detail+="round $i: wait failed; "
    fi
done
check "wait right after a rewrite returns only once the new size is applied (5 rounds)" \
    test "$fresh_ok" = 5 -a -z "$fresh_detail"
[ -n "$fresh_detail" ] && echo "# $fresh_detail"
# The default (every desired file) is just as fresh.
vol_xml p1 grow $((64 * MiB)) raw | put_atomic "$D/grow.xml"
if dv wait --timeout 20 >/dev/null 2>&1 && [ "$(stat -c %s "$P1/grow")" = $((64 * MiB)) ]; then
    ok "wait without arguments right after a rewrite sees the new content"
else
    not_ok "wait without arguments right after a rewrite sees the new content" "size $(stat -c %s "$P1/grow")"
fi

# ---- plan acts on nothing ------------------------------------------------------------------
agent_stop
vol_xml p1 planned $((3 * MiB)) raw > "$D/planned.xml"
vol_xml p1 grow $((128 * MiB)) raw > "$D/grow.xml"
status_before=$(stat -c '%i %Y' "$T/state/status.xml")
applied_before=$(ls "$T/state/applied" | sort)
plan=$(dv plan 2>&1); rc=$?
check "plan exits 0" test $rc = 0
check "plan prints the creation with its reason" \
    eval 'grep -qE "^volume/p1/planned +create +creating +creating raw volume of $((3 * MiB)) bytes" <<<"$plan"'
check "plan prints the resize with its reason" \
    eval 'grep -qE "^volume/p1/grow +resize +creating +growing from $((64 * MiB)) to $((128 * MiB)) bytes" <<<"$plan"'
check "plan lists settled objects without an action" eval 'grep -qE "^volume/p1/v +- +ready" <<<"$plan"'
check "plan created nothing" test ! -e "$P1/planned"
check "plan resized nothing" test "$(stat -c %s "$P1/grow")" = $((64 * MiB))
check "plan wrote no status" test "$(stat -c '%i %Y' "$T/state/status.xml")" = "$status_before"
check "plan wrote no last-applied record" test "$(ls "$T/state/applied" | sort)" = "$applied_before"
agent_start
check "the agent then does what was planned" wait_until 10 eval 'phase_is volume/p1/planned ready && test "$(stat -c %s "$P1/grow")" = $((128 * MiB))'
agent_stop
