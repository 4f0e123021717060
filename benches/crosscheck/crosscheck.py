#!/usr/bin/env python3
"""PyTorch cross-check of a retort study: the same sweep spec, run in PyTorch.

The study's setup (data, normalization, teacher, student, optimizer, schedule, loss, filters)
mirrors scripts/repro-common.rhai and scripts/repro-point.rhai; its points and seeds are read
from the sweep spec, so retort and PyTorch run the same grid. PyTorch draws its own random
numbers (initialization and batch order), so the two agree in distribution, not bit for bit:
`compare` tests each method's mean and each paired difference against retort's run records.

    python benches/crosscheck/crosscheck.py run scripts/sweeps/repro-cnn.yaml --out target/crosscheck/repro \
        [--testbed cnn|mlp|cnn4x8] [--jobs N] [--seeds 1,2,3] [--only method=kd,temperature=4.0] [--teacher T.safetensors]
    python benches/crosscheck/crosscheck.py compare --retort runs/repro-X/sweep --torch target/crosscheck/repro \
        --title "..." --report docs/results/crosscheck.md
    python benches/crosscheck/crosscheck.py choice --torch target/crosscheck/repro   (the testbed candidates)
    benches/crosscheck/run.sh PYTHON RETORT_STUDY_DIR   (all of it, into docs/results/crosscheck.md)

Needs torch, numpy and pyyaml (a venv; never a dependency of retort or of its CI), and
Debian's dataset-fashion-mnist. Definitions followed:
- cnn: [Conv2d(3x3, pad 1, no bias, kaiming_normal fan_out) - BatchNorm2d - ReLU - MaxPool2d(2)]
  per width, Flatten, Linear (retort's `cnn`, src/nn/zoo.rs); mlp: Linear-ReLU per width, Linear.
- data: pixels / 255, standardized with the training set's mean and (population) std.
- SGD(momentum 0.9, weight_decay 5e-4), lr per epoch 0.5 lr (1 + cos(pi e / E)) (retort's
  `cosine(E)`, PyTorch's CosineAnnealingLR stepped per epoch), shuffled batches, last one smaller.
- loss (Zhou et al., ICLR 2021; src/loss.rs): mean CE(s, y) + alpha T^2 mean(m w soft), soft the
  cross-entropy of softmax(t/T) to log_softmax(s/T), w = 1 for KD and 1 - exp(-max(ce_s /
  (ce_t + 1e-7), 0)) for WSL (no gradient), m a filter's keep-mask; teacher logits computed once
  in eval mode; a regularization sample has ce_s < ce_t (T = 1), counted per training epoch.
"""

import argparse
import gzip
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import yaml

FASHION = "/usr/share/datasets/fashion-mnist"

# scripts/repro-common.rhai's setup (quick = false), and the testbeds the cross-check compares
TEACHER = dict(arch="cnn", channels=[16, 32], epochs=15, lr=0.05, seed=1000)
TESTBEDS = {
    # the committed study: an MLP student with 16 hidden units
    "mlp": dict(student=dict(arch="mlp", hidden=[16]), epochs=20, batch=128, lr=0.01),
    # a narrower CNN of the teacher's family: the main testbed (scripts/sweeps/repro-cnn.yaml, T = 2)
    "cnn": dict(student=dict(arch="cnn", channels=[2, 4]), epochs=20, batch=128, lr=0.01),
    # a candidate measured while choosing the testbed (docs/results/crosscheck.md)
    "cnn4x8": dict(student=dict(arch="cnn", channels=[4, 8]), epochs=20, batch=128, lr=0.01),
}


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist():
    x = {p: idx(f"{FASHION}/{p}-images-idx3-ubyte.gz").astype(np.float32) / 255.0 for p in ("train", "t10k")}
    y = {p: idx(f"{FASHION}/{p}-labels-idx1-ubyte.gz").astype(np.int64) for p in ("train", "t10k")}
    mean = float(x["train"].astype(np.float64).mean())
    std = max(float(x["train"].astype(np.float64).std()), 1e-6)
    norm = {p: ((v - mean) / std)[:, None, :, :] for p, v in x.items()}
    return norm["train"], y["train"], norm["t10k"], y["t10k"]


