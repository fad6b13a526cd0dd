#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every way real tools put files into desired_dir, through the real agent: each must
# converge, a half-written file must never be acted on, and a file that is briefly
# absent (rename dances, delete-then-write) must never be taken for a removal. The
# volumes carry on-remove='delete', so a wrong removal would destroy them: their inode
# is checked across each rewrite.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog /usr/bin/python3
REMOVAL_DELAY=1s agent_setup

D=$T/desired
S=$T/stage # outside desired_dir, same file system (renames are renames)
P1=$T/pools/p1
MiB=1048576
mkdir -p "$S"

# vx NAME CAPACITY: a sparse raw volume in p1 that is deleted with its file.
vx() { vol_xml_alloc p1 "$1" "$2" 0 raw "on-remove='delete'"; }
ready_with() { phase_is "volume/p1/$1" ready && [ "$(stat -c %s "$P1/$1" 2>/dev/null)" = "$2" ]; }
ino() { stat -c %i "$1" 2>/dev/null; }
never_removed() { ! grep -qE "volume/p1/$1: (removing|delete|no longer managed)" "$T/agent.log"; }
# expect_ready NAME CAPACITY WHAT: one ok for "WHAT converges".
expect_ready() {
    if wait_until 5 ready_with "$1" "$2"; then ok "$3"; else
        not_ok "$3" "phase $(phase_of "volume/p1/$1"), size $(stat -c %s "$P1/$1" 2>&1): $(st_msg "volume/p1/$1")"
    fi
}
# expect_kept NAME INODE WHAT: the same volume file, never removed meanwhile.
expect_kept() {
    if [ "$(ino "$P1/$1")" = "$2" ] && never_removed "$1"; then ok "$3"; else
        not_ok "$3" "inode $(ino "$P1/$1") (was $2); $(grep "volume/p1/$1" "$T/agent.log" | tail -5)"
    fi
}

pool_xml p1 "$P1" > "$D/p1.xml"
agent_start
check "the pool is ready" wait_until 10 phase_is pool/p1 ready

# ---- atomic rename (Ansible: .ansible_tmp* then rename) ---------------------------------
vx atomic $MiB | put_atomic "$D/atomic.xml"
expect_ready atomic $MiB "atomic rename: a new file converges"
i=$(ino "$P1/atomic")
vx atomic $((2 * MiB)) | put_atomic "$D/atomic.xml"
expect_ready atomic $((2 * MiB)) "atomic rename: a rewrite converges"
expect_kept atomic "$i" "atomic rename: the volume is kept across the rewrite"
check "atomic rename: the temp name never became an object" eval '! grep -q ansible_tmp "$T/state/status.xml"'

# ---- mv from outside ---------------------------------------------------------------------
vx moved $MiB > "$S/moved.xml"
mv "$S/moved.xml" "$D/moved.xml"
expect_ready moved $MiB "mv from outside: a new file converges"
i=$(ino "$P1/moved")
vx moved $((2 * MiB)) > "$S/moved.xml"
mv -f "$S/moved.xml" "$D/moved.xml"
expect_ready moved $((2 * MiB)) "mv from outside: a replacement converges"
expect_kept moved "$i" "mv from outside: the volume is kept across the replacement"

# ---- install -m 0644 -------------------------------------------------------------------------
vx installed $MiB > "$S/installed.xml"
install -m 0644 "$S/installed.xml" "$D/installed.xml"
expect_ready installed $MiB "install -m 0644: a new file converges"
i=$(ino "$P1/installed")
vx installed $((2 * MiB)) > "$S/installed.xml"
install -m 0644 "$S/installed.xml" "$D/installed.xml"
expect_ready installed $((2 * MiB)) "install -m 0644: a reinstall converges"
expect_kept installed "$i" "install -m 0644: the volume is kept across the reinstall"

# ---- cp ----------------------------------------------------------------------------------------
vx copied $MiB > "$S/copied.xml"
cp "$S/copied.xml" "$D/copied.xml"
expect_ready copied $MiB "cp: a new file converges"
i=$(ino "$P1/copied")
vx copied $((2 * MiB)) > "$S/copied.xml"
cp "$S/copied.xml" "$D/copied.xml" # truncates and writes in place
expect_ready copied $((2 * MiB)) "cp: a copy over the file converges"
expect_kept copied "$i" "cp: the volume is kept across the copy"

