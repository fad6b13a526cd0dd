#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Ansible role (contrib/ansible) through Debian's ansible-core against a real agent
# in a temporary directory: converge, idempotence, validate refusing a bad file,
# removal of files no longer wanted, and a failing object failing the play.
source "$(dirname "$0")/../helpers/lib.sh"
command -v ansible-playbook >/dev/null 2>&1 ||
    skip_all "ansible-playbook is not installed (Debian package ansible-core)"
[ -x /usr/bin/python3 ] || skip_all "/usr/bin/python3 is missing (ansible needs Debian's python)"
[ -x "$DECLVIRT" ] || skip_all "$DECLVIRT is not built"

agent_setup
# Ansible keeps everything (temporary files, facts, its home) under $T, reads no
# ansible.cfg of the machine, and uses Debian's python.
mkdir -p "$T/ansible"; : >"$T/ansible/ansible.cfg"
export ANSIBLE_CONFIG=$T/ansible/ansible.cfg ANSIBLE_HOME=$T/ansible \
    ANSIBLE_LOCAL_TEMP=$T/ansible/tmp ANSIBLE_REMOTE_TEMP=$T/ansible/rtmp \
    ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 \
    ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_DEPRECATION_WARNINGS=0 ANSIBLE_GATHERING=explicit
agent_start

# The objects for each run are extra vars (they override the example playbook's).
objects() { # objects [with-volume] [extra YAML entries...]
    echo "declvirt_binary: $DECLVIRT"
    echo "declvirt_config: $T/agent.conf"
    echo "declvirt_desired_dir: $T/desired"
    echo "declvirt_wait_timeout: 30"
    echo "declvirt_objects:"
    cat <<YAML
  - name: p1
    content: |
$(pool_xml p1 "$T/pools/p1" | sed 's/^/      /')
YAML
    if [ "${1:-}" = with-volume ]; then
        cat <<YAML
  - name: v1
    content: |
$(vol_xml p1 v1.raw 1048576 | sed 's/^/      /')
YAML
    fi
    shift || true
    printf '%s\n' "$@"
}
play() { # play VARS-FILE: runs the example playbook; output in $T/play.out
    ansible-playbook -c local -i localhost, -e "@$1" "$REPO/contrib/ansible/playbook.yml" \
        >"$T/play.out" 2>&1
}
recap() { grep -E '^localhost +:' "$T/play.out"; }

objects with-volume >"$T/v1.yml"
if play "$T/v1.yml"; then ok "the first run succeeds"; else not_ok "the first run succeeds" "$(tail -30 "$T/play.out")"; fi
check "the pool is ready" phase_is pool/p1 ready
check "the volume is ready" phase_is volume/p1/v1.raw ready
check "the volume file exists" test -f "$T/pools/p1/v1.raw"
[ "$(stat -c %a "$T/desired/ansible-p1.xml" 2>/dev/null)" = 644 ] && ok "desired files are written 0644" ||
    not_ok "desired files are written 0644" "$(ls -l "$T/desired")"
recap | grep -q 'failed=0' && recap | grep -Eq 'changed=[1-9]' && ok "the first run reports changes" ||
    not_ok "the first run reports changes" "$(recap)"

if play "$T/v1.yml" && recap | grep -q 'changed=0' && recap | grep -q 'failed=0'; then
    ok "a second run reports changed=0"
else
    not_ok "a second run reports changed=0" "$(recap; tail -20 "$T/play.out")"
fi

# A file the role does not own must survive the purge.
pool_xml manual "$T/pools/manual" >"$T/desired/manual.xml"
bad_entry=$(printf '%s\n' "  - name: bad" "    content: |" \
    "      <pool type='rbd'><name>bad</name></pool>")
objects with-volume "$bad_entry" >"$T/bad.yml"
if play "$T/bad.yml"; then
    not_ok "a bad file fails the play" "$(tail -20 "$T/play.out")"
else
    ok "a bad file fails the play"
fi
grep -q "pool type 'rbd' is not supported" "$T/play.out" && ok "the play shows validate's message" ||
    not_ok "the play shows validate's message" "$(grep -i -A3 fatal "$T/play.out")"
check "the bad file never reaches the desired directory" test ! -e "$T/desired/ansible-bad.xml"
left=$(find "$T/desired" -name '*bad*' -o -name '.ansible*' | head -5)
[ -z "$left" ] && ok "no temporary file is left in the desired directory" ||
    not_ok "no temporary file is left in the desired directory" "$left"

# Removing an entry removes the role's file only; the volume stays (on-remove keep).
objects >"$T/nov.yml"
if play "$T/nov.yml" && recap | grep -q 'changed=1'; then ok "dropping an object removes its file (changed=1)"
else not_ok "dropping an object removes its file (changed=1)" "$(recap; tail -20 "$T/play.out")"; fi
check "the dropped object's file is gone" test ! -e "$T/desired/ansible-v1.xml"
check "a file without the role's prefix is kept" test -e "$T/desired/manual.xml"
check "the wanted file is still there" test -e "$T/desired/ansible-p1.xml"
if wait_until 10 st_is volume/p1/v1.raw managed no; then ok "the removed volume is no longer managed"
else not_ok "the removed volume is no longer managed" "$(dv status 2>&1)"; fi
check "the volume's data is kept (on-remove='keep')" test -f "$T/pools/p1/v1.raw"

# A valid file whose object cannot be made: the play fails with the agent's reason.
blocked_entry=$(printf '%s\n' "  - name: nobuild" "    content: |" \
    "$(pool_xml nobuild "$T/pools/missing" "build='no'" | sed 's/^/      /')")
objects "" "$blocked_entry" >"$T/blocked.yml"
if play "$T/blocked.yml"; then
    not_ok "a blocked object fails the play" "$(tail -20 "$T/play.out")"
else
    ok "a blocked object fails the play"
fi
grep -Eq "pool/nobuild: (failed|blocked): .*build='no'" "$T/play.out" && ok "the failure carries the agent's message" ||
    not_ok "the failure carries the agent's message" "$(grep -A5 'declvirt wait failed' "$T/play.out")"

agent_stop
