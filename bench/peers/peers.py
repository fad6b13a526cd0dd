#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Measures the work items of `make bench-peers` with each peer (declvirt, virsh per step,
virsh session, Ansible, the floor), prints one table and writes bench/results/peers.json + plots.

Started by bench/peers/run (which installs packages, copies the agent, builds the floor).
Every child has a timeout; everything started here is stopped by PID at exit."""

import atexit
import datetime
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DECLVIRT = os.environ["DECLVIRT_BIN"]
FLOOR = os.environ["FLOOR_BIN"]
RESULTS = os.environ["RESULTS_DIR"]
RUNS = int(os.environ.get("RUNS", "5"))
NS = [int(x) for x in os.environ.get("N", "20 200").split()]
K = int(os.environ.get("K", "10"))
CAPACITY = int(os.environ.get("CAPACITY", str(1 << 30)))
PEERS = os.environ.get("PEERS", "declvirt virsh-step virsh-session ansible floor").split()
ANSIBLE_MAX_N = int(os.environ.get("ANSIBLE_MAX_N", "20"))
ANSIBLE_BIG_RUNS = int(os.environ.get("ANSIBLE_BIG_RUNS", "1"))
QEMU = os.environ.get("QEMU", "/usr/bin/qemu-system-x86_64")
QEMU_IMG = os.environ.get("QEMU_IMG", "/usr/bin/qemu-img")
TIMEOUT = float(os.environ.get("TIMEOUT", "600"))
KEEP = os.environ.get("KEEP", "0") == "1"
PERF_DIR = os.environ.get("PERF_DIR", "")
# The agent's max_parallel, and the floor's limit on qemu-img processes at once. 16 >= K:
# the floor starts all K QEMUs at once, so the agent may too (its default, 4, would start
# them in waves and measure the limit, not the agent).
MAX_PARALLEL = int(os.environ.get("MAX_PARALLEL", "16"))
NS_URI = "https://declvirt.dev/xmlns/policy/1"
HZ = os.sysconf("SC_CLK_TCK")

ROOT = tempfile.mkdtemp(prefix="dvpeers.", dir="/tmp")
os.chmod(ROOT, 0o755)
TOKEN = os.path.basename(ROOT).split(".")[1].lower()
PREFIX = "dvp" + re.sub(r"[^a-z0-9]", "x", TOKEN)   # names of every libvirt object we make
STARTED = []          # Popen objects we started (agents, libvirtd)
CREATED_DIRS = []     # host directories libvirtd insists on that we created (removed if empty)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def now():
    return time.monotonic()


class PeerError(Exception):
    pass


# ---- /proc ------------------------------------------------------------------------------

def proc_cpu_ms(pid):
    """utime+stime in ms (10 ms ticks) and the threads' schedstat run time in ms (ns)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    ns = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                ns += int(f.read().split()[0])
        except OSError:
            pass
    return ticks * 1000.0 / HZ, ns / 1e6


def proc_mem_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def children_cpu_ms():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1000.0


def cmdline_has(pid, needle):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return needle.encode() in f.read()
    except OSError:
        return False


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_matching(needle):
    """SIGKILL, by PID, every process whose command line contains needle (our temp root or
    our name prefix: nothing else has them). Returns how many."""
    n = 0
    for _ in range(3):
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()
                and cmdline_has(int(p), needle)]
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
                n += 1
            except OSError:
                pass
        end = now() + 5
        while now() < end and any(alive(p) for p in pids):
            time.sleep(0.02)
    return n


