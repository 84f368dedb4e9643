"Shared helpers for the pytest suites: real torchvision architectures, trained-like statistics, dead-channel injection."
import os, pytest, torch, torch.nn as nn

# under pytest-xdist each worker gets one torch thread: two workers on two cores, not four threads fighting for them
if os.environ.get('PYTEST_XDIST_WORKER'): torch.set_num_threads(1)

torchvision = pytest.importorskip("torchvision", reason="the zoo tests need torchvision: pip install -e '.[dev]'")

# model name -> input image size: small enough for CI on 2 cores, large enough for each architecture
ZOO = {'alexnet': 64, 'vgg11': 32, 'vgg16': 32, 'vgg16_bn': 32, 'resnet18': 64, 'resnet50': 64,
       'resnext50_32x4d': 64, 'wide_resnet50_2': 64, 'mobilenet_v2': 64, 'mobilenet_v3_small': 64,
       'mnasnet0_5': 64, 'densenet121': 64, 'squeezenet1_0': 64, 'googlenet': 64, 'efficientnet_b0': 64,
       'regnet_y_400mf': 64, 'shufflenet_v2_x0_5': 64, 'convnext_tiny': 64, 'inception_v3': 96, 'vit_b_16': 224}

from fasterai.cli import build_model as build          # torchvision by name, random weights, nothing downloaded
from fasterai.testing import trained_like        # non-trivial BatchNorm statistics, no zero-initialised layers

def inject_dead(model, graph, seed=0, lo=.3, hi=.5):
    "Make a random 30-50% of the removable channels of every prunable group dead; returns the chosen channel classes."
    from fasterai.sparse.sparsifier import zero_channels, weakest_channels
    chosen = weakest_channels(model, graph, (lo, hi), 'random', seed)
    zero_channels(model, graph, chosen)
    return set(int(c) for c in chosen)

def width(module, kind):
    "The size of a layer dimension as the module reports it."
    if isinstance(module, nn.Linear): return {'out': module.out_features, 'in': module.in_features}[kind]
    if isinstance(module, nn.modules.batchnorm._BatchNorm): return module.num_features
    return {'out': module.out_channels, 'in': module.in_channels, 'chan': module.out_channels}[kind]

RESULTS = []    # (model, dtype, fraction of parameters removed, seconds), appended by the checks where they run
_SUMMARY = []   # the same, gathered from every test's report where the summary is printed (the xdist controller too)

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    "A test's results travel in its report (user_properties), so that they reach the summary from xdist's workers."
    report = (yield).get_result()
    if call.when == 'call' and RESULTS:
        report.user_properties += [('pruned', tuple(r)) for r in RESULTS]; RESULTS.clear()

def pytest_runtest_logreport(report):
    _SUMMARY.extend(v for k, v in report.user_properties if k == 'pruned')

def pytest_terminal_summary(terminalreporter):
    if not _SUMMARY: return
    terminalreporter.section("pruned models")
    terminalreporter.write_line(f"{'model':22s} {'dtype':8s} {'params removed':>15s} {'seconds':>8s}")
    for name, dtype, frac, sec in sorted(_SUMMARY, key=lambda r: (r[0], r[1])):
        terminalreporter.write_line(f"{name:22s} {dtype:8s} {frac:15.1%} {sec:8.2f}")

# ---- dead channels seen in the weights, independently of the library's analysis

def weights(model):
    "{name: (weight, bias)} cloned, for every Conv2d and Linear: to see afterwards which rows were zeroed."
    return {n: (m.weight.detach().clone(), None if m.bias is None else m.bias.detach().clone())
            for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}

def dead_rows(before, model):
    """{layer name: number of output rows that are entirely zero (weight row and bias) in `model` but were not in
    `before` (a `weights` snapshot)}: the dead channels injected in between, seen without the library's analysis."""
    def zero(w, b): z = (w.reshape(len(w), -1) == 0).all(1); return z if b is None else z & (b == 0)
    now = weights(model); out = {}
    for n, (w, b) in before.items():
        k = int((zero(*now[n]) & ~zero(w, b)).sum())
        if k: out[n] = k
    return out

def allowed_kept(pruner, layer, codes=('group_balance', 'last_channel')):
    """How many dead output channels of `layer` the pruner kept for a legitimate reason: grouped convolutions stay
    balanced (code 'group_balance') and no layer goes to zero width ('last_channel'), and any other `codes`. Read
    from the report's 'out' row (depthwise convs: 'chan'), which counts the channels kept per reason code."""
    rows = [r for r in pruner.report.layers if r['layer'] == layer and r['dim'] in ('out', 'chan')]
    return max([sum(r['codes'].get(c, 0) for c in codes) for r in rows], default=0)

def out_width(m): return m.out_features if isinstance(m, nn.Linear) else m.out_channels
