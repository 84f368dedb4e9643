"""Constant channels, the group-aware Sparsifier, torch.nn.utils.prune, and the pruning report.

Real torchvision architectures (random weights, trained-like statistics, nothing downloaded). A filter
sparsifier zeroes only weights: the bias and BatchNorm after a zeroed filter keep their values, so the
channel outputs a constant. The Pruner removes it by folding the constant into the layers that read it
where that is exact (a Linear, an unpadded conv, after global pooling) and keeps the rest, unless
asked to fold approximately."""
import copy
import numpy as np, pytest, torch, torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode
from conftest import build, trained_like, width
from fasterai.sparse.analysis import analyse
from fasterai.sparse.sparsifier import Sparsifier, weakest_channels
from fasterai.sparse.pruner import Pruner
from fasterai.sparse.measure import n_params

SIZES = {'vgg16': 32, 'vgg16_bn': 32, 'alexnet': 64, 'mobilenet_v2': 64, 'resnet18': 64}
# layers whose zeroed filters are read only by a Linear or through global pooling: their constants fold exactly
EXACT = {'vgg16': ['features.28', 'classifier.0', 'classifier.3'],
         'vgg16_bn': ['features.40', 'classifier.0', 'classifier.3'],
         'alexnet': ['features.10', 'classifier.1', 'classifier.4'],
         'mobilenet_v2': ['features.18.0'],
         'resnet18': []}   # every stream is also read by a zero-padded 3x3 conv: nothing folds exactly
# MobileNetV2 reads every 3x3 map through a depthwise conv whose kernels the Sparsifier zeroes too: the
# channel is then exactly zero at the border as well, so every chosen channel folds exactly
ALL_EXACT = {'mobilenet_v2'}
RTOL = {torch.float32: 1e-4, torch.float64: 1e-10}   # max |pruned - original| relative to max |original|

@torch.no_grad()
def trained_biases(model, seed=0):
    "torchvision initialises some biases to zero; after training they are not (mostly positive, some negative)."
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            m.bias.copy_((torch.rand(m.bias.shape, generator=g) * .4 - .1).to(m.bias.dtype))
    return model

def snapshot(model): return {k: v.clone() for k, v in model.state_dict().items()}
def untouched(model, snap): return all(torch.equal(v, snap[k]) for k, v in model.state_dict().items())

def weights_only(name, dtype=torch.float32):
    "The model, an input batch, and its Sparsifier after zeroing the weights of the weakest half of every group's channels."
    torch.manual_seed(0)
    model = trained_biases(trained_like(build(name))).to(dtype)
    x = torch.randn(2, 3, SIZES[name], SIZES[name], dtype=dtype)
    sp = Sparsifier(model, 'filter', 'local', 'l1', x[:1])
    sp.sparsify_model(0.5)
    return model, x, sp

def chosen_in(sp, owner, kind='out'):
    "How many of the Sparsifier's chosen channels `owner`'s dimension holds."
    root, chosen = sp.graph.roots(), set(int(c) for c in sp.chosen)
    return sum(int(r) in chosen for r in root[sp.graph.dims[owner, kind]])

def removed_all_chosen(sp, model, pruned) -> bool:
    "Every layer that produces channels lost at least the Sparsifier's chosen ones."
    root, chosen = sp.graph.roots(), set(int(c) for c in sp.chosen)
    for (owner, kind), slots in sp.graph.dims.items():
        if kind != 'out': continue
        n = sum(int(r) in chosen for r in root[slots])
        assert width(pruned.get_submodule(owner), 'out') <= width(model.get_submodule(owner), 'out') - n, owner
    return True

@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('name', list(SIZES))
def test_weights_only_exact_by_default(name, dtype):
    """Default mode: the same output; the zeroed filters of layers read by a Linear or after global
    pooling are removed (folded where constant, dropped where relu made them zero), the others kept."""
    model, x, sp = weights_only(name, dtype)
    snap = snapshot(model)
    with torch.no_grad(): y = model(x)
    pruner = Pruner(); pruned = pruner.prune_model(model, x[:1])
    with torch.no_grad(): y2 = pruned(x)
    err = ((y - y2).abs().max() / y.abs().max()).item()
    assert err <= RTOL[dtype], f"{name}: relative output error {err:.3g}"
    assert untouched(model, snap) and pruner.report.exact
    records = {(r['layer'], r['dim']): r for r in pruner.report.to_records()}
    folded = 0
    for owner in EXACT[name]:
        n = chosen_in(sp, owner)
        assert n > 0
        assert width(pruned.get_submodule(owner), 'out') == width(model.get_submodule(owner), 'out') - n, owner
        r = records[owner, 'out']
        assert r['zero'] + r['folded'] == n and r['kept'] == 0, r
        folded += r['folded']
    if EXACT[name]: assert folded > 0, f"{name}: no constant channel was folded"
    padded = [why for why in pruner.report.kept if 'zero-pads' in why]
    if name in ALL_EXACT:
        assert not pruner.report.kept and removed_all_chosen(sp, model, pruned)
    else:   # a zeroed filter read by a zero-padded conv stays, and the report says why
        assert padded, f"{name}: no constant channel kept for zero padding"

