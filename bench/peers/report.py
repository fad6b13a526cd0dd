# SPDX-License-Identifier: LGPL-2.1-or-later
"""The table, JSON and plots of `make bench-peers` from the samples peers.py measured.
Ratios are taken pair by pair within one repetition, then their median (min-max)."""

import json
import os
import shutil
import statistics
import subprocess

PEERS = ["declvirt", "declvirt-status", "virsh-step", "virsh-session", "ansible", "floor"]
TITLES = {"declvirt": "declvirt", "declvirt-status": "declvirt status.xml", "virsh-step": "virsh per step", "virsh-session": "virsh session",
          "ansible": "ansible", "floor": "floor"}
RATIOS = [("virsh-step", "declvirt"), ("virsh-session", "declvirt"), ("ansible", "declvirt"),
          ("declvirt", "floor"), ("declvirt-status", "floor")]


def item_title(item, meta):
    kind, _, n = item.partition("-")
    if kind == "pools":
        return f"{n} pools + {2 * int(n)} volumes"
    if kind == "noop":
        return f"no-change pass, {n} pools"
    if item == "dom-start":
        return f"{meta['K']} domains: start"
    if item == "dom-stop":
        return f"{meta['K']} domains: stop"
    return item


def spread(values):
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def fmt(x):
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_spread(s, unit=""):
    if s is None:
        return "-"
    return f"{fmt(s['median'])}{unit} [{fmt(s['min'])}-{fmt(s['max'])}]"


def paired(a, b):
    """a[i]/b[i] for the repetitions where both succeeded."""
    return [x["ms"] / y["ms"] for x, y in zip(a, b)
            if "ms" in x and "ms" in y and y["ms"] > 0]


def summarize(samples, meta):
    summary = {}
    for item, per_peer in samples.items():
        s = {"title": item_title(item, meta), "peers": {}, "ratios": {}}
        for peer, xs in per_peer.items():
            ok = [x["ms"] for x in xs if "ms" in x]
            errs = [x["error"] for x in xs if "error" in x]
            ent = {"ms": spread(ok), "failed": len(errs)}
            if errs:
                ent["error"] = errs[0]
            for key in ("agent_cpu_ms", "agent_vmrss_kib", "agent_vmhwm_kib", "daemon_cpu_ms",
                        "daemon_vmrss_kib", "daemon_vmhwm_kib", "client_cpu_ms",
                        "agent_pass_cpu_ms", "agent_last_pass_duration_ms"):
                vals = [x[key] for x in xs if x.get(key) is not None]
                if vals:
                    ent[key] = spread(vals)
            s["peers"][peer] = ent
        for a, b in RATIOS:
            if a in per_peer and b in per_peer:
                r = paired(per_peer[a], per_peer[b])
                if r:
                    s["ratios"][f"{a}/{b}"] = spread(r)
        if item == "dom-start" or item == "dom-stop":
            for dv, key in (("declvirt", "overhead_per_domain_ms"),
                            ("declvirt-status", "status_overhead_per_domain_ms")):
                if dv in per_peer and "floor" in per_peer:
                    d = [(x["ms"] - y["ms"]) / meta["K"]
                         for x, y in zip(per_peer[dv], per_peer["floor"])
                         if "ms" in x and "ms" in y]
                    if d:
                        s[key] = spread(d)
        summary[item] = s
    return summary


def order(summary):
    def key(item):
        kind, _, n = item.partition("-")
        return ({"pools": 0, "noop": 1, "dom": 2}.get(kind, 3), int(n) if n.isdigit() else 0, item)
    return sorted(summary, key=key)