def run(argv, timeout=TIMEOUT, stdin_text=None, env=None, what=None):
    """Runs a child in its own session; on timeout kills its whole group. Raises PeerError
    with the tail of its output when it fails."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True, env=env)
    try:
        out, _ = p.communicate(stdin_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise PeerError(f"{what or argv[0]}: timed out after {timeout:.0f} s")
    if p.returncode != 0:
        tail = " | ".join(out.strip().splitlines()[-4:])
        raise PeerError(f"{what or argv[0]}: exit {p.returncode}: {tail}")
    return out


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


# ---- the objects, in each peer's format ----------------------------------------------------

def pool_names(n):
    return [f"{PREFIX}p{i}" for i in range(n)]


VOLS = [("v.raw", "raw"), ("v.qcow2", "qcow2")]


def volume_xml(pool, name, fmt, policy=True):
    pol = f"  <dv:policy xmlns:dv='{NS_URI}' pool='{pool}'/>\n" if policy else ""
    return (f"<volume>\n  <name>{name}</name>\n{pol}"
            f"  <capacity unit='bytes'>{CAPACITY}</capacity>\n"
            f"  <allocation unit='bytes'>0</allocation>\n"
            f"  <target>\n    <format type='{fmt}'/>\n  </target>\n</volume>\n")


def pool_xml(name, path):
    return (f"<pool type='dir'>\n  <name>{name}</name>\n"
            f"  <target>\n    <path>{path}</path>\n  </target>\n</pool>\n")


def domain_names(k, tag):
    return [f"{PREFIX}{tag}{i}" for i in range(k)]


def domain_xml(name, state=None, declvirt=True):
    pol = ""
    if declvirt:
        st = f" state='{state}'" if state else ""
        pol = (f"  <metadata>\n    <dv:policy xmlns:dv='{NS_URI}'{st} shutdown-timeout='0'/>\n"
               f"  </metadata>\n")
    emu = "" if declvirt else f"  <devices>\n    <emulator>{QEMU}</emulator>\n  </devices>\n"
    return (f"<domain type='qemu'>\n  <name>{name}</name>\n{pol}"
            f"  <memory unit='MiB'>32</memory>\n  <vcpu>1</vcpu>\n"
            f"  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n{emu}</domain>\n")


def verify_pools(paths):
    """The end state on disk, the same check for every peer (outside the timing)."""
    for p in paths:
        raw = os.path.join(p, "v.raw")
        st = os.stat(raw)
        if st.st_size != CAPACITY or st.st_blocks != 0:
            raise PeerError(f"{raw}: size {st.st_size}, blocks {st.st_blocks}")
        with open(os.path.join(p, "v.qcow2"), "rb") as f:
            if f.read(4) != b"QFI\xfb":
                raise PeerError(f"{p}/v.qcow2 is not qcow2")


# ---- declvirt -----------------------------------------------------------------------------

def phases(root, phase):
    """How many managed objects of status.xml are in phase."""
    return sum(1 for o in root.iter("object")
               if o.get("managed") != "no" and o.get("phase") == phase)


class Agent:
    def __init__(self, tag, qemu=False):
        self.root = tempfile.mkdtemp(prefix=f"dv-{tag}.", dir=ROOT)
        for d in ("desired", "state", "run", "stage", "pools"):
            os.mkdir(os.path.join(self.root, d))
        self.conf = os.path.join(self.root, "agent.conf")
        conf = (f"desired_dir: {self.root}/desired\nstate_dir: {self.root}/state\n"
                f"run_dir: {self.root}/run\nresync_interval: 1h\ndebounce: 10ms\n"
                f"removal_delay: 2s\nmax_parallel: {MAX_PARALLEL}\n"
                f"log_level: {os.environ.get('AGENT_LOG_LEVEL', 'warning')}\n"
                f"strict_permissions: true\n")
        if qemu:
            conf += f"qemu:\n  binary: {QEMU}\n  accel: tcg\n"
        write(self.conf, conf)
        self.log = open(os.path.join(self.root, "agent.log"), "w")
        self.proc = subprocess.Popen([DECLVIRT, "--config", self.conf, "agent"],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        STARTED.append(self.proc)
        status = os.path.join(self.root, "state", "status.xml")
        end = now() + 10
        while not os.path.exists(status):
            if self.proc.poll() is not None or now() > end:
                raise PeerError("the agent did not start: " + self.log_tail())
            time.sleep(0.01)
        self.perf = None
        if PERF_DIR:
            # PERF_DIR=DIR: profile every agent (for finding where its time goes; this
            # perturbs the figures, never use it for the documented run).
            out = os.path.join(PERF_DIR, f"perf-{tag}-{os.path.basename(self.root)}.data")
            self.perf = subprocess.Popen(["perf", "record", "-q", "-g", "-o", out, "-p",
                                          str(self.proc.pid)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
            STARTED.append(self.perf)
            time.sleep(0.5)

    def log_tail(self):
        try:
            with open(os.path.join(self.root, "agent.log")) as f:
                return " | ".join(f.read().strip().splitlines()[-4:])
        except OSError:
            return ""

    def stage(self, name, text):
        write(os.path.join(self.root, "stage", name), text)

    def move_in(self, names):
        for n in names:
            os.rename(os.path.join(self.root, "stage", n), os.path.join(self.root, "desired", n))

    def watch(self, predicate, t0):
        """A thread that polls status.xml every 0.5 ms and keeps the time (ms after t0) of
        the first version for which predicate(root element) holds: the agent's own time to
        the end state, without `declvirt wait`'s 100 ms poll."""
        status = os.path.join(self.root, "state", "status.xml")
        box = {"stop": False, "ms": None}

        def loop():
            last = None
            while not box["stop"]:
                try:
                    st = os.stat(status)
                    key = (st.st_ino, st.st_mtime_ns, st.st_size)
                    if key != last:
                        t = now()
                        last = key
                        if predicate(ET.parse(status).getroot()):
                            box["ms"] = (t - t0) * 1000
                            return
                except (OSError, ET.ParseError):
                    pass
                time.sleep(0.0005)
        th = threading.Thread(target=loop, daemon=True)
        th.start()
        box["thread"] = th
        return box

    @staticmethod
    def watch_end(box, res):
        box["thread"].join(timeout=2)
        box["stop"] = True
        res["status_ms"] = box["ms"]

    def wait(self):
        run([DECLVIRT, "--config", self.conf, "wait", "--timeout", str(int(TIMEOUT))],
            timeout=TIMEOUT + 10, what="declvirt wait")

    def usage(self):
        ticks_ms, sched_ms = proc_cpu_ms(self.proc.pid)
        mem = proc_mem_kib(self.proc.pid)
        return {"agent_cpu_ms": ticks_ms, "agent_cpu_sched_ms": sched_ms,
                "agent_vmrss_kib": mem.get("VmRSS"), "agent_vmhwm_kib": mem.get("VmHWM")}

    def noop_pass(self):
        """SIGHUP (reload + one full pass); the pass ends at the next change of status.xml
        (the heartbeat touch or a rewrite), polled every 0.2 ms."""
        status = os.path.join(self.root, "state", "status.xml")
        time.sleep(0.3)
        before = os.stat(status).st_mtime_ns
        c0 = proc_cpu_ms(self.proc.pid)[1]
        t0 = now()
        os.kill(self.proc.pid, signal.SIGHUP)
        end = t0 + 30
        while os.stat(status).st_mtime_ns == before:
            if now() > end:
                raise PeerError("no pass seen within 30 s after SIGHUP")
            time.sleep(0.0002)
        wall = (now() - t0) * 1000
        time.sleep(0.1)
        c1 = proc_cpu_ms(self.proc.pid)[1]
        out = {"ms": wall, "agent_pass_cpu_ms": c1 - c0}
        try:
            st = json.loads(run([DECLVIRT, "--config", self.conf, "status", "--json"], timeout=30))
            d = st.get("last_pass_duration_ms") if isinstance(st, dict) else None
            if d is None and isinstance(st, dict):
                d = (st.get("agent") or {}).get("last_pass_duration_ms")
            out["agent_last_pass_duration_ms"] = d
        except (PeerError, ValueError):
            pass
        return out

    def stop(self):
        if self.perf:
            self.perf.send_signal(signal.SIGINT)
            try:
                self.perf.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.perf.kill()
            STARTED.remove(self.perf)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        STARTED.remove(self.proc)
        self.log.close()
        kill_matching(self.root + "/")
        if not KEEP:
            shutil.rmtree(self.root, ignore_errors=True)


