#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crashes and a sick state_dir, through the real agent: kill -9 in the middle of a pass
# that creates many volumes, then a restart that converges on exactly what was asked;
# state_dir (a small tmpfs) full, then read-only: the agent keeps running, says so, and
# recovers when the file system is usable again.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog qemu-img
need_prog /usr/bin/python3
agent_setup

D=$T/desired
P1=$T/pools/p1
MiB=1048576
N=50
CAP=$((20 * 1024 * MiB)) # with preallocation=metadata, qemu-img takes ~0.1 s for each

# state_dir is a tmpfs of its own, so that it can be filled and made read-only. The
# agent holds STATE/.lock open for writing, which would keep a remount read-only from
# succeeding (EBUSY); the lock file is therefore bind-mounted from outside the tmpfs.
mount -t tmpfs -o size=4m,mode=0755 declvirt-state "$T/state" || skip_all "cannot mount a tmpfs"
on_exit umount -l "$T/state"
: > "$T/lockfile"
: > "$T/state/.lock"
mount --bind "$T/lockfile" "$T/state/.lock" || skip_all "cannot bind-mount the lock file"
on_exit umount -l "$T/state/.lock"

count_vols() { find "$P1" -maxdepth 1 -type f ! -name '.*' | wc -l; }
count_hidden() { find "$P1" -maxdepth 1 -name '.*' | wc -l; }

pool_xml p1 "$P1" > "$D/p1.xml"
agent_start
check "the pool is ready" wait_until 10 phase_is pool/p1 ready

# ---- kill -9 in the middle of creating many volumes --------------------------------------
mkdir "$T/batch"
for i in $(seq -w 1 $N); do
    vol_xml_alloc p1 "vol$i.qcow2" $CAP $MiB qcow2 > "$T/batch/vol$i.xml"
done
mv "$T/batch" "$D/batch" # one rename: the whole batch arrives at once
if wait_until 20 eval '[ "$(count_vols)" -ge 1 ]'; then
    kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=
    made=$(count_vols)
    ok "the agent is killed after the first volumes appear ($made of $N there)"
else
    not_ok "the agent is killed after the first volumes appear" "$(tail -10 "$T/agent.log")"
    made=$N
fi
if [ "$made" -lt $N ]; then ok "the kill came in the middle of the pass"; else
    skip "the kill came in the middle of the pass" "all $N volumes were made before the kill"; fi
# Orphaned qemu-img processes of the dead agent finish on their own.
wait_until 10 eval '! pgrep -f "qemu-img create .*$P1" >/dev/null'
echo "# at the kill: $made volumes, $(count_hidden) temporary files"

agent_start
if dv wait --timeout 40 >/dev/null 2>"$T/wait.err"; then ok "after a restart everything converges"; else
    not_ok "after a restart everything converges" "$(cat "$T/wait.err"; tail -10 "$T/agent.log")"; fi
check "exactly the $N volumes asked for exist" test "$(count_vols)" = $N
check "no temporary .creating files are left" test "$(count_hidden)" = 0
bad=
for i in $(seq -w 1 $N); do
    f=$P1/vol$i.qcow2
    info=$(qemu-img info -U --output=json "$f" 2>&1) || { bad+="vol$i: $info; "; continue; }
    grep -q '"format": "qcow2"' <<<"$info" && grep -q "\"virtual-size\": $CAP," <<<"$info" ||
        bad+="vol$i: $(tr -d '\n' <<<"$info" | head -c 200); "
done
check "every volume is a whole qcow2 image of the right size (qemu-img info)" test -z "$bad"
[ -n "$bad" ] && echo "# $bad"
check "status.xml lists each volume once, managed" eval '
    [ "$(grep -c "kind=.volume. name=.vol[0-9]*\.qcow2. pool=.p1. file=[^ ]* managed=.yes. phase=.ready." "$T/state/status.xml")" = $N ]'
check "no unmanaged volume is listed" eval '! grep -q "managed=.no." "$T/state/status.xml"'
check "every volume has its last-applied record" test "$(ls "$T/state/applied" | grep -c '^volume@p1@vol')" = $N
check "every last-applied record says the agent created it" \
    test "$(grep -l '"created": *true' "$T/state/applied"/volume@p1@vol* | wc -l)" = $N
restart_log=$(awk '/declvirt .*: desired/ { n++ } n == 2' "$T/agent.log")
check "after the restart no create failed" eval '! grep -q "failed" <<<"$restart_log"'
check "after the restart only the missing volumes were created" \
    test "$(grep -c "create done" <<<"$restart_log")" -le $((N - made))
