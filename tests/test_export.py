"""The torch.export frontend: models torch.fx cannot trace (every Hugging Face model) are pruned through their ATen
graph, exactly, into the user's own class; and on a model both can capture, both frontends decide the same."""
import copy
import numpy as np, pytest, torch
from conftest import build, trained_like, inject_dead
from fasterai.sparse.analysis import analyse
from fasterai.sparse.pruner import Pruner
from fasterai.sparse.trace import TraceError

transformers = pytest.importorskip("transformers",
                                   reason="the Hugging Face tests need transformers: pip install -e '.[dev]'")

def small_bert(dtype):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.,
                                  attention_probs_dropout_prob=0.)
    return transformers.BertModel(cfg).eval().to(dtype)

@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_bert_through_export(dtype):
    model = small_bert(dtype)
    ids = torch.randint(0, 100, (2, 12))
    with pytest.raises(TraceError): analyse(model, (ids,), frontend='fx')   # fx cannot, and says so
    analysis = analyse(model, (ids,))
    assert analysis.frontend == 'export'
    inject_dead(model, analysis.graph)
    dead = {i: int((model.encoder.layer[i].intermediate.dense.weight.abs().sum(1) == 0).sum()) for i in range(2)}
    assert all(dead.values())
    state = copy.deepcopy(model.state_dict())
    unseen = torch.randint(0, 100, (3, 17))                 # another batch size and sequence length
    with torch.no_grad(): y = model(unseen).last_hidden_state
    pruner = Pruner(); pruned = pruner.prune_model(model, (ids,))
    assert type(pruned) is transformers.BertModel and pruner.report.frontend == 'export'
    with torch.no_grad(): y2 = pruned(unseen).last_hidden_state
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert ((y - y2).abs().max() / y.abs().max()).item() <= tol
    for i, n in dead.items():   # every dead MLP unit gone, from both sides
        assert pruned.encoder.layer[i].intermediate.dense.out_features == 64 - n
        assert pruned.encoder.layer[i].output.dense.in_features == 64 - n
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items()), "input model modified"

def test_both_frontends_decide_alike():
    "resnet18 traces with fx and exports with torch.export: the same channels go, and the outputs agree."
    torch.manual_seed(0)
    model = trained_like(build('resnet18')); x = torch.randn(1, 3, 64, 64)
    inject_dead(model, analyse(model, x).graph)
    state = copy.deepcopy(model.state_dict())
    by_fx, by_export = Pruner(frontend='fx'), Pruner(frontend='export')
    a, b = by_fx.prune_model(model, x), by_export.prune_model(model, x)
    assert (by_fx.report.frontend, by_export.report.frontend) == ('fx', 'export')
    assert by_fx.plan.keep and {k: list(v) for k, v in by_fx.plan.keep.items()} == \
        {k: list(v) for k, v in by_export.plan.keep.items()}
    unseen = torch.randn(3, 3, 64, 64)                       # another batch size than the Pruner saw
    with torch.no_grad():
        y = model(unseen)
        for pruned in (a, b): assert ((pruned(unseen) - y).abs().max() / y.abs().max()).item() <= 1e-4
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items()), "input model modified"

def test_bad_frontend():
    with pytest.raises(ValueError, match='frontend must be one of'): Pruner(frontend='onnx')
