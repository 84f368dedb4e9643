"""Deployment options on real architectures: BatchNorm folding, hardware-friendly widths, export."""
import numpy as np, pytest, torch
from conftest import ZOO, build, trained_like, inject_dead
from fasterai.sparse.analysis import analyse
from fasterai.sparse.pruner import Pruner
from fasterai.sparse.deploy import fold_batchnorm, foldable_pairs, export_model

WITH_BN = [n for n in ZOO if n not in ('alexnet', 'vgg11', 'vgg16', 'squeezenet1_0', 'convnext_tiny', 'vit_b_16')]

def pruned_model(name, dtype=torch.float32, round_to=1, seed=0):
    torch.manual_seed(seed)
    model = trained_like(build(name)).to(dtype)
    x = torch.randn(2, 3, ZOO[name], ZOO[name], dtype=dtype)
    graph = analyse(model, x[:1]).graph; chosen = inject_dead(model, graph, seed=seed)
    pruner = Pruner(round_to=round_to)
    return model, pruner.prune_model(model, x[:1]), pruner, graph, chosen, x

@pytest.mark.parametrize('name', WITH_BN)
def test_fold_batchnorm_exact(name):
    "Folding every foldable BatchNorm of the pruned model keeps its output (float64: rounding aside, exact)."
    model, pruned, _, _, _, x = pruned_model(name, torch.float64)
    n_bn = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in pruned.modules())
    folded = fold_batchnorm(pruned)
    left = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert left < n_bn and len(foldable_pairs(pruned)) == n_bn - left
    assert sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in pruned.modules()) == n_bn   # not in place
    with torch.no_grad(): y, y2 = pruned(x), folded(x)
    assert ((y - y2).abs().max() / y.abs().max()).item() < 1e-10

def test_fold_linear_batchnorm1d():
    """A ResNet-18 with an MLP head (Linear -> BatchNorm1d -> ReLU -> Linear), pruned: given example inputs,
    fold_batchnorm folds every BatchNorm, the head's too; without them the head's stays, with a warning.
    float64, same output to 1e-10 relative."""
    torch.manual_seed(0)
    model = build('resnet18')
    model.fc = torch.nn.Sequential(torch.nn.Linear(512, 64), torch.nn.BatchNorm1d(64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    model = trained_like(model).double()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    inject_dead(model, analyse(model, x[:1]).graph)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    pruned = Pruner().prune_model(model, x[:1])
    assert pruned.fc[0].out_features < 64                     # the head was pruned too
    folded = fold_batchnorm(pruned, example_inputs=(x[:1],))
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    with torch.no_grad(): y0, y, y2 = model(x), pruned(x), folded(x)
    for out in (y, y2): assert ((y0 - out).abs().max() / y0.abs().max()).item() < 1e-10   # the original's output
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())           # the input model untouched
    with pytest.warns(UserWarning, match="example_inputs"): kept = fold_batchnorm(pruned)
    assert isinstance(kept.fc[1], torch.nn.BatchNorm1d) and isinstance(kept.bn1, torch.nn.Identity)

@pytest.mark.parametrize('name', ['resnet50', 'mobilenet_v2', 'regnet_y_400mf', 'densenet121'])
def test_round_to_never_removes_live_channels(name):
    "round_to=8: every producer width is a multiple of 8 (or untouched), only dead channels go, the output is the same."
    model, pruned, pruner, graph, chosen, x = pruned_model(name, round_to=8)
    plan, root = pruner.plan, graph.roots()
    # nothing live removed: only the chosen, channels read only by zero weights, and constants folded exactly
    g = pruner.graph; r = g.roots(); read_live = set()
    for u in g.uses: read_live |= {int(c) for c in r[u.slots[(u.slots >= 0) & ~u.dead]]}
    assert not (plan.removed - plan.folded - chosen) & read_live
    assert plan.exact
    for (owner, kind), slots in graph.dims.items():
        if kind in ('out', 'chan') and (owner, kind) in plan.keep:
            assert len(plan.keep[owner, kind]) % 8 == 0, f"{owner}: {len(plan.keep[owner, kind])}"
    assert any(w.code == 'round_to' for w in plan.kept_dead.values())
    with torch.no_grad(): assert torch.allclose(model(x), pruned(x), atol=1e-4 * model(x).abs().max().item())

@pytest.mark.parametrize('name', ['resnet18', 'mobilenet_v2'])
def test_export_torch_export(name, tmp_path):
    "The pruned and folded model exports with torch.export; the reloaded program gives the same output."
    _, pruned, _, _, _, x = pruned_model(name)
    assert export_model(fold_batchnorm(pruned), (x[:1],), tmp_path/'m.pt2') < 1e-4

@pytest.mark.parametrize('name', ['resnet18'])
def test_export_onnx(name, tmp_path):
    "The pruned and folded model exports to ONNX; onnxruntime gives the same output."
    pytest.importorskip('onnxruntime', reason="ONNX export is tested where the [export] extra is installed")
    _, pruned, _, _, _, x = pruned_model(name)
    assert export_model(fold_batchnorm(pruned), (x[:1],), tmp_path/'m.onnx') < 1e-4