def declvirt_pools(n):
    a = Agent(f"p{n}")
    try:
        names = []
        for p in pool_names(n):
            a.stage(f"{p}.xml", pool_xml(p, f"{a.root}/pools/{p}"))
            names.append(f"{p}.xml")
            for v, fmt in VOLS:
                a.stage(f"{p}.{fmt}.xml", volume_xml(p, v, fmt))
                names.append(f"{p}.{fmt}.xml")
        c0 = children_cpu_ms()
        t0 = now()
        box = a.watch(lambda r: phases(r, "ready") >= 3 * n, t0)
        a.move_in(names)
        a.wait()
        ms = (now() - t0) * 1000
        res = {"ms": ms, "client_cpu_ms": children_cpu_ms() - c0}
        Agent.watch_end(box, res)
        res.update(a.usage())
        verify_pools([f"{a.root}/pools/{p}" for p in pool_names(n)])
        noop = a.noop_pass()
        noop.update(a.usage())
        return res, noop
    finally:
        a.stop()


def declvirt_domains(k):
    a = Agent("d", qemu=True)
    try:
        names = domain_names(k, "a")
        for d in names:
            a.stage(f"{d}.xml", domain_xml(d))
        t0 = now()
        box = a.watch(lambda r: phases(r, "ready") >= k, t0)
        a.move_in([f"{d}.xml" for d in names])
        a.wait()
        start = {"ms": (now() - t0) * 1000}
        Agent.watch_end(box, start)
        start.update(a.usage())
        for d in names:
            a.stage(f"{d}.xml", domain_xml(d, state="stopped"))
        u0 = a.usage()
        t0 = now()
        box = a.watch(lambda r: phases(r, "stopped") >= k, t0)
        a.move_in([f"{d}.xml" for d in names])
        a.wait()
        stop = {"ms": (now() - t0) * 1000}
        Agent.watch_end(box, stop)
        u1 = a.usage()
        stop.update(u1)
        stop["agent_cpu_ms"] = u1["agent_cpu_ms"] - u0["agent_cpu_ms"]
        left = [p for p in os.listdir("/proc") if p.isdigit() and alive(int(p)) and
                cmdline_has(int(p), f"guest={PREFIX}a")]
        if left:
            raise PeerError(f"{len(left)} QEMU(s) still running after the stop")
        return start, stop
    finally:
        a.stop()


