#!/usr/bin/env python3
"""report.py - the tables of a bench.sh run, and the comparison of two runs.

usage: report.py [--markdown] OUTDIR
       report.py [--markdown] --compare OLD NEW

OUTDIR holds fsbench.sh JSON files named SYS.rR.json (and bench.sh's machine.json).
report.py OUTDIR prints the median of every workload per system with the ratios posfs/peer,
oriented so that > 1 always means posfs is better (peer/posfs for time and latency rows),
the daemon CPU per GiB / per 1k ops / per run of the FUSE systems with posfs/peer (< 1:
posfs uses less), and the dsync p99 fdatasync latency as a row of its own. It writes
OUTDIR/summary.json and OUTDIR/summary.txt (the plain-text tables); --markdown prints
the tables in Markdown instead (summary.txt stays plain).

--compare OLD NEW (each an OUTDIR or a summary.json) prints, per workload and system, the
old and new medians and new/old oriented so that > 1 is better, marking changes beyond
+-10% "better" or "WORSE". It is a report, not a test: it exits 0.
"""
import glob
import json
import os
import re
import statistics
import sys

ORDER = ["posfs", "posfs-fuse", "ext4", "fuse2fs", "pt"]   # known systems first, others as found
BASE = "posfs"
LOWER_UNITS = ("s", "us")
P99 = "dsync_p99_fdatasync"                   # extra row from dsync_write_4k
MARK = 0.10                                   # --compare marks changes beyond +-10%


def die(msg):
    print("report.py: " + msg, file=sys.stderr)
    sys.exit(2)


def better(unit):
    return "lower" if unit in LOWER_UNITS else "higher"


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    return "%.0f" % v if a >= 1000 else ("%.1f" % v if a >= 100 else "%.3g" % v)


def rfmt(r):
    if r is None:
        return "-"
    return ("%.2fx" if r >= 0.1 else "%.2gx") % r


def oriented(new, old, unit):
    """new relative to old, > 1 when new is better"""
    if new is None or old is None or new <= 0 or old <= 0:
        return None
    return new / old if better(unit) == "higher" else old / new


# ---- reading a run ----------------------------------------------------------------------
RUN_RE = re.compile(r"^(?P<sys>.+)\.r(?P<round>\d+)\.json$")
FAILED_RE = re.compile(r"^(?P<sys>.+)\.r(?P<round>\d+)\.failed\.json$")


def run_files(outdir):
    out = []
    for f in sorted(glob.glob(os.path.join(outdir, "*.r*.json"))):
        m = RUN_RE.match(os.path.basename(f))
        if m:
            out.append((f, m.group("sys"), int(m.group("round"))))
    return out


def summarize(outdir):
    files = run_files(outdir)
    if not files:
        die("no SYS.rR.json results in %s" % outdir)
    systems, names, w, failures, runs = [], [], {}, [], {}

    def slot(name, unit):
        if name not in w:
            names.append(name)
            w[name] = dict(unit=unit, values={}, dcpu={}, cpu_unit=None)
        return w[name]

    for path, fsys, rnd in sorted(files, key=lambda x: (x[2], x[1])):
        try:
            j = json.load(open(path))
        except (OSError, ValueError) as e:
            failures.append((fsys, rnd, "-", "unreadable %s: %s" % (os.path.basename(path), e)))
            continue
        sysname = (j.get("meta") or {}).get("label") or fsys
        if sysname not in systems:
            systems.append(sysname)
        runs[sysname] = runs.get(sysname, 0) + 1
        for r in j.get("results", []):
            name = r["name"]
            if r.get("value") is None:
                slot(name, None)
                failures.append((sysname, rnd, name, r.get("error") or "no value"))
                continue
            s = slot(name, r["unit"])
            s["unit"] = s["unit"] or r["unit"]
            s["values"].setdefault(sysname, []).append(r["value"])
            if r.get("daemon_cpu_norm") is not None:
                s["dcpu"].setdefault(sysname, []).append(r["daemon_cpu_norm"])
                s["cpu_unit"] = r.get("cpu_norm_unit")
            p99 = (r.get("extra") or {}).get("sync_p99_us")
            if name == "dsync_write_4k" and p99 is not None:
                slot(P99, "us")["values"].setdefault(sysname, []).append(p99)
    found = list(systems)
    systems.sort(key=lambda s: (ORDER.index(s) if s in ORDER else len(ORDER), found.index(s)))

    workloads = {}
    for name in names:
        s = w[name]
        unit = s["unit"] or "?"
        vals = s["values"]
        workloads[name] = dict(
            unit=unit, better=better(unit),
            median={k: statistics.median(v) for k, v in vals.items()},
            min={k: min(v) for k, v in vals.items()},
            max={k: max(v) for k, v in vals.items()},
            n={k: len(v) for k, v in vals.items()},
            daemon_cpu={k: statistics.median(v) for k, v in s["dcpu"].items()},
            cpu_unit=s["cpu_unit"])
    machine = None
    mpath = os.path.join(outdir, "machine.json")
    if os.path.exists(mpath):
        try:
            machine = json.load(open(mpath))
        except (OSError, ValueError):
            machine = None
    failed_runs = sorted(os.path.basename(f)[:-len(".failed.json")]
                         for f in glob.glob(os.path.join(outdir, "*.failed.json"))
                         if FAILED_RE.match(os.path.basename(f)))
    return dict(machine=machine, systems=systems, runs=runs, workloads=workloads,
                failures=[dict(system=a, round=b, workload=c, error=d) for a, b, c, d in failures],
                failed_runs=failed_runs)


