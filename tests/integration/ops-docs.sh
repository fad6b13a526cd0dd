#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The man pages: mandoc -Tlint finds nothing (groff -ww too when installed), and they
# stay in step with the code: every command and option the binary's --help shows,
# every agent.conf key, every pool type and policy attribute; the examples validate.
source "$(dirname "$0")/../helpers/lib.sh"
PAGES=("$REPO/docs/declvirt.8" "$REPO/docs/agent.conf.5" "$REPO/docs/declvirt-xml.5")
command -v mandoc >/dev/null 2>&1 || skip_all "mandoc is not installed (Debian package mandoc)"
[ -x "$DECLVIRT" ] || skip_all "$DECLVIRT is not built"
T=$(mktemp -d /tmp/declvirt-docs.XXXXXX)

for p in "${PAGES[@]}"; do
    n=$(basename "$p")
    # Cross references to pages of this project or of packages that may be missing
    # (virsh, systemd) are not problems of the page itself.
    out=$(mandoc -Tlint "$p" 2>&1 | grep -v -e 'referenced manual not found' -e 'mandoc.db')
    [ -z "$out" ] && ok "$n: mandoc -Tlint is silent" || not_ok "$n: mandoc -Tlint is silent" "$out"
    if command -v groff >/dev/null 2>&1; then
        out=$(groff -ww -mandoc -z "$p" 2>&1)
        [ -z "$out" ] && ok "$n: groff -ww is silent" || not_ok "$n: groff -ww is silent" "$out"
    else
        skip "$n: groff -ww is silent" "groff is not installed (mandoc checks the page)"
    fi
    mandoc -Tutf8 "$p" >"$T/$n.txt" 2>/dev/null
    [ "$(wc -l <"$T/$n.txt")" -gt 40 ] && ok "$n renders" || not_ok "$n renders"
done

# declvirt(8): every command of `declvirt --help` and every option of each command.
page=$REPO/docs/declvirt.8
missing=
for c in $("$DECLVIRT" --help | sed -n '/^Commands/,/^$/p' | awk 'NR > 1 && $1 ~ /^[a-z]/ {print $1}' | sort -u); do
    grep -q "^\.It Cm $c\b" "$page" || missing+=" $c"
done
[ -z "$missing" ] && ok "declvirt(8) describes every command" || not_ok "declvirt(8) describes every command" "missing:$missing"
missing=
for c in agent plan status wait validate native; do
    for o in $("$DECLVIRT" --config "$REPO/agent.conf" "$c" --help 2>&1 | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
        # --dry-run is written "Fl \-dry\-run" in mdoc.
        esc=$(sed 's/-/\\-/g' <<<"${o#-}")
        grep -qF "Fl $esc" "$page" || missing+=" $c $o"
    done
done
[ -z "$missing" ] && ok "declvirt(8) describes every option" || not_ok "declvirt(8) describes every option" "missing:$missing"

# agent.conf(5): every key of the installed default file.
missing=
for k in $(sed -n 's/^#\{0,1\}[[:space:]]*\([a-z_]*\):.*/\1/p' "$REPO/scripts/agent.conf.default" | sort -u); do
    grep -q "^\.It Cm $k :" "$REPO/docs/agent.conf.5" || missing+=" $k"
done
[ -z "$missing" ] && ok "agent.conf(5) describes every key" || not_ok "agent.conf(5) describes every key" "missing:$missing"

# declvirt-xml(5): every pool type and every policy attribute the model knows.
xml=$REPO/docs/declvirt-xml.5
missing=
for t in $(grep -A1 'DV_ENUM_IMPL(pool_type' "$REPO/model/pool.c" | grep -oE '"[a-z-]+"' | tr -d '"'); do
    grep -qE "^\.It Cm $t\$" "$xml" || missing+=" pool:$t"
done
for a in $(sed -n 's/^[[:space:]]*{ *"\([a-z-]*\)", K_.*/\1/p' "$REPO/model/policy.c"); do
    grep -q "^\.It Cm $a Ns = Ns" "$xml" || missing+=" policy:$a"
done
[ -z "$missing" ] && ok "declvirt-xml(5) describes every pool type and policy attribute" ||
    not_ok "declvirt-xml(5) describes every pool type and policy attribute" "missing:$missing"

# The examples of declvirt-xml(5) are valid desired files.
/usr/bin/python3 - "$xml" "$T" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
ex = s[s.index('.Sh EXAMPLES'):]
n = 0
for block in re.findall(r'\.Bd -literal -offset indent\n(.*?)\.Ed', ex, re.S):
    for doc in re.split(r'\n\n', block.strip()):
        open(f"{sys.argv[2]}/example{n}.xml", "w").write(doc + "\n")
        n += 1
PY
cat >"$T/agent.conf" <<CONF
state_dir: $T/state
CONF
cnt=$(ls "$T"/example*.xml 2>/dev/null | wc -l)
out=$("$DECLVIRT" --config "$T/agent.conf" validate "$T"/example*.xml 2>&1); rc=$?
[ "$cnt" -ge 4 ] && [ $rc -eq 0 ] && ok "the $cnt examples of declvirt-xml(5) validate" ||
    not_ok "the examples of declvirt-xml(5) validate" "$cnt examples, exit $rc: $out"