# ---- libvirtd -----------------------------------------------------------------------------

class Libvirtd:
    """A private libvirtd: its own libvirtd.conf (unix socket in our temp dir, auth none, no
    TCP). The privileged qemu and storage drivers insist on /etc/libvirt, /run/libvirt,
    /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt; it runs in a mount namespace of
    its own where our temp directories are bound over those (and over /etc/passwd and
    /etc/group, which gain the libvirt-qemu user the qemu driver looks up even when told to
    run QEMU as root), so it writes nothing outside our temp dir. Mount points that do not
    exist on the host are created empty and removed at exit."""

    def __init__(self):
        self.root = os.path.join(ROOT, "libvirtd")
        binds = {}
        for d, target in (("etc", "/etc/libvirt"), ("run", "/run"), ("varlib", "/var/lib/libvirt"),
                          ("varcache", "/var/cache/libvirt"), ("varlog", "/var/log/libvirt")):
            os.makedirs(os.path.join(self.root, d))
            binds[os.path.join(self.root, d)] = target
            if not os.path.isdir(target):
                os.makedirs(target)
                CREATED_DIRS.append(target)
        os.makedirs(os.path.join(self.root, "sock"))
        for f in ("passwd", "group"):
            shutil.copy(f"/etc/{f}", os.path.join(self.root, f))
            binds[os.path.join(self.root, f)] = f"/etc/{f}"
        with open(os.path.join(self.root, "passwd"), "a+") as f:
            f.seek(0)
            if not re.search(r"^libvirt-qemu:", f.read(), re.M):
                f.write("libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin\n")
        with open(os.path.join(self.root, "group"), "a+") as f:
            f.seek(0)
            text = f.read()
            if not re.search(r"^libvirt-qemu:", text, re.M):
                f.write("libvirt-qemu:x:64055:\n")
            if not re.search(r"^kvm:", text, re.M):
                f.write("kvm:x:64056:\n")
        self.sock = os.path.join(self.root, "sock", "libvirt-sock")
        self.uri = f"qemu+unix:///system?socket={self.sock}"
        conf = os.path.join(self.root, "libvirtd.conf")
        write(conf, f'unix_sock_dir = "{self.root}/sock"\nunix_sock_rw_perms = "0700"\n'
                    f'auth_unix_rw = "none"\nauth_unix_ro = "none"\n'
                    f'log_outputs = "3:file:{self.root}/libvirtd.log"\n')
        # QEMU as root, as the agent runs it; no virtlogd (not started here: QEMU's output to a
        # file, as the agent does); no security driver (neither AppArmor nor SELinux is
        # active here, and the agent has none).
        write(os.path.join(self.root, "etc", "qemu.conf"),
              'user = "root"\ngroup = "root"\nstdio_handler = "file"\nsecurity_driver = "none"\n')
        script = " && ".join(f"mount --bind {src} {dst}" for src, dst in binds.items())
        # Under a subreaper that reaps at once (floor reaper; see floor.c for why).
        pidfile = os.path.join(self.root, "libvirtd.pid")
        script += f" && exec {FLOOR} reaper /usr/sbin/libvirtd --config {conf} --pid-file {pidfile}"
        self.out = open(os.path.join(self.root, "libvirtd.out"), "w")
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "--", "/bin/sh",
                                      "-c", script], stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        STARTED.append(self.proc)
        end = now() + 30
        while True:
            if self.proc.poll() is not None or now() > end:
                raise PeerError("libvirtd did not start: " + self.tail())
            if os.path.exists(self.sock):
                try:
                    run(["virsh", "-q", "-c", self.uri, "version"], timeout=10)
                    break
                except PeerError:
                    pass
            time.sleep(0.05)
        with open(pidfile) as f:
            self.pid = int(f.read().strip())
        if not cmdline_has(self.pid, "libvirtd"):
            raise PeerError(f"PID {self.pid} of {pidfile} is not libvirtd")

    def tail(self):
        text = ""
        for f in ("libvirtd.out", "libvirtd.log"):
            try:
                with open(os.path.join(self.root, f)) as fh:
                    text += fh.read()
            except OSError:
                pass
        lines = [l for l in text.splitlines() if " error " in l or "rror" in l]
        return " | ".join(lines[-3:])

    def usage(self):
        ticks_ms, _ = proc_cpu_ms(self.pid)   # ticks: they keep the CPU of exited threads
        mem = proc_mem_kib(self.pid)
        return {"daemon_cpu_ms": ticks_ms, "daemon_vmrss_kib": mem.get("VmRSS"),
                "daemon_vmhwm_kib": mem.get("VmHWM")}

    def virsh(self, args, timeout=120):
        return run(["virsh", "-q", "-c", self.uri] + args, timeout=timeout, what="virsh " + args[0])

    def session(self, lines, timeout=TIMEOUT):
        out = run(["virsh", "-q", "-c", self.uri], stdin_text="\n".join(lines) + "\nquit\n",
                  timeout=timeout, what="virsh session")
        errs = [l for l in out.splitlines() if l.startswith("error:")]
        if errs:
            raise PeerError("virsh session: " + " | ".join(errs[:3]))
        return out

    def cleanup(self):
        """Removes every pool and domain we made (outside the timing)."""
        lines = []
        for d in self.virsh(["list", "--all", "--name"]).split():
            if d.startswith(PREFIX):
                lines += [f"destroy {d}"] if d in self.virsh(["list", "--name"]).split() else []
                lines.append(f"undefine {d}")
        active = self.virsh(["pool-list", "--name"]).split()
        for p in self.virsh(["pool-list", "--all", "--name"]).split():
            if p.startswith(PREFIX):
                if p in active:
                    lines.append(f"pool-destroy {p}")
                lines.append(f"pool-undefine {p}")
        if lines:
            run(["virsh", "-q", "-c", self.uri], stdin_text="\n".join(lines) + "\n", timeout=300,
                what="virsh cleanup")

    def stop(self):
        try:
            self.cleanup()
        except PeerError as e:
            log(f"bench-peers: libvirt cleanup: {e}")
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        STARTED.remove(self.proc)
        self.out.close()