def build(torch, spec, classes=10, shape=(1, 28, 28)):
    nn = torch.nn
    layers = []
    if spec["arch"] == "cnn":
        c, h, w = shape
        for out in spec["channels"]:
            conv = nn.Conv2d(c, out, 3, 1, 1, bias=False)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            layers += [conv, nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        layers += [nn.Flatten(), nn.Linear(c * h * w, classes)]
    elif spec["arch"] == "mlp":
        width = int(np.prod(shape))
        layers.append(nn.Flatten())
        for hdn in spec["hidden"]:
            layers += [nn.Linear(width, hdn), nn.ReLU()]
            width = hdn
        layers.append(nn.Linear(width, classes))
    else:
        raise SystemExit(f"crosscheck: unknown arch {spec['arch']}")
    return nn.Sequential(*layers)


def evaluate(torch, model, x, y):
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x[i : i + 1000]).argmax(1) == y[i : i + 1000]).sum()) for i in range(0, len(x), 1000))
    return correct / len(x)


def train(torch, model, data, epochs, batch, lr, seed, teacher_logits=None, loss="ce", temperature=4.0, alpha=2.25, keep=None):
    """One stage; returns the per-epoch history (test accuracy, regularization count, dropped soft terms)."""
    F = torch.nn.functional
    xtr, ytr, xte, yte = data
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    history = []
    for epoch in range(epochs):
        for g in opt.param_groups:
            g["lr"] = 0.5 * lr * (1.0 + math.cos(math.pi * epoch / epochs))
        model.train()
        order = torch.randperm(len(xtr), generator=gen)
        regularization = dropped = 0
        for i in range(0, len(order), batch):
            idx_ = order[i : i + batch]
            s, y = model(xtr[idx_]), ytr[idx_]
            ce = F.cross_entropy(s, y, reduction="none")
            total = ce.mean()
            if teacher_logits is not None:
                t = teacher_logits[idx_]
                with torch.no_grad():
                    ce_t = F.cross_entropy(t, y, reduction="none")
                    reg = ce.detach() < ce_t
                    w = 1.0 - torch.exp(-torch.clamp(ce.detach() / (ce_t + 1e-7), min=0.0)) if loss == "wsl" else torch.ones_like(ce_t)
                    m = keep(epoch + 1, reg) if keep else torch.ones_like(ce_t)
                regularization += int(reg.sum())
                dropped += int((m == 0).sum())
                soft = -(F.softmax(t / temperature, 1) * F.log_softmax(s / temperature, 1)).sum(1)
                total = total + alpha * temperature**2 * (m * w * soft).mean()
            opt.zero_grad()
            total.backward()
            opt.step()
        history.append(dict(test_accuracy=evaluate(torch, model, xte, yte), regularization=regularization, filtered=dropped))
    return history


