"Shared helpers for the pytest suites: real torchvision architectures, trained-like statistics, dead-channel injection."
import pytest, torch.nn as nn

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

RESULTS = []   # (model, dtype, fraction of parameters removed, seconds), printed at the end of the run

def pytest_terminal_summary(terminalreporter):
    if not RESULTS: return
    terminalreporter.section("pruned models")
    terminalreporter.write_line(f"{'model':22s} {'dtype':8s} {'params removed':>15s} {'seconds':>8s}")
    for name, dtype, frac, sec in RESULTS:
        terminalreporter.write_line(f"{name:22s} {dtype:8s} {frac:15.1%} {sec:8.2f}")
