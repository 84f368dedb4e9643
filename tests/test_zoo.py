"""Exactness on real architectures: every zoo model, with trained-like statistics and 30-50% of the
channels of every prunable group made dead, prunes to a smaller model with the same output."""
import copy, itertools, time
import numpy as np, pytest, torch
from conftest import ZOO, RESULTS, build, trained_like, inject_dead, weights, dead_rows, out_width, allowed_kept
from fasterai.sparse.analysis import analyse
from fasterai.sparse.pruner import Pruner
from fasterai.sparse.measure import n_params, count_flops
from fasterai.sparse.checkpoint import save_pruned, load_pruned

HALF = ['resnet18', 'mobilenet_v2', 'densenet121', 'efficientnet_b0', 'convnext_tiny', 'vit_b_16']
# tolerances on max |pruned - original| relative to max |original|
RTOL = {torch.float32: 1e-4, torch.float64: 1e-10}

def check_model(name, dtype):
    torch.manual_seed(0)
    model = trained_like(build(name)).to(dtype)
    x = torch.randn(2, 3, ZOO[name], ZOO[name], dtype=dtype)
    graph = analyse(model, x[:1]).graph
    before = weights(model)
    chosen = inject_dead(model, graph)
    injected = dead_rows(before, model)     # {layer: output rows the dead channels zeroed}
    assert chosen and injected, f"{name}: nothing to make dead"
    state = copy.deepcopy(model.state_dict())
    with torch.no_grad(): y = model(x)

    pruner = Pruner()
    t0 = time.perf_counter(); pruned = pruner.prune_model(model, x[:1]); seconds = time.perf_counter() - t0
    with torch.no_grad(): y2 = pruned(x)

    # the same function
    err = (y - y2).abs().max().item() / y.abs().max().item()
    assert err <= RTOL[dtype], f"{name} {dtype}: relative output error {err:.3g}"
    # the input model untouched
    after = model.state_dict()
    assert state.keys() == after.keys() and all(torch.equal(v, after[k]) for k, v in state.items()), f"{name}: input model modified"
    # and the pruned model shares no memory with it (the copy shares tensors until surgery; what is left is cloned)
    theirs = {t.untyped_storage().data_ptr() for t in itertools.chain(model.parameters(), model.buffers()) if t.numel()}
    shared = [k for k, t in itertools.chain(pruned.named_parameters(), pruned.named_buffers())
              if t.numel() and t.untyped_storage().data_ptr() in theirs]
    assert not shared, f"{name}: the pruned model shares {shared[:3]} with the input model"
    # every dead channel is gone, but for those kept to keep grouped convolutions balanced or a layer non-empty:
    # each conv/Linear's new width is its old width less the rows the injection zeroed, plus those kept. Only grouped
    # convolutions let live channels go too (exactly: the output check above): a group of filters all dead leaves
    # that group's inputs unread, a group of inputs all dead leaves that group's outputs constant
    grouped = any(isinstance(m, torch.nn.Conv2d) and m.groups > 1 and not m.groups == m.in_channels == m.out_channels
                  for m in model.modules())
    for layer, m in model.named_modules():
        if not isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)): continue
        old, new = out_width(m), out_width(pruned.get_submodule(layer))
        dead, kept = injected.get(layer, 0), allowed_kept(pruner, layer)
        assert new <= old - dead + kept, f"{name}: {layer} has {new} output channels, expected {old} - {dead} dead + {kept} kept"
        assert new == old - dead + kept or grouped, (f"{name}: {layer} lost {old - dead + kept - new} live channel(s) "
                                                     f"({old} - {dead} dead + {kept} kept, {new} left)")
    # the report's FLOPs (from the layers' shapes, by torch's formulas) are what torch's FlopCounterMode counts on a run
    rep = pruner.report
    assert (rep.flops_before, rep.flops_after) == (count_flops(model, (x[:1],)), count_flops(pruned, (x[:1],))), name
    frac = 1 - n_params(pruned) / n_params(model)
    assert frac > 0.15, f"{name}: only {frac:.1%} of the parameters removed"
    RESULTS.append((name, str(dtype).split('.')[-1], frac, seconds))
    return model, pruned, pruner.plan