def load_safetensors(torch, path):
    """A retort teacher's weights (safetensors, PyTorch names: features.N / fc) as this file's
    nn.Sequential state_dict (indices: features.N -> N, fc -> the last layer)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=kinds[t["dtype"]]).reshape(t["shape"]).copy())
    last = max(int(k.split(".")[1]) for k in out if k.startswith("features.")) + 4
    return {(k.replace("features.", "", 1) if k.startswith("features.") else k.replace("fc.", f"{last}.", 1)): v
            for k, v in out.items()}


def point(args):
    """One sweep point in a worker process (one thread): returns its record."""
    settings, seed, testbed, teacher_path = args
    import torch

    torch.set_num_threads(1)
    bed = TESTBEDS[testbed]
    data = [torch.from_numpy(a) for a in fashion_mnist()]
    torch.manual_seed(seed)
    student = build(torch, bed["student"])
    method = str(settings.get("method", "ce"))
    start = time.time()
    if method == "ce":
        history = train(torch, student, data, bed["epochs"], bed["batch"], bed["lr"], seed)
    else:
        teacher = build(torch, TEACHER)
        if teacher_path.endswith(".safetensors"):
            teacher.load_state_dict(load_safetensors(torch, teacher_path), strict=False)
        else:
            teacher.load_state_dict(torch.load(teacher_path))
        teacher.eval()
        with torch.no_grad():
            logits = torch.cat([teacher(data[0][i : i + 1000]) for i in range(0, len(data[0]), 1000)])
        half = bed["epochs"] // 2
        filt = str(settings.get("filter", "keep"))
        keep = {
            "keep": None,
            "drop": lambda epoch, reg: (~reg).float(),
            "drop_half": lambda epoch, reg: (~reg).float() if epoch <= half else torch.ones_like(reg, dtype=torch.float32),
        }[filt]
        history = train(
            torch, student, data, bed["epochs"], bed["batch"], bed["lr"], seed, logits, method,
            float(settings.get("temperature", 4.0)), float(settings.get("alpha", 2.25)), keep,
        )
    return dict(settings=settings, seed=seed, history=history, final_accuracy=history[-1]["test_accuracy"],
                best_accuracy=max(h["test_accuracy"] for h in history), seconds=time.time() - start)


def run(a):
    import torch

    spec = yaml.safe_load(open(a.spec))
    settings = [{str(k): v for k, v in p.items()} for p in spec.get("points", [])]
    if spec.get("grid"):
        raise SystemExit("crosscheck: grids are not expanded here; list the points")
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else spec["seeds"]
    if a.only:
        wants = [dict(kv.split("=") for kv in only.split(",")) for only in a.only]
        settings = [s for s in settings if any(all(str(s.get(k)) == v for k, v in w.items()) and len(w) == len(s) for w in wants)]
    os.makedirs(a.out, exist_ok=True)
    results = os.path.join(a.out, "results.jsonl")
    done = set()
    if os.path.exists(results):
        for line in open(results):
            r = json.loads(line)
            done.add((json.dumps(r["settings"], sort_keys=True), r["seed"], r.get("testbed")))
    teacher_path = a.teacher or os.path.join(a.out, "teacher.pt")
    if not os.path.exists(teacher_path):
        torch.set_num_threads(os.cpu_count())
        torch.manual_seed(TEACHER["seed"])
        data = [torch.from_numpy(x) for x in fashion_mnist()]
        teacher = build(torch, TEACHER)
        start = time.time()
        h = train(torch, teacher, data, TEACHER["epochs"], TESTBEDS[a.testbed]["batch"], TEACHER["lr"], TEACHER["seed"])
        torch.save(teacher.state_dict(), teacher_path + ".part")
        os.replace(teacher_path + ".part", teacher_path)
        print(f"teacher: test accuracy {h[-1]['test_accuracy']:.4f} ({time.time() - start:.0f} s)", flush=True)
    todo = [(s, seed, a.testbed, teacher_path) for s in settings for seed in seeds
            if (json.dumps(s, sort_keys=True), seed, a.testbed) not in done]
    print(f"{len(todo)} points to run, {a.jobs} at a time", flush=True)
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(a.jobs) as pool, open(results, "a") as out:
        for r in pool.imap_unordered(point, todo):
            r["testbed"] = a.testbed
            out.write(json.dumps(r) + "\n")
            out.flush()
            print(f"{r['settings']} seed {r['seed']}: {100 * r['final_accuracy']:.2f}% ({r['seconds']:.0f} s)", flush=True)


def describe(s):
    return ", ".join(f"{k}={v}" for k, v in sorted(s.items()))


def retort_records(folder):
    """A retort sweep's finished points: (settings, seed) -> last stage's final accuracy."""
    manifest = yaml.safe_load(open(os.path.join(folder, "sweep.yaml")))
    out = {}
    for p in manifest["points"]:
        try:
            summary = yaml.safe_load(open(os.path.join(folder, p["dir"], "summary.yaml")))
        except FileNotFoundError:
            continue
        if summary.get("finished") and summary["stages"]:
            settings = {k: yaml.safe_load(str(v)) for k, v in p["settings"].items()}
            out[(describe(settings), int(p["seed"]))] = float(summary["stages"][-1]["final_accuracy"])
    return out


def torch_records(folder, testbed):
    out = {}
    for line in open(os.path.join(folder, "results.jsonl")):
        r = json.loads(line)
        if r.get("testbed", "mlp") == testbed:
            out[(describe(r["settings"]), int(r["seed"]))] = float(r["final_accuracy"])
    return out


def mean_se(xs):
    m = statistics.fmean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return m, sd, sd / math.sqrt(len(xs))


def welch(a, b):
    """Welch's t statistic and degrees of freedom."""
    (ma, sa, _), (mb, sb, _) = mean_se(a), mean_se(b)
    va, vb = sa**2 / len(a), sb**2 / len(b)
    if va + vb == 0:
        return (0.0 if ma == mb else math.inf), float(len(a) + len(b) - 2)
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t, df


def t_critical(df):
    """Two-sided 5% critical value of Student's t (interpolated table)."""
    table = [(1, 12.71), (2, 4.30), (3, 3.18), (4, 2.78), (5, 2.57), (6, 2.45), (7, 2.36), (8, 2.31), (9, 2.26),
             (10, 2.23), (15, 2.13), (20, 2.09), (30, 2.04), (60, 2.00), (1e9, 1.96)]
    for (d0, c0), (d1, c1) in zip(table, table[1:]):
        if df <= d1:
            return c0 + (c1 - c0) * (max(df, d0) - d0) / (d1 - d0)
    return 1.96