LV = None


def libvirt_pool_lines(n, base):
    lines, paths = [], []
    for p in pool_names(n):
        path = f"{base}/{p}"
        paths.append(path)
        lines += [f"pool-define-as {p} dir --target {path}", f"pool-build {p}", f"pool-start {p}"]
        for v, fmt in VOLS:
            lines.append(f"vol-create-as {p} {v} {CAPACITY} --allocation 0 --format {fmt}")
    return lines, paths


def noop_lines(n):
    lines = []
    for p in pool_names(n):
        lines.append(f"pool-info {p}")
        for v, _ in VOLS:
            lines.append(f"vol-info --pool {p} {v}")
    return lines


def timed_libvirt(fn):
    u0, c0 = LV.usage(), children_cpu_ms()
    t0 = now()
    fn()
    res = {"ms": (now() - t0) * 1000, "client_cpu_ms": children_cpu_ms() - c0}
    u1 = LV.usage()
    res.update(u1)
    res["daemon_cpu_ms"] = u1["daemon_cpu_ms"] - u0["daemon_cpu_ms"]
    return res


def virsh_pools(n, per_step):
    base = tempfile.mkdtemp(prefix="lv.", dir=ROOT)
    lines, paths = libvirt_pool_lines(n, base)
    try:
        if per_step:
            res = timed_libvirt(lambda: [LV.virsh(l.split()) for l in lines])
        else:
            res = timed_libvirt(lambda: LV.session(lines))
        verify_pools(paths)
        nl = noop_lines(n)
        if per_step:
            noop = timed_libvirt(lambda: [LV.virsh(l.split()) for l in nl])
        else:
            noop = timed_libvirt(lambda: LV.session(nl))
        return res, noop
    finally:
        LV.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def write_domain_files(names, base, declvirt):
    files = []
    for d in names:
        f = os.path.join(base, f"{d}.xml")
        write(f, domain_xml(d, declvirt=declvirt))
        files.append(f)
    return files