# ---- vim: probe file 4913, original renamed to file~, new file written, backup removed ----
vx vim $MiB > "$D/vim.xml"
expect_ready vim $MiB "vim: the initial file converges"
i=$(ino "$P1/vim")
printf 'swap' > "$D/.vim.xml.swp"
: > "$D/4913"; rm "$D/4913"
mv "$D/vim.xml" "$D/vim.xml~"
# The agent must see the file gone (the removal clock runs), so the rest is meaningful.
check "vim: the agent sees the file gone for a moment" wait_until 1 eval 'st_msg volume/p1/vim | grep -q "file removed"'
vx vim $((2 * MiB)) > "$D/vim.xml"
rm "$D/vim.xml~" "$D/.vim.xml.swp"
expect_ready vim $((2 * MiB)) "vim: the edit converges"
expect_kept vim "$i" "vim: the rename dance is not taken for a removal"

# ---- emacs: #file# autosave, file~ backup left behind ------------------------------------------
vx emacs $MiB > "$D/emacs.xml"
expect_ready emacs $MiB "emacs: the initial file converges"
i=$(ino "$P1/emacs")
vx emacs $((3 * MiB)) > "$D/#emacs.xml#" # autosave of the buffer
sleep 0.2
mv "$D/emacs.xml" "$D/emacs.xml~"
check "emacs: the agent sees the file gone for a moment" wait_until 1 eval 'st_msg volume/p1/emacs | grep -q "file removed"'
vx emacs $((2 * MiB)) > "$D/emacs.xml"
rm "$D/#emacs.xml#"
expect_ready emacs $((2 * MiB)) "emacs: the save converges"
expect_kept emacs "$i" "emacs: the backup rename is not taken for a removal"
check "emacs: the backup file~ is not a second definition" eval '[ -z "$(st_cond volume/p1/emacs Duplicate)" ]'
check "emacs: the autosave never applied its size" eval '! grep -q "volume/p1/emacs: .*$((3 * MiB))" "$T/agent.log"'

# ---- cat > in several writes, with pauses longer than the debounce -----------------------------
# The writer is held between its two halves by a FIFO, so the checks run while the
# file is half-written; creating a dot-file makes the agent look at the directory.
mkfifo "$T/go"
vx halfnew $MiB > "$S/halfnew.xml"
( head -c 100 "$S/halfnew.xml"; read -r _ < "$T/go"; tail -c +101 "$S/halfnew.xml" ) > "$D/halfnew.xml" &
writer=$!
sleep 0.2
: > "$D/.nudge"
wait_pass
check "cat > (new file): half-written, it is reported invalid" \
    wait_until 3 eval 'st_file "$D/halfnew.xml" | grep -q "malformed XML"'
check "cat > (new file): half-written, no object is created" eval '! st_has volume/p1/halfnew && test ! -e "$P1/halfnew"'
echo > "$T/go"; wait $writer
expect_ready halfnew $MiB "cat > (new file): once complete it converges"
check "cat > (new file): the invalid-file report is gone" eval '[ -z "$(st_file "$D/halfnew.xml")" ]'

vx half $MiB > "$D/half.xml"
expect_ready half $MiB "cat > (rewrite): the initial file converges"
i=$(ino "$P1/half"); m=$(mtime_ns "$P1/half")
vx half $((2 * MiB)) > "$S/half.xml"
( head -c 100 "$S/half.xml"; read -r _ < "$T/go"; tail -c +101 "$S/half.xml" ) > "$D/half.xml" &
writer=$!
sleep 0.2
: > "$D/.nudge"
wait_pass
check "cat > (rewrite): half-written, the object shows FileInvalid" \
    wait_until 3 eval 'st_cond volume/p1/half FileInvalid | grep -q "^true|.*malformed XML"'