@pytest.mark.parametrize('name', list(ZOO))
def test_zoo_float32(name, tmp_path):
    model, pruned, plan = check_model(name, torch.float32)
    # save and load into a freshly built architecture: the same function as the pruned model
    save_pruned(pruned, tmp_path/'pruned.pt')
    loaded = load_pruned(lambda: build(name), tmp_path/'pruned.pt')
    x = torch.randn(2, 3, ZOO[name], ZOO[name])
    with torch.no_grad(): assert torch.equal(loaded.eval()(x), pruned(x)), f"{name}: loaded model differs"
    assert n_params(loaded) == n_params(pruned)

@pytest.mark.parametrize('name', list(ZOO))
def test_zoo_float64(name): check_model(name, torch.float64)

@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('name', HALF)
def test_zoo_half(name, dtype):
    """Half precision: the pruned model holds exactly the original's remaining weights, so widened to
    float64 both compute the same function (their own half-precision rounding noise aside)."""
    torch.manual_seed(0)
    model = trained_like(build(name)).to(dtype)
    x = torch.randn(2, 3, ZOO[name], ZOO[name])
    graph = analyse(model, x[:1].to(dtype)).graph; inject_dead(model, graph)
    pruned = Pruner().prune_model(model, x[:1].to(dtype))
    assert next(pruned.parameters()).dtype == dtype
    with torch.no_grad(): y, y2 = model.double()(x.double()), pruned.double()(x.double())
    assert ((y - y2).abs().max() / y.abs().max()).item() <= RTOL[torch.float64]
    assert 1 - n_params(pruned) / n_params(model) > 0.15

def test_parameter_count_is_exact():
    "On a plain residual net the parameters removed are exactly those the removed channels held."
    model, pruned, plan = check_model('resnet18', torch.float32)
    expected = 0
    for name, m in pruned.named_modules():
        if isinstance(m, torch.nn.Conv2d): expected += m.out_channels * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.BatchNorm2d): expected += 2 * m.num_features
        elif isinstance(m, torch.nn.Linear): expected += m.out_features * (m.in_features + 1)
    assert n_params(pruned) == expected
    # and nothing else changed: layers that kept their width keep their exact weights
    orig = dict(model.named_parameters())
    for k, p in pruned.named_parameters():
        if p.shape == orig[k].shape: assert torch.equal(p, orig[k]), k

def test_constant_channels_fold_only_where_exact():
    """Zeroed conv filters whose BatchNorm still shifts them output a constant, not zero. Read by a
    zero-padded conv they stay; the last conv's, read through pooling by a Linear, fold; output unchanged."""
    torch.manual_seed(0)
    model = trained_like(build('vgg16_bn'))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d): m.weight[: m.out_channels // 2] = 0; m.bias[: m.out_channels // 2] = 0
    x = torch.randn(2, 3, 32, 32)
    convs = lambda net: [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    pruned = Pruner().prune_model(model, x[:1])
    assert convs(pruned) == convs(model)[:-1] + [convs(model)[-1] // 2]
    assert convs(Pruner(constants='keep').prune_model(model, x[:1])) == convs(model)
    with torch.no_grad(): assert torch.allclose(model(x), pruned(x), atol=1e-5, rtol=1e-5)

def test_sum_zero_filter_is_kept():
    torch.manual_seed(0)
    model = build('alexnet')
    with torch.no_grad():
        w = model.features[0].weight; w[5] = 0; w[5, 0, 0, 0], w[5, 0, 0, 1] = 1., -1.; model.features[0].bias[5] = 0
        w[6] = 0; model.features[0].bias[6] = 0
    pruned = Pruner().prune_model(model, torch.randn(1, 3, 64, 64))
    assert pruned.features[0].out_channels == 63   # filter 6 went, the edge detector 5 stayed
