#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# contrib/bash-completion/declvirt in bash: `complete -p`, then the completion
# function called with COMP_WORDS, with and without the bash-completion package.
source "$(dirname "$0")/../helpers/lib.sh"
COMPLETION=$REPO/contrib/bash-completion/declvirt
agent_setup
mkdir -p "$T/state" "$T/files/sub"
# A status.xml as the agent writes it (the completion only reads <object> tags).
cat >"$T/state/status.xml" <<'XML'
<status version='0.1.0' converged='yes'>
  <object kind='pool' name='images' managed='yes' phase='ready'/>
  <object kind='volume' name='web1.qcow2' pool='images' managed='yes' phase='ready'/>
  <object kind='volume' name='vm:disk0' pool='images' managed='no' phase='ready'/>
  <object kind='network' name='lab' managed='yes' phase='blocked'>
    <message>network objects are not supported by this agent yet</message>
  </object>
  <object kind='domain' name='web1' managed='yes' phase='blocked'/>
</status>
XML
touch "$T/files/a.xml" "$T/files/b.xml" "$T/files/notes.txt"
# A relative state_dir in a config elsewhere is relative to that config's directory.
mkdir -p "$T/other/st"
printf 'state_dir: "st"   # relative\n' >"$T/other/agent.conf"
cp "$T/state/status.xml" "$T/other/st/status.xml"
sed -i "s/name='lab'/name='lab2'/" "$T/other/st/status.xml"

# complete_words [bash-completion] WORD...: the sorted candidates for the last word.
complete_words() {
    local bc=
    [ "$1" = bc ] && { bc=1; shift; }
    bash --norc --noprofile -c '
        [ -n "$2" ] && { source /usr/share/bash-completion/bash_completion || exit 9; }
        source "$1" || exit 8
        shift 2
        cd "$T/files" || exit 7
        COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _declvirt
        [ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
        _ "$COMPLETION" "$bc" "$@"
}
expect() { # expect NAME WANT [bc] WORD...
    local name=$1 want=$2 got; shift 2
    got=$(T=$T complete_words "$@" 2>&1)
    [ "$got" = "$want" ] && ok "$name" || not_ok "$name" "want '$want' got '$got'"
}

out=$(bash --norc --noprofile -c 'source "$1" && complete -p declvirt' _ "$COMPLETION" 2>&1)
[ "$out" = "complete -F _declvirt declvirt" ] && ok "complete -p declvirt" || not_ok "complete -p declvirt" "$out"

C=$T/agent.conf
for bc in "" bc; do
    if [ -n "$bc" ] && [ ! -r /usr/share/bash-completion/bash_completion ]; then
        skip "with bash-completion loaded" "the bash-completion package is not installed"
        continue
    fi
    w=${bc:+" (bash-completion loaded)"}
    expect "commands$w" "agent help native plan status validate version wait " $bc declvirt ""
    expect "a command by prefix$w" "validate version " $bc declvirt v
    expect "global options$w" "--config --help --version " $bc declvirt --
    expect "command after --config FILE$w" "status " $bc declvirt --config "$C" sta
    expect "agent options$w" "--dry-run --help --once " $bc declvirt agent --
    expect "status options$w" "--check --help --json " $bc declvirt -c "$C" status --
    expect "wait options$w" "--timeout " $bc declvirt wait --t
    expect "validate options$w" "--quiet " $bc declvirt validate --q
    expect "object ids from status.xml$w" \
        "domain/web1 network/lab pool/images volume/images/vm:disk0 volume/images/web1.qcow2 " \
        $bc declvirt --config "$C" status ""
    expect "object ids by prefix$w" "volume/images/vm:disk0 volume/images/web1.qcow2 " \
        $bc declvirt --config "$C" status vol
    expect "a relative state_dir is relative to the config$w" "network/lab2 " \
        $bc declvirt --config "$T/other/agent.conf" status net
    expect "--config=FILE$w" "network/lab " $bc declvirt "--config=$C" status n
    expect "validate completes xml files and directories$w" "a.xml b.xml sub " $bc declvirt validate ""
    expect "wait completes ids and files$w" \
        "a.xml b.xml domain/web1 network/lab pool/images sub volume/images/vm:disk0 volume/images/web1.qcow2 " \
        $bc declvirt -c "$C" wait ""
    expect "native completes files$w" "a.xml " $bc declvirt native a
    expect "--timeout takes a duration$w" "30 300 " $bc declvirt wait --timeout 3
    expect "version takes nothing$w" "" $bc declvirt version ""
done
# With bash-completion, a volume name with ':' is completed across the word break.
if [ -r /usr/share/bash-completion/bash_completion ]; then
    got=$(T=$T bash --norc --noprofile -c '
        source /usr/share/bash-completion/bash_completion; source "$1"; cd "$T/files"
        COMP_LINE="declvirt --config $2 status volume/images/vm:d"; COMP_POINT=${#COMP_LINE}
        COMP_WORDS=(declvirt --config "$2" status volume/images/vm : d); COMP_CWORD=6
        _declvirt; printf "%s\n" "${COMPREPLY[@]}"' _ "$COMPLETION" "$C" 2>&1)
    [ "$got" = "disk0" ] && ok "a volume name with ':' completes after the colon" ||
        not_ok "a volume name with ':' completes after the colon" "got '$got'"
fi
