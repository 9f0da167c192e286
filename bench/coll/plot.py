#!/usr/bin/env python3
"""plot.py - draws a kccl-bench JSON (ideally from a run with --compare nccl) as a PNG:
latency and bus bandwidth against message size, kccl beside NCCL, out of place.

Usage: bench/coll/plot.py RESULT.json [OUT.png]

matplotlib comes from a virtual environment under ~/.cache/kccl/plot-venv that this script
creates on first use (idempotent: later runs reuse it). Where pip cannot reach a package
index, it says so and exits with status 2 without drawing anything.
"""
import json
import os
import subprocess
import sys
import venv

VENV = os.path.join(os.path.expanduser("~"), ".cache", "kccl", "plot-venv")


def ensure_matplotlib():
    """Re-executes this script under the venv's python once matplotlib is there."""
    try:
        import matplotlib  # noqa: F401
        return
    except ImportError:
        pass
    py = os.path.join(VENV, "bin", "python3")
    if os.environ.get("KCCL_PLOT_IN_VENV") == "1":
        sys.exit("plot.py: matplotlib is still missing inside %s" % VENV)
    if not os.path.exists(py):
        venv.EnvBuilder(with_pip=True).create(VENV)
    probe = subprocess.run([py, "-c", "import matplotlib"], capture_output=True)
    if probe.returncode != 0:
        inst = subprocess.run([py, "-m", "pip", "install", "--quiet", "matplotlib"],
                              capture_output=True, text=True)
        if inst.returncode != 0:
            sys.stderr.write("plot.py: cannot install matplotlib into %s (is a package index "
                             "reachable?); skipping the plot.\n%s\n" % (VENV, inst.stderr[-800:]))
            sys.exit(2)
    env = dict(os.environ, KCCL_PLOT_IN_VENV="1")
    os.execve(py, [py] + sys.argv, env)


def series(rows, key, lib):
    xs, ys = [], []
    for r in rows:
        m = r.get("nccl", {}) if lib == "nccl" else r
        m = m.get("out_of_place")
        if m and not m.get("failed") and m.get("time_us", 0) > 0:
            xs.append(r["size"])
            ys.append(m[key])
    return xs, ys


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) >= 2 else 2
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.splitext(sys.argv[1])[0] + ".png"
    ensure_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["rows"]
    fig, (lat, bw) = plt.subplots(1, 2, figsize=(12, 4.5))
    libs = ["kccl"] + (["nccl"] if doc.get("compare") == "nccl" else [])
    for lib in libs:
        x, y = series(rows, "time_us", lib)
        lat.plot(x, y, marker="o", label=lib)
        x, y = series(rows, "busbw", lib)
        bw.plot(x, y, marker="o", label=lib)
    for ax, title, unit in ((lat, "latency", "time (us)"), (bw, "bus bandwidth", "busbw (GB/s)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("size (bytes)")
        ax.set_ylabel(unit)
        ax.set_title("%s %s, %d ranks, %s" % (doc["op"], title, doc["nranks"], doc["mode"]))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    lat.set_yscale("log")
    fig.suptitle(doc.get("device", ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print("plot.py: wrote %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