check "cat > (rewrite): half-written, the object stays ready" phase_is volume/p1/half ready
check "cat > (rewrite): half-written, the volume is untouched" \
    test "$(ino "$P1/half") $(mtime_ns "$P1/half") $(stat -c %s "$P1/half")" = "$i $m $MiB"
sleep 1.2 # longer than removal_delay: a half-written file is no removal either
check "cat > (rewrite): still there after removal_delay" eval 'phase_is volume/p1/half ready && test -f "$P1/half"'
echo > "$T/go"; wait $writer
expect_ready half $((2 * MiB)) "cat > (rewrite): once complete it converges"
expect_kept half "$i" "cat > (rewrite): the volume is kept"
check "cat > (rewrite): FileInvalid is cleared" eval '[ -z "$(st_cond volume/p1/half FileInvalid)" ]'

# ---- echo >> appends, one line at a time ------------------------------------------------------
vx appended $MiB > "$S/appended.xml"
while IFS= read -r line; do echo "$line" >> "$D/appended.xml"; sleep 0.05; done < "$S/appended.xml"
expect_ready appended $MiB "echo >>: a file built line by line converges"
check "echo >>: it was created once" test "$(log_count "volume/p1/appended: create done")" = 1
i=$(ino "$P1/appended")
vx appended $((2 * MiB)) > "$S/appended.xml"
first=1
while IFS= read -r line; do
    if [ $first = 1 ]; then echo "$line" > "$D/appended.xml"; first=0; else echo "$line" >> "$D/appended.xml"; fi
    sleep 0.05
done < "$S/appended.xml"
expect_ready appended $((2 * MiB)) "echo > then echo >>: a rewrite line by line converges"
expect_kept appended "$i" "echo > then echo >>: the volume is kept"
check "echo >>: no action ever failed" eval '! grep -q "volume/p1/appended: .*failed" "$T/agent.log"'

# ---- touch: nothing to do -------------------------------------------------------------------
vx touched $MiB > "$D/touched.xml"
expect_ready touched $MiB "touch: the initial file converges"
wait_pass
done_before=$(log_count " done")
m=$(mtime_ns "$P1/touched")
touch "$D/touched.xml"
wait_pass; wait_pass
check "touch: no action is taken" test "$(log_count " done")" = "$done_before"
check "touch: the volume file is untouched" test "$(mtime_ns "$P1/touched")" = "$m"
check "touch: the object stays ready" phase_is volume/p1/touched ready

# ---- rm and mv out: removal after removal_delay, not before ----------------------------------
vx removed $MiB > "$D/removed.xml"
vx movedout $MiB > "$D/movedout.xml"
expect_ready removed $MiB "rm: the initial file converges"
expect_ready movedout $MiB "mv out: the initial file converges"
t0=$(date +%s%N)
rm "$D/removed.xml"
mv "$D/movedout.xml" "$S/"
check "rm / mv out: nothing is removed before removal_delay" \
    holds_for 0.6 eval 'test -f "$P1/removed" -a -f "$P1/movedout"'
check "rm / mv out: the pending removal is shown" eval 'st_msg volume/p1/removed | grep -q "file removed; on-remove applies in"'
if wait_until 5 eval 'test ! -e "$P1/removed" -a ! -e "$P1/movedout"'; then
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    if [ $ms -ge 1000 ]; then ok "rm / mv out: both volumes are deleted after removal_delay (${ms} ms)"; else
        not_ok "rm / mv out: both volumes are deleted after removal_delay" "after only $ms ms"; fi
else
    not_ok "rm / mv out: both volumes are deleted after removal_delay" "$(tail -5 "$T/agent.log")"
fi

# ---- delete then recreate within removal_delay --------------------------------------------------
vx recreated $MiB > "$D/recreated.xml"
expect_ready recreated $MiB "delete-then-write: the initial file converges"
i=$(ino "$P1/recreated")
rm "$D/recreated.xml"
check "delete-then-write: the agent sees the file gone" wait_until 1 eval 'st_msg volume/p1/recreated | grep -q "file removed"'
vx recreated $((2 * MiB)) > "$D/recreated.xml"
expect_ready recreated $((2 * MiB)) "delete-then-write: the new content converges"
sleep 1.2 # past the removal delay of the delete
expect_kept recreated "$i" "delete-then-write: the volume is not deleted (on-remove='delete')"

