"""PyTorch CPU baseline for `retort bench`: the same models and steps, threads set to the same
count, printing the same rows. Not a dependency of retort and not run by CI.

    python3 -m venv venv && venv/bin/pip install torch numpy
    venv/bin/python benches/torch_baseline.py [--threads 2] [--reps 21]
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# the benchmark zoo's PyTorch definitions, shared with the logits fixture (needs numpy)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import make_zoo_fixture as zoo  # noqa: E402


def conv_bn(cin, cout, stride=1):
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(cin, cout, stride)
        self.conv2, self.bn2 = conv_bn(cout, cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


def resnet(depth, widths, classes):
    n = (depth - 2) // 6
    layers = [*conv_bn(3, widths[0]), nn.ReLU()]
    cin = widths[0]
    for stage, w in enumerate(widths[1:]):
        for i in range(n):
            layers.append(Block(cin, w, 2 if i == 0 and stage > 0 else 1))
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


def small_cnn():
    layers, cin = [], 3
    for c in [16, 32, 64]:
        layers += [*conv_bn(cin, c), nn.ReLU(), nn.MaxPool2d(2)]
        cin = c
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 4 * 4, 100))


SYNC = lambda: None  # torch.cuda.synchronize on a GPU: time the work, not the launch


def time_it(fn, reps):
    for _ in range(2):
        fn()
    SYNC()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        SYNC()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), min(times), max(times)


def step_fn(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def macs(model, x):
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out.numel() // out.shape[0] * m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features
    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()
        model(x[:1])
    for h in hooks:
        h.remove()
    return total


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=21)
    p.add_argument("--only", default=None, help="only the rows whose name contains this (the matmul peak always runs)")
    p.add_argument("--device", default="cpu", help="cuda: only the matmul peak and the resnet8x4 step at batch 128 (issue 8)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = []
    if a.device != "cpu":
        global SYNC
        SYNC = torch.cuda.synchronize
        return gpu(a)

    m = torch.randn(1024, 1024)
    med, lo, hi = time_it(lambda: m @ m, a.reps)
    peak = 2 * 1024**3 / (med * 1e-3) / 1e9
    rows.append(("f32 matmul 1024x1024x1024", med, lo, hi, peak))

    mlp = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 100))
    cases = [
        ("MLP 784-512-512-100, batch 128, SGD step", mlp, torch.randn(128, 784)),
        ("small CNN 3x32x32 (16/32/64), batch 64, SGD step", small_cnn(), torch.randn(64, 3, 32, 32)),
        ("resnet8x4 (CIFAR-100), batch 64, SGD step", resnet(8, [32, 64, 128, 256], 100), torch.randn(64, 3, 32, 32)),
        ("MobileNetV2 (width 0.5, CIFAR-100), batch 64, SGD step", zoo.MobileNetV2(0.5, 100), torch.randn(64, 3, 32, 32)),
        ("ShuffleV2 (CIFAR-100), batch 64, SGD step", zoo.ShuffleV2(100), torch.randn(64, 3, 32, 32)),
    ]
    for name, model, x in cases:
        if a.only and a.only not in name:
            continue
        y = torch.randint(0, 100, (x.shape[0],))
        med, lo, hi = time_it(step_fn(model, x, y), a.reps)
        flops = 3 * 2 * macs(model, x) * x.shape[0]
        rows.append((name, med, lo, hi, flops / (med * 1e-3) / 1e9))

    for classes in [100, 1000]:
        if a.only and a.only not in f"WSL loss forward+backward, batch 256, {classes} classes":
            continue
        s = torch.randn(256, classes, requires_grad=True)
        t = torch.randn(256, classes)
        y = torch.randint(0, classes, (256,))

        def wsl():
            ce_s = F.cross_entropy(s.detach(), y, reduction="none")
            ce_t = F.cross_entropy(t, y, reduction="none")
            w = 1 - torch.exp(-torch.clamp(ce_s / (ce_t + 1e-7), min=0))
            soft = -(F.softmax(t / 4, 1) * F.log_softmax(s / 4, 1)).sum(1)
            loss = F.cross_entropy(s, y) + 2.25 * 16 * (w * soft).mean()
            s.grad = None
            loss.backward()

        med, lo, hi = time_it(wsl, a.reps)
        rows.append((f"WSL loss forward+backward, batch 256, {classes} classes", med, lo, hi, float("nan")))

    print(f"PyTorch {torch.__version__}, {a.threads} threads")
    print(f"{'benchmark':<55} {'median ms':>10} {'min ms':>9} {'max ms':>9} {'GFLOP/s':>8} {'of peak':>8}")
    for name, med, lo, hi, gf in rows:
        print(f"{name:<55} {med:>10.2f} {lo:>9.2f} {hi:>9.2f} {gf:>8.1f} {gf / peak:>8.0%}")


def gpu(a):
    dev = torch.device(a.device)
    m = torch.randn(4096, 4096, device=dev)
    med, lo, hi = time_it(lambda: m @ m, a.reps)
    peak = 2 * 4096**3 / (med * 1e-3) / 1e9
    rows = [("f32 matmul 4096x4096x4096", med, lo, hi, peak)]
    model = resnet(8, [32, 64, 128, 256], 100).to(dev)
    x, y = torch.randn(128, 3, 32, 32, device=dev), torch.randint(0, 100, (128,), device=dev)
    med, lo, hi = time_it(step_fn(model, x, y), a.reps)
    flops = 3 * 2 * macs(model, x) * x.shape[0]
    rows.append(("resnet8x4 (CIFAR-100), batch 128, SGD step", med, lo, hi, flops / (med * 1e-3) / 1e9))
    print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name(dev)} (TF32 matmul: {torch.backends.cuda.matmul.allow_tf32})")
    print(f"{'benchmark':<55} {'median ms':>10} {'min ms':>9} {'max ms':>9} {'GFLOP/s':>8} {'of peak':>8}")
    for name, med, lo, hi, gf in rows:
        print(f"{name:<55} {med:>10.3f} {lo:>9.3f} {hi:>9.3f} {gf:>8.1f} {gf / peak:>8.0%}")


if __name__ == "__main__":
    main()