def virsh_domains(k, per_step):
    base = tempfile.mkdtemp(prefix="lvd.", dir=ROOT)
    names = domain_names(k, "s" if per_step else "t")
    files = write_domain_files(names, base, False)
    start_lines = [f"define {f}" for f in files] + [f"start {d}" for d in names]
    stop_lines = [f"destroy {d}" for d in names]
    try:
        if per_step:
            start = timed_libvirt(lambda: [LV.virsh(l.split()) for l in start_lines])
            stop = timed_libvirt(lambda: [LV.virsh(l.split()) for l in stop_lines])
        else:
            start = timed_libvirt(lambda: LV.session(start_lines))
            stop = timed_libvirt(lambda: LV.session(stop_lines))
        return start, stop
    finally:
        LV.cleanup()
        kill_matching(f"guest={PREFIX}{'s' if per_step else 't'}")
        shutil.rmtree(base, ignore_errors=True)


# ---- Ansible ------------------------------------------------------------------------------

def ansible_env():
    env = dict(os.environ)
    home = os.path.join(ROOT, "ansible-home")
    os.makedirs(home, exist_ok=True)
    env.update({"HOME": home, "ANSIBLE_LOCAL_TEMP": f"{home}/tmp",
                "ANSIBLE_REMOTE_TEMP": f"{home}/rtmp", "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCALHOST_WARNING": "0",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
                "ANSIBLE_CONFIG": os.path.join(home, "ansible.cfg")})
    return env


def playbook(name, varsd):
    vf = os.path.join(ROOT, "ansible-vars.json")
    write(vf, json.dumps(varsd))
    run(["ansible-playbook", "-c", "local", "-i", "localhost,", "-e", f"@{vf}",
         os.path.join(REPO, "bench", "peers", "ansible", name)],
        env=ansible_env(), what=f"ansible-playbook {name}")


def ansible_pools(n):
    base = tempfile.mkdtemp(prefix="an.", dir=ROOT)
    pools = [{"name": p, "xml": pool_xml(p, f"{base}/{p}"), "path": f"{base}/{p}"}
             for p in pool_names(n)]
    vols = [{"pool": p["name"], "name": v, "format": fmt, "path": f"{p['path']}/{v}"}
            for p in pools for v, fmt in VOLS]
    varsd = {"uri": LV.uri, "pools": pools, "volumes": vols, "capacity": CAPACITY}
    try:
        res = timed_libvirt(lambda: playbook("pools.yml", varsd))
        verify_pools([p["path"] for p in pools])
        noop = timed_libvirt(lambda: playbook("pools.yml", varsd))
        return res, noop
    finally:
        LV.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def ansible_domains(k):
    names = domain_names(k, "n")
    varsd = {"uri": LV.uri, "domains": [{"name": d, "xml": domain_xml(d, declvirt=False)}
                                         for d in names]}
    try:
        start = timed_libvirt(lambda: playbook("domains-start.yml", varsd))
        stop = timed_libvirt(lambda: playbook("domains-stop.yml", varsd))
        return start, stop
    finally:
        LV.cleanup()
        kill_matching(f"guest={PREFIX}n")


# ---- the floor ------------------------------------------------------------------------------