# ---- a whole subdirectory moved in and out ----------------------------------------------------
mkdir -p "$S/team/inner"
pool_xml p2 "$T/pools/p2" "on-remove='delete'" > "$S/team/p2.xml"
vol_xml_alloc p2 sa $MiB 0 raw "on-remove='delete'" > "$S/team/sa.xml"
vol_xml_alloc p2 sb $MiB 0 raw "on-remove='delete'" > "$S/team/inner/sb.xml"
mv "$S/team" "$D/team"
if wait_until 5 eval 'phase_is volume/p2/sa ready && phase_is volume/p2/sb ready'; then
    ok "a subdirectory moved in: its objects appear"
else
    not_ok "a subdirectory moved in: its objects appear" "$(st_msg volume/p2/sb)"
fi
check "the subdirectory's volumes exist" test -f "$T/pools/p2/sa" -a -f "$T/pools/p2/sb"
mv "$D/team" "$S/team-out"
check "a subdirectory moved out: nothing is removed before removal_delay" \
    holds_for 0.6 eval 'test -f "$T/pools/p2/sa" -a -f "$T/pools/p2/sb"'
check "a subdirectory moved out: its volumes are deleted after the delay" \
    wait_until 5 eval 'test ! -e "$T/pools/p2/sa" -a ! -e "$T/pools/p2/sb"'
check "a subdirectory moved out: its pool is removed after its volumes" wait_until 5 test ! -e "$T/pools/p2"

# ---- ConfigMap: symlinks through ..data, swapped atomically --------------------------------------
mkdir -p "$D/cm/..2026_01"
pool_xml p3 "$T/pools/p3" > "$D/cm/..2026_01/pool.xml"
vol_xml_alloc p3 cmv $MiB 0 raw "on-remove='delete'" > "$D/cm/..2026_01/vol.xml"
ln -s ..2026_01 "$D/cm/..data"
ln -s ..data/pool.xml "$D/cm/pool.xml"
ln -s ..data/vol.xml "$D/cm/vol.xml"
if wait_until 5 eval 'phase_is volume/p3/cmv ready && test "$(stat -c %s "$T/pools/p3/cmv")" = $MiB'; then
    ok "ConfigMap: files reached through symlinks converge"
else
    not_ok "ConfigMap: files reached through symlinks converge" "$(st_msg volume/p3/cmv)"
fi
check "ConfigMap: the hidden data directory defines nothing twice" eval '[ -z "$(st_cond volume/p3/cmv Duplicate)" ]'
i=$(ino "$T/pools/p3/cmv")
mkdir "$D/cm/..2026_02"
pool_xml p3 "$T/pools/p3" > "$D/cm/..2026_02/pool.xml"
vol_xml_alloc p3 cmv $((2 * MiB)) 0 raw "on-remove='delete'" > "$D/cm/..2026_02/vol.xml"
ln -s ..2026_02 "$D/cm/..data_tmp"
mv -T "$D/cm/..data_tmp" "$D/cm/..data"
rm -rf "$D/cm/..2026_01"
if wait_until 5 eval 'test "$(stat -c %s "$T/pools/p3/cmv")" = $((2 * MiB)) && phase_is volume/p3/cmv ready'; then
    ok "ConfigMap: the ..data swap converges"
else
    not_ok "ConfigMap: the ..data swap converges" "$(st_msg volume/p3/cmv)"
fi
sleep 1.2
check "ConfigMap: the swap is not taken for a removal" \
    eval 'test "$(ino "$T/pools/p3/cmv")" = "$i" && ! grep -qE "volume/p3/cmv: (removing|delete)" "$T/agent.log"'

# ---- overall -------------------------------------------------------------------------------------
check "no temporary or backup name ever became an object" \
    eval '! grep -qE "(ansible_tmp|\.swp|~|#|4913|\.nudge)" <(grep -o "file=.[^ ]*" "$T/state/status.xml")'
check "no action failed" eval '! grep -q " failed" "$T/agent.log"'
check "the agent is still running" kill -0 "$AGENT_PID"
agent_stop
