#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# systemd/declvirt.service: `systemd-analyze verify` accepts it (with the man pages of
# its Documentation= on MANPATH), and it carries what README.md ("Installing and
# running under systemd") describes.
source "$(dirname "$0")/../helpers/lib.sh"
UNIT=$REPO/systemd/declvirt.service
command -v systemd-analyze >/dev/null 2>&1 ||
    skip_all "systemd-analyze is not installed (Debian package systemd)"
[ -x "$DECLVIRT" ] || skip_all "$DECLVIRT is not built"
T=$(mktemp -d /tmp/declvirt-unit.XXXXXX)

# verify checks that ExecStart= exists: point it at the built binary, as `make
# install` points it at $(PREFIX)/bin/declvirt.
sed "s|/usr/local/bin/declvirt|$DECLVIRT|" "$UNIT" >"$T/declvirt.service"
mkdir -p "$T/man/man5" "$T/man/man8"
cp "$REPO/docs/declvirt.8" "$T/man/man8/"
cp "$REPO/docs/agent.conf.5" "$REPO/docs/declvirt-xml.5" "$T/man/man5/"
out=$(MANPATH=$T/man systemd-analyze verify --man=no "$T/declvirt.service" 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -qiE 'failed to (connect|initialize)|not booted|Failed to set up' <<<"$out"; then
    skip "systemd-analyze verify" "systemd-analyze cannot run here: $(head -1 <<<"$out")"
elif [ $rc -eq 0 ] && [ -z "$out" ]; then
    ok "systemd-analyze verify accepts the unit"
else
    not_ok "systemd-analyze verify accepts the unit" "$out"
fi
if command -v man >/dev/null 2>&1; then
    out=$(MANPATH=$T/man systemd-analyze verify --man=yes "$T/declvirt.service" 2>&1) &&
        [ -z "$out" ] && ok "the man pages in Documentation= are found" ||
        not_ok "the man pages in Documentation= are found" "$out"
else
    skip "the man pages in Documentation= are found" "man is not installed"
fi

for want in 'Type=notify' 'ExecStart=/usr/local/bin/declvirt agent' 'ExecReload=/bin/kill -HUP $MAINPID' \
    'Restart=on-failure' 'WatchdogSec=60' 'KillMode=process' 'RuntimeDirectory=declvirt' \
    'RuntimeDirectoryPreserve=yes' 'StateDirectory=declvirt' 'ConfigurationDirectory=declvirt' \
    'WantedBy=multi-user.target'; do
    grep -qxF "$want" "$UNIT" && ok "the unit has $want" || not_ok "the unit has $want"
done
# Options that would give the agent a mount namespace of its own hide the mounts of
# fs/netfs pools from the host and from the guests.
bad=$(grep -E '^(ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|PrivateMounts|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths|ProtectKernel[A-Za-z]*|ProtectControlGroups|ProtectProc|TemporaryFileSystem|BindPaths|NoNewPrivileges|RestrictNamespaces|MemoryDenyWriteExecute)=' "$UNIT")
[ -z "$bad" ] && ok "no sandboxing that breaks pools or guests" || not_ok "no sandboxing that breaks pools or guests" "$bad"
# Every directive is explained: the line before each one in [Service] is a comment
# or another directive of the same group.
n=$(awk '/^\[Service\]/{s=1; next} /^\[/{s=0} s && /^[A-Za-z]/ && prev !~ /^#/ && prev !~ /^[A-Za-z]/ {print} {prev=$0}' "$UNIT" | wc -l)
[ "$n" -eq 0 ] && ok "each group of directives has a comment" || not_ok "each group of directives has a comment" "$n without"

rm -rf "$T"