def compare(a):
    rt, pt = retort_records(a.retort), torch_records(a.torch, a.testbed)
    settings = []
    for key, _ in rt:
        if key not in settings:
            settings.append(key)
    base = a.baseline
    lines = [f"## {a.title}", "", a.setup.strip(), "" if a.setup else None,
             "Final test accuracy, percent: mean ± sample std over seeds (n), and its standard error. "
             "They agree when the difference of the means is within two standard errors of that difference "
             "(sqrt(se_retort^2 + se_torch^2)); Welch's t and its two-sided 5% critical value beside it.",
             "",
             "| setting | retort | PyTorch | difference | 2 SE | Welch t (critical) | agree |",
             "|---|---|---|---|---|---|---|"]
    lines = [l for l in lines if l is not None]
    verdicts = []
    for s in settings:
        ra = [100 * v for (k, _), v in sorted(rt.items()) if k == s]
        pa = [100 * v for (k, _), v in sorted(pt.items()) if k == s]
        if len(ra) < 2 or len(pa) < 2:
            lines.append(f"| {s} | {len(ra)} seeds | {len(pa)} seeds | - | - | - | not compared (fewer than 2 seeds) |")
            continue
        (mr, sr, er), (mp, sp, ep) = mean_se(ra), mean_se(pa)
        two_se = 2 * math.sqrt(er**2 + ep**2)
        t, df = welch(ra, pa)
        ok = abs(mr - mp) <= two_se
        verdicts.append((s, ok))
        lines.append(f"| {s} | {mr:.2f} ± {sr:.2f} ({len(ra)}) | {mp:.2f} ± {sp:.2f} ({len(pa)}) | {mr - mp:+.2f} | {two_se:.2f} | "
                     f"{t:+.2f} ({t_critical(df):.2f}) | {'yes' if ok else '**no**'} |")
    if base:
        lines += ["", f"Paired per-seed differences against {base} (percentage points; same seed = same initialization "
                  "and batch order within a framework, not across them):", "",
                  "| setting - baseline | retort | seeds above 0 | PyTorch | seeds above 0 | agree (2 SE) |", "|---|---|---|---|---|---|"]
        for s in settings:
            if s == base:
                continue
            rows = []
            for rec in (rt, pt):
                d = [100 * (rec[(s, seed)] - rec[(base, seed)]) for (k, seed) in sorted(rec) if k == s and (base, seed) in rec]
                rows.append(d)
            if min(len(rows[0]), len(rows[1])) < 2:
                continue
            (m0, s0, e0), (m1, s1, e1) = mean_se(rows[0]), mean_se(rows[1])
            ok = abs(m0 - m1) <= 2 * math.sqrt(e0**2 + e1**2)
            verdicts.append((f"{s} - baseline", ok))
            pos = lambda d: f"{sum(x > 0 for x in d)} of {len(d)}"
            lines.append(f"| {s} | {m0:+.2f} ± {s0:.2f} | {pos(rows[0])} | {m1:+.2f} ± {s1:.2f} | {pos(rows[1])} | {'yes' if ok else '**no**'} |")
    bad = [s for s, ok in verdicts if not ok]
    lines += ["", f"**{len(verdicts) - len(bad)} of {len(verdicts)} comparisons agree**" + (f"; not: {'; '.join(bad)}." if bad else ".")
              + f" With five seeds a side, two frameworks that agree in distribution still differ by more than two standard errors "
              f"about one time in twelve (|t| > 2 at 8 degrees of freedom): about {len(verdicts) / 12:.1f} of these {len(verdicts)} by chance.", ""]
    if a.after:
        lines += [a.after.strip(), ""]
    lines += [f"_retort: the sweep {a.retort}; PyTorch: {a.torch}/results.jsonl (testbed {a.testbed}); written by "
              f"`python benches/crosscheck/crosscheck.py compare` on {time.strftime('%Y-%m-%d')}._", ""]
    text = "\n".join(lines)
    print(text)
    if a.report:
        put_section(a.report, a.section, text)
    return 0 if not bad else 1


