#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A fleet of three "hosts": three agents, each with its own directories and inside its
# own network namespace, converged by one ansible-playbook run over an inventory of
# the three; `declvirt status --json` is then gathered from each and checked.
source "$(dirname "$0")/../helpers/lib.sh"
need_root
need_prog ip
command -v ansible-playbook >/dev/null 2>&1 ||
    skip_all "ansible-playbook is not installed (Debian package ansible-core)"
[ -x /usr/bin/python3 ] || skip_all "/usr/bin/python3 is missing (ansible needs Debian's python)"
[ -x "$DECLVIRT" ] || skip_all "$DECLVIRT is not built"

T=$(mktemp -d /tmp/declvirt-fleet.XXXXXX)
chmod 0755 "$T"
HOSTS=(h1 h2 h3)
declare -A NS PID
probe=dvfleet-$$-probe
ip netns add "$probe" 2>/dev/null || skip_all "cannot create network namespaces here"
ip netns del "$probe"

for h in "${HOSTS[@]}"; do
    d=$T/$h
    mkdir -p "$d/desired" "$d/state" "$d/run" "$d/pools"
    cat >"$d/agent.conf" <<CONF
desired_dir: $d/desired
state_dir: $d/state
run_dir: $d/run
resync_interval: 2s
debounce: 10ms
removal_delay: 300ms
log_level: debug
strict_permissions: true
CONF
    NS[$h]=dvfleet-$$-$h
    ip netns add "${NS[$h]}"
    on_exit "ip netns del ${NS[$h]}"
    # `ip netns exec` execs the agent, so $! is the agent itself.
    ip netns exec "${NS[$h]}" "$DECLVIRT" --config "$d/agent.conf" agent >>"$d/agent.log" 2>&1 &
    PID[$h]=$!
    on_exit "kill -9 ${PID[$h]}"
done
for h in "${HOSTS[@]}"; do
    if wait_until 10 test -s "$T/$h/state/status.xml"; then ok "$h: the agent is up"
    else not_ok "$h: the agent is up" "$(cat "$T/$h/agent.log")"; fi
    [ "$(ip netns identify "${PID[$h]}" 2>/dev/null)" = "${NS[$h]}" ] &&
        ok "$h: the agent runs in its own network namespace" ||
        not_ok "$h: the agent runs in its own network namespace" "$(ip netns identify "${PID[$h]}" 2>&1)"
done

# One inventory; each host's variables point at its own agent.
{
    echo "[fleet]"
    for h in "${HOSTS[@]}"; do
        echo "$h ansible_connection=local declvirt_config=$T/$h/agent.conf" \
            "declvirt_desired_dir=$T/$h/desired fleet_pool_dir=$T/$h/pools/images"
    done
} >"$T/inventory"
cat >"$T/objects.yml" <<YAML
declvirt_hosts: fleet
declvirt_binary: $DECLVIRT
declvirt_wait_timeout: 30
declvirt_objects:
  - name: pool-images
    content: |
$(pool_xml images '{{ fleet_pool_dir }}' | sed 's/^/      /')
  - name: volume-disk0
    content: |
$(vol_xml images 'disk0-{{ inventory_hostname }}.raw' 1048576 | sed 's/^/      /')
YAML

mkdir -p "$T/ansible"; : >"$T/ansible/ansible.cfg"
export ANSIBLE_CONFIG=$T/ansible/ansible.cfg ANSIBLE_HOME=$T/ansible \
    ANSIBLE_LOCAL_TEMP=$T/ansible/tmp ANSIBLE_REMOTE_TEMP=$T/ansible/rtmp \
    ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 \
    ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_DEPRECATION_WARNINGS=0 ANSIBLE_GATHERING=explicit
play() {
    ansible-playbook -i "$T/inventory" -e "@$T/objects.yml" "$REPO/contrib/ansible/playbook.yml" \
        >"$T/play.out" 2>&1
}

if play; then ok "one ansible-playbook run converges the fleet"
else not_ok "one ansible-playbook run converges the fleet" "$(tail -30 "$T/play.out")"; fi
n=$(grep -Ec '^h[123] +: .*failed=0' "$T/play.out")
[ "$n" = 3 ] && ok "all three hosts are in the recap without failures" ||
    not_ok "all three hosts are in the recap without failures" "$(grep -E '^h[123] ' "$T/play.out")"

# Gather `declvirt status --json` from each host, as a monitoring job would.
for h in "${HOSTS[@]}"; do
    ip netns exec "${NS[$h]}" "$DECLVIRT" --config "$T/$h/agent.conf" status --json >"$T/$h.json" 2>"$T/$h.err" ||
        echo "status --json failed: $(cat "$T/$h.err")" >>"$T/$h.json"
done
out=$(/usr/bin/python3 - "$T" "${HOSTS[@]}" <<'PY'
import json, sys
t, hosts = sys.argv[1], sys.argv[2:]
bad = []
for h in hosts:
    try:
        s = json.load(open(f"{t}/{h}.json"))
    except Exception as e:
        bad.append(f"{h}: not JSON: {e}"); continue
    ids = {o["id"]: o for o in s["objects"] if o["managed"]}
    want = {"pool/images", f"volume/images/disk0-{h}.raw"}
    if set(ids) != want:
        bad.append(f"{h}: objects {sorted(ids)} instead of {sorted(want)}")
    if not s["converged"] or s["counts"]["ready"] != 2 or s["counts"]["failed"] or s["counts"]["blocked"]:
        bad.append(f"{h}: not converged: {s['counts']}")
    for o in ids.values():
        if o["file"] and not o["file"].startswith(f"{t}/{h}/desired/"):
            bad.append(f"{h}: {o['id']} comes from {o['file']}")
print("\n".join(bad))
PY
)
[ -z "$out" ] && ok "status --json from each host shows its own two objects ready" ||
    not_ok "status --json from each host shows its own two objects ready" "$out"
for h in "${HOSTS[@]}"; do
    vols=("$T/$h/pools/images"/*)
    if [ ${#vols[@]} -eq 1 ] && [ "${vols[0]}" = "$T/$h/pools/images/disk0-$h.raw" ]; then
        ok "$h has only its own volume"
    else
        not_ok "$h has only its own volume" "${vols[*]}"
    fi
done

if play && [ "$(grep -Ec '^h[123] +: .*changed=0 .*failed=0' "$T/play.out")" = 3 ]; then
    ok "a second run changes nothing on any host"
else
    not_ok "a second run changes nothing on any host" "$(grep -E '^h[123] ' "$T/play.out")"
fi

for h in "${HOSTS[@]}"; do
    kill -TERM "${PID[$h]}" 2>/dev/null
done
for h in "${HOSTS[@]}"; do
    for _ in $(seq 1 200); do kill -0 "${PID[$h]}" 2>/dev/null || break; sleep 0.05; done
    wait "${PID[$h]}"; rc=$?
    [ $rc -eq 0 ] && ok "$h: the agent stops cleanly on SIGTERM" || not_ok "$h: the agent stops cleanly on SIGTERM" "rc=$rc"
done
