"""retort and PyTorch CPU side by side: runs `retort bench` and `torch_baseline.py` in turn,
several rounds, and prints each row's median time on both sides, the median of the
per-round ratios (retort / PyTorch) and each round's ratio. Alternating rounds keeps a
noisy machine's slow spells from landing on one side only. Standard library only; PyTorch is needed only by the baseline.

    python3 benches/side_by_side.py --python venv/bin/python [--rounds 5] [--reps 7] [--only step]
"""
import argparse
import re
import statistics
import subprocess
import sys


def retort_rows(out):
    """Rows of retort's table: '│ name ┆ median ┆ ...'."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in re.split(r"[│┆]", line) if c.strip()]
        if len(cells) >= 2 and re.fullmatch(r"[0-9.]+", cells[1]):
            rows[cells[0]] = float(cells[1])
    return rows


def torch_rows(out):
    """Rows of the baseline's table: name, then median, min, max, GFLOP/s, fraction of peak."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"(.+?)\s+([0-9.]+)\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9]+%$", line)
        if m:
            rows[m.group(1).strip()] = float(m.group(2))
    return rows


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--python", default="python3", help="a Python with torch installed")
    p.add_argument("--retort", default="target/release/retort")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--only", default="step", help="rows whose name contains this (both sides)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    mine, theirs = {}, {}
    for r in range(a.rounds):
        for side, cmd, parse in [
            (mine, [a.retort, "bench", "--reps", str(a.reps), "--only", a.only], retort_rows),
            (theirs, [a.python, "benches/torch_baseline.py", "--reps", str(a.reps), "--only", a.only, "--threads", str(a.threads)], torch_rows),
        ]:
            for name, ms in parse(run(cmd)).items():
                side.setdefault(name, []).append(ms)
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    print(f"{'benchmark':<55} {'retort ms':>10} {'PyTorch ms':>11} {'ratio':>7}  (medians of {a.rounds} alternating rounds)")
    for name, ours in mine.items():
        if name not in theirs:
            continue
        ratios = [m / t for m, t in zip(ours, theirs[name])]
        print(f"{name:<55} {statistics.median(ours):>10.2f} {statistics.median(theirs[name]):>11.2f} {statistics.median(ratios):>7.2f}")
        # the spread behind the median: each round's ratio, in round order
        print(f"{'':<55} per round: {' '.join(f'{r:.2f}' for r in ratios)}")


if __name__ == "__main__":
    main()