@pytest.mark.parametrize('name', list(SIZES))
def test_weights_only_approx_removes_more(name):
    "constants='approx': every zeroed filter goes; the reported output difference is the measured one."
    model, x, sp = weights_only(name)
    snap = snapshot(model)
    exact = Pruner().prune_model(model, x[:1])
    pruner = Pruner(constants='approx'); approx = pruner.prune_model(model, x[:1])
    assert untouched(model, snap)
    with torch.no_grad(): measured = (model(x[:1]) - approx(x[:1])).abs().max().item()
    with torch.no_grad(): y, y2 = model(x), exact(x)
    assert ((y - y2).abs().max() / y.abs().max()).item() <= 1e-4     # the default stays exact beside it
    assert pruner.report.max_abs_diff == pytest.approx(measured, rel=1e-6, abs=1e-12)
    assert removed_all_chosen(sp, model, approx)
    if name in ALL_EXACT: assert n_params(approx) == n_params(exact) and pruner.report.exact
    else: assert n_params(approx) < n_params(exact) and not pruner.report.exact and measured > 0

def test_keep_mode_removes_only_zeros():
    model, x, sp = weights_only('alexnet')
    snap = snapshot(model)
    kept = Pruner(constants='keep').prune_model(model, x[:1])
    exact = Pruner().prune_model(model, x[:1])
    assert n_params(kept) > n_params(exact) and untouched(model, snap)
    with torch.no_grad(): y = model(x)
    for pruned in (kept, exact):
        with torch.no_grad(): assert ((y - pruned(x)).abs().max() / y.abs().max()).item() <= 1e-4
    with pytest.raises(ValueError, match='constants must be one of'): Pruner(constants='fold')

def flops(model, x):
    with torch.no_grad(), FlopCounterMode(display=False) as c: model(x)
    return c.get_total_flops()

def test_report_matches_independent_counts():
    "Parameters, FLOPs, widths and per-layer removal counts, each recounted without the report."
    model, x, sp = weights_only('vgg16_bn')
    snap = snapshot(model)
    pruner = Pruner(); pruned = pruner.prune_model(model, x[:1]); rep = pruner.report
    assert untouched(model, snap)
    with torch.no_grad(): y, y2 = model(x), pruned(x)
    assert ((y - y2).abs().max() / y.abs().max()).item() <= 1e-4
    assert rep.params_before == sum(p.numel() for p in model.parameters())
    assert rep.params_after == sum(p.numel() for p in pruned.parameters())
    assert rep.flops_before == flops(model, x[:1]) and rep.flops_after == flops(pruned, x[:1])
    assert rep.flops_after < rep.flops_before
    with torch.no_grad(): assert rep.max_abs_diff == pytest.approx((model(x[:1]) - pruned(x[:1])).abs().max().item(), abs=1e-12)
    for r in rep.to_records():
        assert set(r) == {'layer', 'type', 'dim', 'before', 'after', 'zero', 'folded', 'kept', 'why', 'codes'}
        assert r['before'] == width(model.get_submodule(r['layer']), r['dim'])
        assert r['after'] == width(pruned.get_submodule(r['layer']), r['dim'])
        assert r['zero'] + r['folded'] == r['before'] - r['after']
        assert (r['kept'] > 0) == bool(r['why'])
    # kept channels: those the Sparsifier chose but that are still there, per producing layer
    for r in rep.to_records():
        if r['dim'] == 'out': assert r['kept'] == chosen_in(sp, r['layer']) - (r['before'] - r['after']), r
    text = str(rep)
    assert 'FLOPs' in text and 'folded' in text and 'zero-pads' in text

SPARSIFY = {'resnet18': 64, 'resnet50': 64, 'mobilenet_v2': 64, 'densenet121': 64}

def free_channels(graph):
    return {id(gr): (gr, [c for c in gr.channels if c not in gr.frozen]) for gr in graph.groups() if gr.prunable}

