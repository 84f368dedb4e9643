"Shared helpers for the pytest suites: real torchvision architectures, trained-like statistics, dead-channel injection."
import time
import numpy as np, pytest, torch, torch.nn as nn

torchvision = pytest.importorskip("torchvision", reason="the zoo tests need torchvision: pip install -e '.[dev]'")

# model name -> input image size: small enough for CI on 2 cores, large enough for each architecture
ZOO = {'alexnet': 64, 'vgg11': 32, 'vgg16': 32, 'vgg16_bn': 32, 'resnet18': 64, 'resnet50': 64,
       'resnext50_32x4d': 64, 'wide_resnet50_2': 64, 'mobilenet_v2': 64, 'mobilenet_v3_small': 64,
       'mnasnet0_5': 64, 'densenet121': 64, 'squeezenet1_0': 64, 'googlenet': 64, 'efficientnet_b0': 64,
       'regnet_y_400mf': 64, 'shufflenet_v2_x0_5': 64, 'convnext_tiny': 64, 'inception_v3': 96, 'vit_b_16': 224}

def build(name):
    "A torchvision model with random weights (nothing downloaded), in eval mode."
    kw = {'aux_logits': False, 'init_weights': False} if name in ('googlenet', 'inception_v3') else {}
    return torchvision.models.get_model(name, weights=None, **kw).eval()

@torch.no_grad()
def trained_like(model, seed=0):
    """Non-trivial statistics, as after training: BatchNorm running stats and affine parameters, and
    weights that torchvision initialises to zero or near zero (ViT's head, ConvNeXt's layer scale)."""
    g = torch.Generator().manual_seed(seed)
    u = lambda t, lo, hi: t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            u(m.running_mean, -.5, .5); u(m.running_var, .5, 2.); u(m.weight, .5, 1.5); u(m.bias, -.3, .3)
        if isinstance(m, nn.Linear) and not m.weight.any(): u(m.weight, -.05, .05)
    for name, p in model.named_parameters():
        if name.endswith('layer_scale'): u(p, .5, 1.)
    return model

def inject_dead(model, graph, seed=0, lo=.3, hi=.5):
    "Make a random 30-50% of the removable channels of every prunable group dead; returns the chosen channel classes."
    from fasterai.sparse.analysis import zero_channels
    rng = np.random.default_rng(seed); chosen = []
    for gr in graph.groups():
        if not gr.prunable: continue
        free = [c for c in gr.channels if c not in gr.frozen]
        chosen += [int(c) for c in rng.choice(free, int(len(free) * rng.uniform(lo, hi)), replace=False)]
    zero_channels(model, graph, chosen)
    return set(chosen)

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