def load(path):
    """an OUTDIR (its runs, else its summary.json) or a summary.json"""
    if os.path.isdir(path):
        if run_files(path):
            return summarize(path)
        path = os.path.join(path, "summary.json")
    try:
        return json.load(open(path))
    except (OSError, ValueError) as e:
        die("cannot read %s: %s" % (path, e))


# ---- output -----------------------------------------------------------------------------
def render(header, rows, notes, md, left=2):
    """a table as aligned text or Markdown (the first `left` columns left-aligned, the
    figures right-aligned), then its notes"""
    out = []
    if md:
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|")
        for r in rows:
            out.append("| " + " | ".join(c or " " for c in r) + " |")
        out.append("")
        out += [n + "  " for n in notes]
    else:
        width = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
        def line(r):
            return "  ".join(str(c).ljust(width[i]) if i < left else str(c).rjust(width[i])
                             for i, c in enumerate(r)).rstrip()
        out.append(line(header))
        out += [line(r) for r in rows]
        out += ["# " + n for n in notes]
    return "\n".join(out)


def machine_line(m):
    if not m:
        return "machine: unknown (no machine.json)"
    fs = m.get("dir_fs") or {}
    return "machine: %s CPUs, %.0f GiB, %s, kernel %s; images in %s (%s on %s); posfs %s; %s" % (
        m.get("nproc"), (m.get("mem_bytes") or 0) / 2**30, m.get("cpu_model"), m.get("kernel"),
        m.get("dir"), fs.get("fstype"), fs.get("source"), m.get("posfs_commit") or "(no commit)",
        m.get("date"))


def cell(wl, sysname):
    med = wl["median"].get(sysname)
    if med is None:
        return "n/a"
    n, lo, hi = wl["n"][sysname], wl["min"][sysname], wl["max"][sysname]
    if n > 1 and med:
        return "%s ±%.0f%%" % (fmt(med), 50 * (hi - lo) / abs(med))
    return fmt(med)


def report(s, md):
    systems, wls = s["systems"], s["workloads"]
    peers = [p for p in systems if p != BASE] if BASE in systems else []
    out = []
    # medians and ratios
    header = ["workload", "unit"] + systems + ["%s/%s" % (BASE, p) for p in peers]
    rows = []
    for name, wl in wls.items():
        row = [name, wl["unit"]] + [cell(wl, x) for x in systems]
        for p in peers:
            r = oriented(wl["median"].get(BASE), wl["median"].get(p), wl["unit"])
            row.append(rfmt(r))
        rows.append(row)
    notes = [machine_line(s.get("machine")),
             "runs: " + ", ".join("%s=%d" % (x, s["runs"].get(x, 0)) for x in systems) +
             "; cells: median ±half the min-max range (% of the median)"]
    if peers:
        notes.append("%s/X: >1 means %s is better (for s and us rows, lower is better: "
                     "the ratio is X/%s)" % (BASE, BASE, BASE))
    if s.get("failed_runs"):
        notes.append("failed runs, left out: " + ", ".join(s["failed_runs"]))
    for f in s.get("failures", []):
        notes.append("failed: %s round %s %s: %s" % (f["system"], f["round"], f["workload"],
                                                     f["error"]))
    out.append(render(header, rows, notes, md))
    # daemon CPU of the FUSE systems
    fuse = [x for x in systems if any(x in wl["daemon_cpu"] for wl in wls.values())]
    if fuse:
        fpeers = [p for p in fuse if p != BASE] if BASE in fuse else []
        header = ["daemon cpu", "unit"] + fuse + ["%s/%s" % (BASE, p) for p in fpeers]
        rows = []
        for name, wl in wls.items():
            if not wl["daemon_cpu"]:
                continue
            row = [name, wl["cpu_unit"] or "?"] + [fmt(wl["daemon_cpu"].get(x)) for x in fuse]
            for p in fpeers:
                a, b = wl["daemon_cpu"].get(BASE), wl["daemon_cpu"].get(p)
                row.append(rfmt(a / b) if a is not None and b else "-")
            rows.append(row)
        notes = ["daemon cpu: median CPU-s of all daemon threads per GiB, per 1k ops or per run"]
        if fpeers:
            notes.append("%s/X: <1 means %s uses less CPU" % (BASE, BASE))
        out.append(render(header, rows, notes, md))
    return "\n\n".join(out) + "\n"