rm -rf "$D/batch"
check "removing the batch file set forgets the volumes (on-remove keep)" \
    wait_until 10 eval '[ "$(grep -c "managed=.yes." "$T/state/status.xml")" = 1 ]'
check "and keeps their files" test "$(count_vols)" = $N
find "$P1" -maxdepth 1 -type f -delete
wait_pass

# ---- state_dir full ----------------------------------------------------------------------------
applied_ok() { test -s "$T/state/applied/volume@p1@$1.json"; }
dd if=/dev/zero of="$T/state/filler" bs=4k 2>/dev/null # until ENOSPC
check "state_dir is full" eval '! dd if=/dev/zero of="$T/state/probe" bs=4k count=1 2>/dev/null'
rm -f "$T/state/probe"
vol_xml p1 whenfull $MiB raw > "$D/whenfull.xml"
check "with state_dir full the agent reports it cannot write" \
    wait_until 5 eval 'grep -q "cannot write last-applied records: .*No space left" "$T/agent.log"'
check "with state_dir full the first attempt creates nothing" test ! -e "$P1/whenfull"
check "with state_dir full nothing is created, retries included (no action without its record)" \
    holds_for 2.5 test ! -e "$P1/whenfull"
check "with state_dir full the agent keeps running" kill -0 "$AGENT_PID"
rm "$T/state/filler"
if wait_until 20 phase_is volume/p1/whenfull ready; then ok "with space back the agent recovers (status.xml updated)"; else
    not_ok "with space back the agent recovers (status.xml updated)" "$(tail -10 "$T/agent.log")"; fi
check "the volume is created" test -f "$P1/whenfull"
check "its last-applied record is written" \
    wait_until 3 applied_ok whenfull
check "the agent says state is written again" grep -q "state is written again" "$T/agent.log"

# ---- state_dir read-only -----------------------------------------------------------------------
ro=0
for i in 1 2 3 4 5 6 7 8 9 10; do
    mount -o remount,ro "$T/state" 2>/dev/null && { ro=1; break; }
    sleep 0.1 # a commit had a temp file open
done
if [ $ro = 1 ]; then
    ok "state_dir is remounted read-only under the running agent"
    vol_xml p1 whenro $MiB raw > "$D/whenro.xml"
    check "with state_dir read-only the agent reports it cannot write" \
        wait_until 5 eval 'grep -q "cannot write last-applied records: .*Read-only file system" "$T/agent.log"'
    check "with state_dir read-only the first attempt creates nothing" test ! -e "$P1/whenro"
    check "with state_dir read-only nothing is created, retries included" \
        holds_for 2.5 test ! -e "$P1/whenro"
    check "with state_dir read-only the agent keeps running" kill -0 "$AGENT_PID"
    mount -o remount,rw "$T/state"
    if wait_until 20 phase_is volume/p1/whenro ready; then ok "read-write again, the agent recovers (status.xml updated)"; else
        not_ok "read-write again, the agent recovers (status.xml updated)" "$(tail -10 "$T/agent.log")"; fi
    check "the volume is created" test -f "$P1/whenro"
    check "its last-applied record is written" \
        wait_until 3 applied_ok whenro
else
    skip "state_dir read-only" "the tmpfs could not be remounted read-only"
fi
# ---- the records cannot be written, the rest of state_dir can -----------------------------
# applied/ replaced by a plain file: every last-applied record fails to be written
# (ENOTDIR) exactly when a pool build is due, while status.xml still can be.
P2=$T/pools/p2
mv "$T/state/applied" "$T/applied.saved"
: > "$T/state/applied"
pool_xml p2 "$P2" > "$D/p2.xml"
check "with its record unwritable the pool build is refused (status: failed)" \
    wait_until 5 phase_is pool/p2 failed
check "status.xml says the last-applied record is why" \
    eval 'st_cond pool/p2 ActionFailed | grep -q "^true|cannot write last-applied records: .*applied.*Not a directory"'
check "without its record nothing is built, retries included" holds_for 2.5 test ! -e "$P2"
check "the agent logs that no action started" grep -q "cannot write last-applied records: .*no action started" \
    "$T/agent.log"
rm "$T/state/applied"
mv "$T/applied.saved" "$T/state/applied"
if wait_until 20 phase_is pool/p2 ready; then ok "with applied/ back the pool is built"; else
    not_ok "with applied/ back the pool is built" "$(tail -10 "$T/agent.log")"; fi
check "the pool's directory exists" test -d "$P2"
check "its record says the agent built it" grep -q '"created": *true' "$T/state/applied/pool@p2.json"

check "the agent survived it all" kill -0 "$AGENT_PID"
agent_stop