def table(summary, meta):
    peers = [p for p in PEERS if any(p in summary[i]["peers"] for i in summary)]
    lines = []
    w0 = 30
    head = f"{'work (ms: median [min-max])':{w0}s}" + "".join(f" {TITLES[p]:>21s}" for p in peers)
    lines += [head, "-" * len(head)]
    for item in order(summary):
        s = summary[item]
        row = f"{s['title']:{w0}s}"
        for p in peers:
            e = s["peers"].get(p)
            if e is None:
                cell = "n/a"
            elif e["ms"] is None:
                cell = "FAILED"
            else:
                cell = fmt_spread(e["ms"]) + ("*" if e["failed"] else "")
            row += f" {cell:>21s}"
        lines.append(row)
    lines.append("")
    ratio_cols = [f"{a}/{b}" for a, b in RATIOS]
    head = f"{'ratios, paired per run':{w0}s}" + "".join(
        f" {TITLES[a] + '/' + TITLES[b]:>24s}" for a, b in RATIOS)
    lines += [head, "-" * len(head)]
    for item in order(summary):
        s = summary[item]
        row = f"{s['title']:{w0}s}"
        for c in ratio_cols:
            r = s["ratios"].get(c)
            row += f" {(fmt_spread(r, 'x') if r else '-'):>24s}"
        lines.append(row)
    lines.append("")
    lines.append("resources (median [min-max])")
    for item in order(summary):
        s = summary[item]
        dv = s["peers"].get("declvirt", {})
        parts = []
        if "agent_pass_cpu_ms" in dv:
            parts.append(f"agent CPU of the pass {fmt_spread(dv['agent_pass_cpu_ms'])} ms")
        elif "agent_cpu_ms" in dv:
            parts.append(f"agent CPU {fmt_spread(dv['agent_cpu_ms'])} ms")
        if "agent_vmhwm_kib" in dv:
            parts.append(f"agent VmHWM {dv['agent_vmhwm_kib']['median'] / 1024:.1f} MiB")
        for p in ("virsh-step", "virsh-session", "ansible"):
            e = s["peers"].get(p, {})
            if "daemon_cpu_ms" in e:
                parts.append(f"libvirtd CPU ({TITLES[p]}) {fmt_spread(e['daemon_cpu_ms'])} ms")
        lv = [s["peers"][p]["daemon_vmhwm_kib"]["max"] for p in s["peers"]
              if "daemon_vmhwm_kib" in s["peers"][p]]
        if lv:
            parts.append(f"libvirtd VmHWM {max(lv) / 1024:.1f} MiB")
        if "overhead_per_domain_ms" in s:
            parts.append("(declvirt - floor)/K "
                         f"{fmt_spread(s['overhead_per_domain_ms'])} ms")
        if "status_overhead_per_domain_ms" in s:
            parts.append("(declvirt status.xml - floor)/K "
                         f"{fmt_spread(s['status_overhead_per_domain_ms'])} ms")
        if parts:
            lines.append(f"  {s['title']}: " + "; ".join(parts))
    failed = [(summary[i]["title"], p, e["error"]) for i in order(summary)
              for p, e in summary[i]["peers"].items() if e.get("error")]
    if failed:
        lines.append("")
        lines.append("failures (* in the table: some runs failed; first error shown)")
        for t, p, err in failed:
            lines.append(f"  {t} / {p}: {err[:300]}")
    for p, why in meta.get("skipped", {}).items():
        lines.append(f"  {p} skipped: {why}")
    return "\n".join(lines)


GNUPLOT = r"""
set terminal {term}
set output '{out}'
set title "{title}"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
set logscale y
set ylabel "ms (median, bar: min-max), log scale"
set yrange [{ymin}:*]
set grid ytics
set key top left
set xtics rotate by -20 nomirror
set datafile missing "-"
set datafile separator "\t"
plot {plots}
"""


def plot(summary, meta, outdir):
    gp = shutil.which("gnuplot")
    if gp is None:
        return ["gnuplot is not installed: no plots"]
    peers = [p for p in PEERS if any(p in summary[i]["peers"] for i in summary)]
    dat = os.path.join(outdir, "peers.dat")
    with open(dat, "w") as f:
        f.write("# item\t" + "\t".join(f"{p}\t{p}_min\t{p}_max" for p in peers) + "\n")
        for item in order(summary):
            s = summary[item]
            cells = []
            for p in peers:
                e = s["peers"].get(p)
                m = e["ms"] if e else None
                cells += [f"{m['median']:.3f}", f"{m['min']:.3f}", f"{m['max']:.3f}"] if m \
                    else ["-", "-", "-"]
            f.write(s["title"] + "\t" + "\t".join(cells) + "\n")
    vals = [s["peers"][p]["ms"]["min"] for s in summary.values() for p in s["peers"]
            if s["peers"][p]["ms"]]
    ymin = 10 ** int(__import__("math").floor(__import__("math").log10(max(min(vals), 0.01)))) \
        if vals else 1
    plots = ", ".join(
        f"'{dat}' using {2 + 3 * i}:{3 + 3 * i}:{4 + 3 * i}:xtic(1) title '{TITLES[p]}'"
        for i, p in enumerate(peers))
    notes = []
    for term, ext in (("svg size 1100,550 dynamic font 'sans,11'", "svg"),
                      ("pngcairo size 1100,550 font 'sans,10'", "png")):
        out = os.path.join(outdir, f"peers.{ext}")
        script = GNUPLOT.format(term=term, out=out, plots=plots, ymin=ymin,
                                title=f"declvirt and its peers, {meta['cpus']} CPUs, "
                                      f"{meta['runs']} runs each")
        r = subprocess.run([gp], input=script, text=True, capture_output=True, timeout=60)
        if r.returncode != 0:
            notes.append(f"gnuplot {ext}: {r.stderr.strip()[:200]}")
        else:
            notes.append(f"plot: {out}")
    return notes


def report(samples, meta, outdir):
    os.makedirs(outdir, exist_ok=True)
    summary = summarize(samples, meta)
    text = table(summary, meta)
    out = {"meta": meta, "summary": summary, "samples": samples}
    path = os.path.join(outdir, "peers.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    with open(os.path.join(outdir, "peers.txt"), "w") as f:
        f.write(text + "\n")
    notes = plot(summary, meta, outdir)
    print()
    print(f"declvirt and its peers: {meta['cpus']} CPUs, load {meta['load_start'][0]:.2f} -> "
          f"{meta['load_end'][0]:.2f}, {meta['runs']} runs, {meta['seconds']:.0f} s")
    print(text)
    print()
    print(f"JSON: {path}")
    for n in notes:
        print(n)