def compare(old, new, md):
    out = []
    systems = new["systems"] + [x for x in old["systems"] if x not in new["systems"]]
    names = list(new["workloads"]) + [n for n in old["workloads"] if n not in new["workloads"]]
    notes = ["old " + machine_line(old.get("machine")), "new " + machine_line(new.get("machine"))]
    mo, mn = old.get("machine") or {}, new.get("machine") or {}
    for k in ("nproc", "cpu_model", "kernel", "image_size", "quick"):
        if mo.get(k) != mn.get(k):
            notes.append("WARNING: %s differs (%s -> %s): the figures are not comparable" %
                         (k, mo.get(k), mn.get(k)))
    for k in ("posfs_opts", "fsbench_args"):
        if mo.get(k) != mn.get(k):
            notes.append("note: %s differs (%r -> %r)" % (k, mo.get(k), mn.get(k)))
    notes.append("change: new/old oriented so that >1 is better (old/new for s and us rows); "
                 "beyond ±%.0f%% marked; run-to-run noise is often larger, check n" % (100 * MARK))

    def rows_for(get, unit_of, orient):
        rows = []
        for name in names:
            wo, wn = old["workloads"].get(name), new["workloads"].get(name)
            for x in systems:
                a = get(wo, x) if wo else None
                b = get(wn, x) if wn else None
                if a is None and b is None:
                    continue
                unit = unit_of(wn or wo)
                r = orient(b, a, unit)
                verdict = ""
                if r is not None and r >= 1 + MARK:
                    verdict = "better"
                elif r is not None and r <= 1 - MARK:
                    verdict = "WORSE"
                n = "%s/%s" % ((wo or {}).get("n", {}).get(x, 0), (wn or {}).get("n", {}).get(x, 0))
                rows.append([name, unit, x, fmt(a), fmt(b), n,
                             rfmt(r), verdict])
        return rows

    rows = rows_for(lambda wl, x: wl["median"].get(x), lambda wl: wl["unit"], oriented)
    out.append(render(["workload", "unit", "system", "old", "new", "n", "change", ""], rows,
                      notes, md, 3))
    rows = rows_for(lambda wl, x: (wl.get("daemon_cpu") or {}).get(x),
                    lambda wl: wl.get("cpu_unit") or "?",
                    lambda b, a, u: (a / b) if a and b else None)
    if rows:
        out.append(render(["daemon cpu", "unit", "system", "old", "new", "n", "change", ""], rows,
                          ["daemon cpu change: old/new, >1 means the new run uses less CPU"], md,
                          3))
    return "\n\n".join(out) + "\n"


def main(argv):
    md = "--markdown" in argv
    args = [a for a in argv if a != "--markdown"]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    if args[0] == "--compare":
        if len(args) != 3:
            die("usage: report.py --compare OLD NEW")
        sys.stdout.write(compare(load(args[1]), load(args[2]), md))
        return 0
    if len(args) != 1 or not os.path.isdir(args[0]):
        die("usage: report.py [--markdown] OUTDIR (a directory of SYS.rR.json files)")
    outdir = args[0]
    s = summarize(outdir)
    text = report(s, False)
    with open(os.path.join(outdir, "summary.json"), "w") as fh:
        json.dump(s, fh, indent=1)
        fh.write("\n")
    with open(os.path.join(outdir, "summary.txt"), "w") as fh:
        fh.write(text)
    sys.stdout.write(report(s, True) if md else text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