def floor_pools(n):
    base = tempfile.mkdtemp(prefix="fl.", dir=ROOT)
    try:
        c0 = children_cpu_ms()
        out = run([FLOOR, "pools", base, str(n), str(CAPACITY), QEMU_IMG, str(MAX_PARALLEL)], what="floor pools")
        res = {"ms": float(out.split()[0]), "client_cpu_ms": children_cpu_ms() - c0}
        verify_pools([f"{base}/fp{i}" for i in range(n)])
        # fp{i} holds v.raw and v.qcow2 as the others do
        return res
    finally:
        shutil.rmtree(base, ignore_errors=True)


def floor_domains(k):
    base = tempfile.mkdtemp(prefix="fld.", dir=ROOT)
    try:
        for d in ("run", "state", "desired"):
            os.mkdir(os.path.join(base, d))
        os.makedirs(os.path.join(base, "run", "qemu"))
        conf = os.path.join(base, "agent.conf")
        write(conf, f"desired_dir: {base}/desired\nstate_dir: {base}/state\nrun_dir: {base}/run\n"
                    f"qemu:\n  binary: {QEMU}\n  accel: tcg\n")
        argvs = []
        for d, f in zip(domain_names(k, "f"), write_domain_files(domain_names(k, "f"), base, True)):
            out = subprocess.run([DECLVIRT, "--config", conf, "native", f], capture_output=True,
                                 text=True, timeout=30)
            if out.returncode != 0:
                raise PeerError("declvirt native: " + out.stderr.strip())
            af = os.path.join(base, f"{d}.argv")
            write(af, out.stdout)
            argvs.append(af)
        out = run([FLOOR, "domains"] + argvs, timeout=120, what="floor domains")
        s, t = out.split()
        return {"ms": float(s)}, {"ms": float(t)}
    finally:
        kill_matching(base + "/")
        shutil.rmtree(base, ignore_errors=True)


# ---- the run --------------------------------------------------------------------------------

SAMPLES = {}   # item -> peer -> [sample dict or {"error": ...}]


def record(item, peer, sample):
    SAMPLES.setdefault(item, {}).setdefault(peer, []).append(sample)


def attempt(items, peer, fn, *args):
    """Runs one peer's work; records its samples, or its error on every item."""
    t0 = now()
    try:
        out = fn(*args)
        if not isinstance(out, tuple):
            out = (out,)
        for item, s in zip(items, out):
            record(item, peer, s)
            if s.get("status_ms") is not None:
                record(item, peer + "-status", {"ms": s["status_ms"]})
        log(f"  {peer:14s} " + "  ".join(
            f"{i}={s['ms']:.1f}ms" + (f" (status {s['status_ms']:.1f}ms)" if s.get("status_ms") else "")
            for i, s in zip(items, out)))
    except (PeerError, OSError, ValueError) as e:
        for item in items:
            record(item, peer, {"error": str(e)})
        log(f"  {peer:14s} FAILED after {now() - t0:.1f} s: {e}")


def ansible_ok():
    if shutil.which("ansible-playbook") is None:
        return "ansible-playbook is not installed"
    r = subprocess.run(["ansible-doc", "-t", "module", "community.libvirt.virt_pool"],
                       capture_output=True, text=True, timeout=60, env=ansible_env())
    if r.returncode != 0:
        return "community.libvirt is not installed"
    r = subprocess.run(["/usr/bin/python3", "-c", "import libvirt"], capture_output=True)
    if r.returncode != 0:
        return "python3-libvirt is not installed"
    return None


def cleanup_all():
    for p in list(STARTED):
        try:
            p.kill()
            p.wait(timeout=5)
        except Exception:
            pass
    n = kill_matching(ROOT + "/") + kill_matching(f"guest={PREFIX}")
    if n:
        log(f"bench-peers: killed {n} leftover process(es) by PID")
    for d in reversed(CREATED_DIRS):
        try:
            os.rmdir(d)
        except OSError as e:
            log(f"bench-peers: could not remove {d} (created for libvirtd): {e}")
    if KEEP:
        log(f"bench-peers: kept {ROOT}")
    else:
        shutil.rmtree(ROOT, ignore_errors=True)


def on_signal(sig, _frame):
    log(f"bench-peers: signal {sig}, cleaning up")
    sys.exit(2)