def put_section(report, section, text):
    """Puts `text` into the Markdown file `report` as the section `section` (replaced in place)."""
    marker_b, marker_e = f"<!-- crosscheck:begin {section} -->", f"<!-- crosscheck:end {section} -->"
    doc = open(report).read() if os.path.exists(report) else (
        "# Cross-check: retort against PyTorch\n\n<!-- Generated by benches/crosscheck/crosscheck.py; do not edit by hand. -->\n")
    block = f"{marker_b}\n<a id=\"{section}\"></a>\n\n{text}{marker_e}\n"
    if marker_b in doc and marker_e in doc:
        i, j = doc.index(marker_b), doc.index(marker_e) + len(marker_e) + 1
        doc = doc[:i] + block + doc[j:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block
    tmp = report + ".part"
    open(tmp, "w").write(doc)
    os.replace(tmp, report)


def choice(a):
    """PyTorch alone: per candidate testbed, the student alone against KD at each temperature run."""
    lines = ["## Choosing the testbed (PyTorch)", "",
             "The issue asked for a student of the teacher's family where, in PyTorch, KD beats the student alone by more "
             "than two standard errors over five seeds. Final test accuracy, percent (mean ± sample std over seeds 1-5); "
             "KD - alone: mean ± std of the per-seed differences; beats: the difference of the means above two standard "
             "errors of that difference.", "",
             "| testbed (student) | alone | KD | T | KD - alone (paired) | 2 SE | beats |", "|---|---|---|---|---|---|---|"]
    for testbed in a.testbeds.split(","):
        rec = torch_records(a.torch, testbed)
        alone = {seed: v for (k, seed), v in rec.items() if k == "method=ce"}
        student = TESTBEDS[testbed]["student"]
        shape = f"{student['arch']} {student.get('channels', student.get('hidden'))}"
        for t in ("1.0", "2.0", "4.0", "8.0"):
            kd = {seed: v for (k, seed), v in rec.items() if k == f"method=kd, temperature={t}"}
            seeds = sorted(set(kd) & set(alone))
            if len(seeds) < 2:
                continue
            ka, aa = [100 * kd[x] for x in seeds], [100 * alone[x] for x in seeds]
            (mk, sk, ek), (ma, sa, ea), (md, sd, _) = mean_se(ka), mean_se(aa), mean_se([k - b for k, b in zip(ka, aa)])
            two_se = 2 * math.sqrt(ek**2 + ea**2)
            lines.append(f"| {testbed} ({shape}) | {ma:.2f} ± {sa:.2f} | {mk:.2f} ± {sk:.2f} | {t} | {md:+.2f} ± {sd:.2f} | "
                         f"{two_se:.2f} | {'yes' if mk - ma > two_se else 'no'} |")
    lines += ["", f"_From {a.torch}/results.jsonl; written by `python benches/crosscheck/crosscheck.py choice` on "
              f"{time.strftime('%Y-%m-%d')}._", ""]
    text = "\n".join(lines)
    print(text)
    if a.report:
        put_section(a.report, "choice", text)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a sweep spec's points in PyTorch")
    r.add_argument("spec")
    r.add_argument("--out", required=True)
    r.add_argument("--testbed", default="mlp", choices=sorted(TESTBEDS))
    r.add_argument("--jobs", type=int, default=os.cpu_count())
    r.add_argument("--seeds", help="comma-separated; default the spec's")
    r.add_argument("--teacher", help="a retort teacher's weights (.safetensors) instead of training one here")
    r.add_argument("--only", action="append", help="key=value,...: only the points with exactly these settings (repeatable)")
    c = sub.add_parser("compare", help="compare a retort sweep's records with the PyTorch results")
    c.add_argument("--retort", required=True, help="the retort sweep folder")
    c.add_argument("--torch", required=True, help="the folder `run` wrote")
    c.add_argument("--testbed", default="mlp", choices=sorted(TESTBEDS))
    c.add_argument("--baseline", help="the setting paired differences are taken against, as `k=v, k=v`")
    c.add_argument("--title", default="Cross-check")
    c.add_argument("--setup", default="", help="a paragraph describing the study")
    c.add_argument("--section", default="study")
    c.add_argument("--after", default="", help="a paragraph after the verdict (what explains a disagreement)")
    c.add_argument("--report", help="Markdown file to put the section into")
    h = sub.add_parser("choice", help="PyTorch alone: the student alone against KD per candidate testbed")
    h.add_argument("--torch", required=True)
    h.add_argument("--testbeds", default="cnn,cnn4x8,mlp")
    h.add_argument("--report")
    a = p.parse_args()
    if a.cmd == "choice":
        return choice(a)
    if a.cmd == "run":
        run(a)
        return 0
    return compare(a)


if __name__ == "__main__":
    sys.exit(main())