@pytest.mark.parametrize('name', list(SPARSIFY))
def test_sparsifier_fraction_per_criterion_and_context(name):
    torch.manual_seed(0)
    model = trained_like(build(name)); x = torch.randn(1, 3, SPARSIFY[name], SPARSIFY[name])
    sp = Sparsifier(model, 'filter', 'local', 'l1', x)
    groups = free_channels(sp.graph).values()
    total = sum(len(free) for _, free in groups)
    for crit in ('l1', 'l2', 'random'):
        for frac in (0.25, 0.5):
            local = weakest_channels(model, sp.graph, frac, crit, context='local')
            assert len(local) == sum(int(len(free) * frac) for _, free in groups)
            glob = weakest_channels(model, sp.graph, frac, crit, context='global')
            assert len(glob) == int(total * frac)
            assert len(set(glob)) == len(glob) and set(glob) <= {c for _, free in groups for c in free}

@pytest.mark.parametrize('name', list(SPARSIFY))
def test_sparsifier_then_pruner_removes_that_fraction_of_every_group(name):
    "Group-aware sparsification with biases and norms: the Pruner then removes exactly half of every group's free channels."
    torch.manual_seed(0)
    model = trained_like(build(name)); x = torch.randn(2, 3, SPARSIFY[name], SPARSIFY[name])
    sp = Sparsifier(model, 'filter', 'local', 'l2', x[:1], biases=True)
    sp.sparsify_model(0.5)
    snap = snapshot(model)
    pruned = Pruner().prune_model(model, x[:1])
    assert untouched(model, snap)
    with torch.no_grad(): y, y2 = model(x), pruned(x)
    assert ((y - y2).abs().max() / y.abs().max()).item() <= 1e-4
    for gr, free in free_channels(sp.graph).values():
        gone = len(free) // 2
        for owner, kind in gr.dims:
            if kind == 'param': continue
            before = sp.graph.dims[owner, kind]
            # a Linear reading a flattened map holds each channel several times: count indices, not channels
            removed = np.isin(sp.graph.roots()[before], [int(c) for c in sp.chosen])
            assert width(pruned.get_submodule(owner), kind) == len(before) - removed.sum(), (owner, kind)
        assert sum(int(c) in set(int(k) for k in sp.chosen) for c in gr.channels) == gone

def test_sparsifier_global_and_training_flags():
    torch.manual_seed(0)
    model = trained_like(build('resnet18')).train(); x = torch.randn(1, 3, 64, 64)
    snap_modes = [m.training for m in model.modules()]
    sp = Sparsifier(model, 'row', 'global', 'squared_final', x)
    assert [m.training for m in model.modules()] == snap_modes        # analysed in eval mode, flags restored
    sp.sparsify_model(0.3)
    assert abs(sp.sparsity() - 0.3) < 0.01
    root, chosen = sp.graph.roots(), set(int(c) for c in sp.chosen)
    owner, idx = next((o, [i for i, r in enumerate(root[s]) if int(r) in chosen]) for (o, k), s in sp.graph.dims.items()
                      if k == 'out' and any(int(r) in chosen for r in root[s]))
    layer = model.get_submodule(owner)
    with torch.no_grad(): layer.weight.add_(1.)                          # an optimizer step revives the chosen channels
    sp.apply_masks()
    assert (layer.weight[idx] == 0).all() and (layer.weight != 0).any()
    with pytest.raises(ValueError, match='whole channels'): Sparsifier(model, 'weight')
    with pytest.raises(ValueError, match='0.4 for 40%'): sp.sparsify_model(40)
    with pytest.raises(ValueError, match='criterion'): Sparsifier(model, 'filter', 'local', 'movement', x)

def test_ln_structured_conv_prunes_to_a_plain_smaller_model():
    "torch.nn.utils.prune.ln_structured on VGG16's last conv (bias kept): the masked filters are constants that fold exactly."
    from torch.nn.utils import prune
    torch.manual_seed(0)
    model = trained_biases(trained_like(build('vgg16'))); x = torch.randn(2, 3, 32, 32)
    prune.ln_structured(model.features[28], 'weight', amount=0.5, n=1, dim=0)
    snap = snapshot(model)
    pruned = Pruner().prune_model(model, x[:1])
    conv = pruned.features[28]
    assert not hasattr(conv, 'weight_mask') and not hasattr(conv, 'weight_orig') and not conv._forward_pre_hooks
    assert hasattr(model.features[28], 'weight_mask') and untouched(model, snap)
    assert conv.out_channels == 256 and pruned.classifier[0].in_features == 256 * 49
    with torch.no_grad(): y, y2 = model(x), pruned(x)
    assert ((y - y2).abs().max() / y.abs().max()).item() <= 1e-4