def main():
    global LV
    atexit.register(cleanup_all)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    started = now()
    skipped = {}
    load0 = os.getloadavg()
    log(f"bench-peers: {os.cpu_count()} CPUs, load {load0[0]:.2f}, RUNS={RUNS} N={NS} K={K}, "
        f"temp {ROOT}")
    peers = list(PEERS)
    if any(p.startswith("virsh") or p == "ansible" for p in peers):
        try:
            LV = Libvirtd()
            log(f"bench-peers: private libvirtd PID {LV.pid}, {LV.uri}")
        except PeerError as e:
            for p in ("virsh-step", "virsh-session", "ansible"):
                if p in peers:
                    skipped[p] = str(e)
                    peers.remove(p)
    if "ansible" in peers:
        why = ansible_ok()
        if why:
            skipped["ansible"] = why
            peers.remove("ansible")
    for p, why in skipped.items():
        log(f"bench-peers: {p} skipped: {why}")
    if not os.access(QEMU, os.X_OK):
        log(f"bench-peers: {QEMU} missing: no domain figures")

    # Warm-up, untimed: qemu-img, QEMU and their libraries into the page cache, so that
    # the first peer of the first repetition does not pay for loading them from disk.
    for what, fn in (("pools", lambda: floor_pools(NS[0]) if NS else None),
                     ("domains", lambda: floor_domains(K) if K > 0 and os.access(QEMU, os.X_OK) else None)):
        try:
            fn()
        except Exception as e:   # a warm-up that fails only costs the first sample its fairness
            log(f"bench-peers: warm-up ({what}) failed: {e}")
    for rep in range(RUNS):
        log(f"-- repetition {rep + 1}/{RUNS} (load {os.getloadavg()[0]:.2f})")
        for n in NS:
            items = [f"pools-{n}", f"noop-{n}"]
            log(f" {n} pools x 2 volumes")
            for peer in peers:
                if peer == "declvirt":
                    attempt(items, peer, declvirt_pools, n)
                elif peer == "virsh-step":
                    attempt(items, peer, virsh_pools, n, True)
                elif peer == "virsh-session":
                    attempt(items, peer, virsh_pools, n, False)
                elif peer == "ansible":
                    if n <= ANSIBLE_MAX_N or rep < ANSIBLE_BIG_RUNS:
                        attempt(items, peer, ansible_pools, n)
                elif peer == "floor":
                    attempt(items[:1], peer, floor_pools, n)
        if K > 0 and os.access(QEMU, os.X_OK):
            items = ["dom-start", "dom-stop"]
            log(f" {K} domains started, then stopped")
            for peer in peers:
                fn = {"declvirt": lambda: declvirt_domains(K),
                      "virsh-step": lambda: virsh_domains(K, True),
                      "virsh-session": lambda: virsh_domains(K, False),
                      "ansible": lambda: ansible_domains(K),
                      "floor": lambda: floor_domains(K)}[peer]
                attempt(items, peer, fn)
                time.sleep(0.3)   # let the last guests' exits settle before the next peer

    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "kernel": os.uname().release,
            "load_start": load0, "load_end": os.getloadavg(),
            "declvirt": subprocess.run([DECLVIRT, "version"], capture_output=True,
                                       text=True).stdout.strip(),
            "libvirtd": subprocess.run(["/usr/sbin/libvirtd", "--version"], capture_output=True,
                                       text=True).stdout.strip(),
            "ansible": (subprocess.run(["ansible", "--version"], capture_output=True, text=True)
                        .stdout.splitlines() or ["?"])[0],
            "qemu": subprocess.run([QEMU, "--version"], capture_output=True,
                                   text=True).stdout.splitlines()[0],
            "runs": RUNS, "N": NS, "M": 2, "K": K, "capacity": CAPACITY, "peers": PEERS,
            "skipped": skipped, "ansible_max_n": ANSIBLE_MAX_N,
            "ansible_big_runs": ANSIBLE_BIG_RUNS, "agent_max_parallel": MAX_PARALLEL,
            "seconds": round(now() - started, 1)}
    if LV:
        meta["libvirtd_final"] = LV.usage()
        LV.stop()
        LV = None
    import report
    report.report(SAMPLES, meta, RESULTS)


if __name__ == "__main__":
    sys.dont_write_bytecode = True   # no __pycache__ in the source tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
