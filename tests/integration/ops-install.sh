#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# `make install` and `make uninstall` into a DESTDIR, with PREFIX honoured: the binary,
# the unit (with ExecStart= pointing at PREFIX), man pages, bash completion, a default
# agent.conf that is never overwritten, an empty desired.d; uninstall removes what
# install put there except the content of /etc/declvirt.
source "$(dirname "$0")/../helpers/lib.sh"
B=${BUILD:-build}
[ -x "$REPO/$B/declvirt" ] || skip_all "$B/declvirt is not built"
need_prog make
T=$(mktemp -d /tmp/declvirt-install.XXXXXX)
D=$T/root
# -o: the binary is taken as it is, never rebuilt by this test.
mk() { make -s -C "$REPO" BUILD="$B" -o "$B/declvirt" DESTDIR="$D" "$@" >"$T/make.out" 2>&1; }

for PREFIX in /usr /opt/dv; do
    rm -rf "$D"
    if mk PREFIX=$PREFIX install; then ok "make install PREFIX=$PREFIX"; else not_ok "make install PREFIX=$PREFIX" "$(cat "$T/make.out")"; fi
    files=(
        "$PREFIX/bin/declvirt:755"
        "$PREFIX/lib/systemd/system/declvirt.service:644"
        "$PREFIX/share/man/man8/declvirt.8:644"
        "$PREFIX/share/man/man5/agent.conf.5:644"
        "$PREFIX/share/man/man5/declvirt-xml.5:644"
        "$PREFIX/share/bash-completion/completions/declvirt:644"
        "/etc/declvirt/agent.conf:644"
    )
    bad=
    for f in "${files[@]}"; do
        m=$(stat -c %a "$D${f%:*}" 2>/dev/null) || { bad+=" ${f%:*}(missing)"; continue; }
        [ "$m" = "${f##*:}" ] || bad+=" ${f%:*}(mode $m)"
    done
    [ -z "$bad" ] && ok "PREFIX=$PREFIX: every file is installed with its mode" || not_ok "PREFIX=$PREFIX: every file is installed with its mode" "$bad"
    grep -qx "ExecStart=$PREFIX/bin/declvirt agent" "$D$PREFIX/lib/systemd/system/declvirt.service" &&
        ok "PREFIX=$PREFIX: the unit starts $PREFIX/bin/declvirt" ||
        not_ok "PREFIX=$PREFIX: the unit starts $PREFIX/bin/declvirt" "$(grep ExecStart "$D$PREFIX/lib/systemd/system/declvirt.service")"
    [ -d "$D/etc/declvirt/desired.d" ] && [ -z "$(ls -A "$D/etc/declvirt/desired.d")" ] &&
        ok "PREFIX=$PREFIX: an empty desired.d" || not_ok "PREFIX=$PREFIX: an empty desired.d"
    out=$("$D$PREFIX/bin/declvirt" version 2>&1) && [[ $out == declvirt\ * ]] &&
        ok "PREFIX=$PREFIX: the installed binary runs" || not_ok "PREFIX=$PREFIX: the installed binary runs" "$out"
    out=$("$D$PREFIX/bin/declvirt" --config "$D/etc/declvirt/agent.conf" validate "$REPO/desired.d/example-pool.xml" 2>&1)
    rc=$?
    # The installed default limits storage_locations; the example's /var/tmp pool is outside.
    [ $rc -eq 1 ] && grep -q "outside storage_locations" <<<"$out" &&
        ok "PREFIX=$PREFIX: the installed agent.conf loads (and limits storage_locations)" ||
        not_ok "PREFIX=$PREFIX: the installed agent.conf loads (and limits storage_locations)" "exit $rc: $out"
done

# A changed agent.conf and files in desired.d survive a second install and an uninstall.
echo "log_level: debug" >>"$D/etc/declvirt/agent.conf"
echo "<pool/>" >"$D/etc/declvirt/desired.d/mine.xml"
sum=$(md5sum <"$D/etc/declvirt/agent.conf")
mk PREFIX=/opt/dv install
[ "$(md5sum <"$D/etc/declvirt/agent.conf")" = "$sum" ] && ok "install never overwrites agent.conf" ||
    not_ok "install never overwrites agent.conf"
if mk PREFIX=/opt/dv uninstall; then ok "make uninstall"; else not_ok "make uninstall" "$(cat "$T/make.out")"; fi
left=$(find "$D" -type f | sed "s|^$D||" | sort | tr '\n' ' ')
[ "$left" = "/etc/declvirt/agent.conf /etc/declvirt/desired.d/mine.xml " ] &&
    ok "uninstall removes every installed file but /etc/declvirt's content" ||
    not_ok "uninstall removes every installed file but /etc/declvirt's content" "left: $left"
