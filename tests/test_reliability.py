"""Reliability of `Pruner.prune_model`: random small networks with random dead channels (property-based,
with hypothesis), and bad or unusual inputs. Every test also checks that the model given is left untouched."""
import copy, math, re
import numpy as np, pytest, torch, torch.nn as nn, torch.nn.functional as F
import torch.nn.utils.prune as torch_prune
from hypothesis import HealthCheck, given, settings, strategies as st
from fasterai.sparse.analysis import analyse
from fasterai.sparse.sparsifier import zero_channels
from fasterai.sparse.pruner import Pruner
from fasterai.sparse.measure import n_params
from conftest import weights, dead_rows, allowed_kept, out_width

# ============================================================================ helpers

def snapshot(model):
    "Everything `prune_model` must leave as it was: parameters and buffers (cloned), training flags, hooks."
    return dict(state={k: v.detach().clone() for k, v in model.state_dict().items()},
                training={n: m.training for n, m in model.named_modules()},
                hooks={n: (len(getattr(m, '_forward_pre_hooks', ())), len(getattr(m, '_forward_hooks', ())))
                       for n, m in model.named_modules()},
                ids={k: id(v) for k, v in model.named_parameters()},
                attributes={n: sorted(vars(m)) for n, m in model.named_modules()})

def assert_untouched(model, snap):
    now = snapshot(model)
    assert now['state'].keys() == snap['state'].keys(), "the input model's state_dict keys changed"
    changed = [k for k, v in snap['state'].items() if v.shape != now['state'][k].shape or not torch.equal(v, now['state'][k])]
    assert not changed, f"the input model was modified: {changed[:5]}"
    assert now['training'] == snap['training'], "the input model's training flags changed"
    assert now['hooks'] == snap['hooks'], "the input model's hooks changed"
    assert now['ids'] == snap['ids'], "the input model's parameters were replaced"
    assert now['attributes'] == snap['attributes'], "attributes were added to or removed from the input model's modules"

def rel_err(a, b):
    "max |a - b| / max(1, max |a|), in float64."
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).abs().max() / max(1.0, a.abs().max().item())).item()

@torch.no_grad()
def randomize_bn(model, gen):
    "Trained-like BatchNorm statistics and affine parameters."
    u = lambda t, lo, hi: t.copy_(torch.rand(t.shape, generator=gen, dtype=torch.float64).to(t.dtype) * (hi - lo) + lo)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            u(m.running_mean, -.5, .5); u(m.running_var, .5, 2.); u(m.weight, .5, 1.5); u(m.bias, -.3, .3)
    return model

def kill(conv_or_linear, rows, bn=None):
    "Make output channels `rows` dead: zero weights and bias rows (and the following BatchNorm's scale and shift)."
    with torch.no_grad():
        conv_or_linear.weight[rows] = 0
        if conv_or_linear.bias is not None: conv_or_linear.bias[rows] = 0
        if bn is not None: bn.weight[rows] = 0; bn.bias[rows] = 0

def assert_dead_gone(pruner, model, pruned, injected):
    "Every layer holding injected dead rows lost them all, but for the channels `allowed_kept` allows."
    for name, k in injected.items():
        before, after = [out_width(net.get_submodule(name)) for net in (model, pruned)]
        kept = allowed_kept(pruner, name)
        assert after <= before - k + kept, (f"{name}: {k} injected dead channel(s) of {before}, {kept} kept legitimately, "
                                            f"but {after} left (at most {before - k + kept} allowed)")

# ============================================================================ random networks from random specs

class ConvBNAct(nn.Module):
    "conv (plain, grouped or depthwise) -> optional BatchNorm -> optional ReLU."
    def __init__(self, cin, cout, k=3, groups=1, bias=True, bn=True, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(cout) if bn else nn.Identity()
        self.act = nn.ReLU() if act else nn.Identity()
    def forward(self, x): return self.act(self.bn(self.conv(x)))

class Residual(nn.Module):
    "relu(body(x) + shortcut(x)); the shortcut is the identity, or a 1x1 projection when the width changes."
    def __init__(self, c, mid, cout, bn):
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(c, mid, 3, bn=bn), ConvBNAct(mid, cout, 3, bn=bn, act=False))
        self.proj = ConvBNAct(c, cout, 1, bn=bn, act=False) if cout != c else None
    def forward(self, x):
        s = x if self.proj is None else self.proj(x)
        return F.relu(self.body(x) + s)

class Concat(nn.Module):
    "Branches of different widths and kernels, concatenated along channels."
    def __init__(self, c, widths, kernels, bn):
        super().__init__()
        self.branches = nn.ModuleList(ConvBNAct(c, w, k, bn=bn) for w, k in zip(widths, kernels))
    def forward(self, x): return torch.cat([b(x) for b in self.branches], 1)

class SqueezeExcite(nn.Module):
    "x * sigmoid(conv(relu(conv(pool(x))))): the gate is computed from x's own channels."
    def __init__(self, c, r, pool):
        super().__init__()
        self.fc1, self.fc2, self.pool = nn.Conv2d(c, r, 1), nn.Conv2d(r, c, 1), pool
    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1) if self.pool == 'adaptive' else x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))

class Head(nn.Module):
    "Optional global pooling, flatten, then a stack of Linear (+ BatchNorm1d) + ReLU layers."
    def __init__(self, features, pool, widths, bn1d, n_out):
        super().__init__()
        self.pool, layers = pool, []
        for w in widths:
            layers += [nn.Linear(features, w), nn.BatchNorm1d(w) if bn1d else nn.Identity(), nn.ReLU()]; features = w
        self.mlp = nn.Sequential(*layers, nn.Linear(features, n_out))
    def forward(self, x):
        if self.pool: x = F.adaptive_avg_pool2d(x, 1)
        return self.mlp(torch.flatten(x, 1))

class RandomNet(nn.Module):
    def __init__(self, body, head):
        super().__init__(); self.body, self.head = body, head
    def forward(self, x):
        x = self.body(x)
        return x if self.head is None else self.head(x)

@st.composite
def net_specs(draw):
    "A random network spec (plain data, so hypothesis can print and shrink it)."
    cin, hw = draw(st.integers(1, 3)), draw(st.integers(4, 7))
    c, blocks = cin, []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(['res', 'conv', 'se', 'cat', 'dw', 'group']))
        bn = draw(st.booleans())
        if kind == 'conv':
            cout = draw(st.integers(2, 8))
            blocks.append(('conv', cout, draw(st.sampled_from([1, 3])), draw(st.booleans()), bn, draw(st.booleans()))); c = cout
        elif kind == 'res':
            cout = draw(st.sampled_from([c, c, draw(st.integers(2, 8))]))
            blocks.append(('res', draw(st.integers(2, 6)), cout, bn)); c = cout
        elif kind == 'cat':
            n = draw(st.integers(2, 3))
            widths = [draw(st.integers(1, 4)) for _ in range(n)]
            blocks.append(('cat', widths, [draw(st.sampled_from([1, 3])) for _ in range(n)], bn)); c = sum(widths)
        elif kind == 'dw':
            blocks.append(('dw', draw(st.booleans()), bn, draw(st.booleans())))
        elif kind == 'group':
            divisors = [g for g in range(2, c + 1) if c % g == 0]
            if not divisors: continue
            g = draw(st.sampled_from(divisors)); cout = g * draw(st.integers(1, 3))
            blocks.append(('group', g, cout, draw(st.sampled_from([1, 3])), bn)); c = cout
        else:
            blocks.append(('se', draw(st.integers(1, 4)), draw(st.sampled_from(['adaptive', 'mean']))))
    if not blocks: blocks.append(('conv', draw(st.integers(2, 8)), 3, True, True, True)); c = blocks[-1][1]
    head = draw(st.sampled_from(['pool', 'flatten', None]))
    if head is not None: head = (head, [draw(st.integers(2, 8)) for _ in range(draw(st.integers(0, 2)))], draw(st.booleans()))
    dead = dict(seed=draw(st.integers(0, 2**16)), p_group=draw(st.sampled_from([1., .7, .4])),
                all_of_group=draw(st.booleans()), rows_only=draw(st.integers(0, 2)), cols_only=draw(st.integers(0, 2)))
    return dict(cin=cin, hw=hw, blocks=blocks, head=head, dead=dead, seed=draw(st.integers(0, 2**16)))

def build_net(spec):
    "The float64 eval-mode `RandomNet` of a spec, with trained-like BatchNorm statistics, and an input batch."
    torch.manual_seed(spec['seed']); gen = torch.Generator().manual_seed(spec['seed'])
    c, layers = spec['cin'], []
    for b in spec['blocks']:
        if b[0] == 'conv': _, cout, k, bias, bn, act = b; layers.append(ConvBNAct(c, cout, k, bias=bias, bn=bn, act=act)); c = cout
        elif b[0] == 'res': _, mid, cout, bn = b; layers.append(Residual(c, mid, cout, bn)); c = cout
        elif b[0] == 'cat': _, widths, kernels, bn = b; layers.append(Concat(c, widths, kernels, bn)); c = sum(widths)
        elif b[0] == 'dw': _, bias, bn, act = b; layers.append(ConvBNAct(c, c, 3, groups=c, bias=bias, bn=bn, act=act))
        elif b[0] == 'group': _, g, cout, k, bn = b; layers.append(ConvBNAct(c, cout, k, groups=g, bn=bn)); c = cout
        elif b[0] == 'se': _, r, pool = b; layers.append(SqueezeExcite(c, r, pool))
    body = nn.Sequential(*layers)
    head = None
    if spec['head'] is not None:
        kind, widths, bn1d = spec['head']
        features = c if kind == 'pool' else c * spec['hw'] ** 2
        head = Head(features, kind == 'pool', widths, bn1d, 3)
    model = randomize_bn(RandomNet(body, head).double().eval(), gen)
    x = torch.randn(3, spec['cin'], spec['hw'], spec['hw'], dtype=torch.float64, generator=gen)
    return model, x

def inject(model, x, dead):
    """Random dead channels: all or part of the free channels of random prunable groups (`analyse` +
    `zero_channels`); plus conv rows zeroed without their BatchNorm (constant channels, which must stay)
    and consumer columns zeroed (channels read only by zero weights). Returns the chosen channel classes and
    {layer: number of output rows the dead channels zeroed}, found by comparing the weights (see `dead_rows`)."""
    rng = np.random.default_rng(dead['seed'])
    graph = analyse(model, (x[:1],)).graph; chosen = []
    for gr in graph.groups():
        free = [c for c in gr.channels if c not in gr.frozen]
        if not gr.prunable or not free or rng.random() > dead['p_group']: continue
        k = len(free) if dead['all_of_group'] else int(rng.integers(1, len(free) + 1))
        chosen += [int(c) for c in rng.choice(free, k, replace=False)]
    before = weights(model)
    zero_channels(model, graph, chosen)
    injected = dead_rows(before, model)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for _ in range(dead['rows_only']):
            m = layers[rng.integers(len(layers))]; r = int(rng.integers(m.weight.shape[0]))
            m.weight[r] = 0
            if m.bias is not None: m.bias[r] = 0
        for _ in range(dead['cols_only']):
            m = layers[rng.integers(len(layers))]; col = int(rng.integers(m.weight.shape[1]))
            m.weight[:, col] = 0
    return chosen, injected

RTOL = ATOL = 1e-9   # float64 models: removing exact zeros only reorders sums, ~1e-15 relative
PROPERTY = settings(deadline=None, max_examples=40, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

@PROPERTY
@given(net_specs())
def test_random_networks_prune_exactly(spec):
    """Random conv/BN/ReLU chains, residual adds, channel concats, depthwise and grouped convs, squeeze-excite
    gates and Linear heads (with and without pooling), float64, with random dead channels: the pruned model
    gives the same output (rtol = atol = 1e-9 of the output's scale), has no more parameters, has lost every
    injected dead channel (but for those `allowed_kept`), and the input model is untouched."""
    model, x = build_net(spec)
    _, injected = inject(model, x, spec['dead'])
    snap = snapshot(model)
    with torch.no_grad(): y = model(x)
    pruner = Pruner(); pruned = pruner.prune_model(model, x[:1])
    assert_untouched(model, snap)
    with torch.no_grad(): y2 = pruned(x)
    assert y2.shape == y.shape
    torch.testing.assert_close(y2, y, rtol=RTOL, atol=ATOL * max(1.0, y.abs().max().item()))
    assert n_params(pruned) <= n_params(model)
    assert_dead_gone(pruner, model, pruned, injected)

@settings(deadline=None, max_examples=25, derandomize=True, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(net_specs(), st.integers(0, 2**16))
def test_random_networks_in_train_mode(spec, seed):
    """The same random networks with random submodules left in train mode: training flags come back as they
    were (module by module), the input model is untouched, in eval mode the outputs agree, and the injected dead
    channels are gone."""
    model, x = build_net(spec)
    _, injected = inject(model, x, spec['dead'])
    rng = np.random.default_rng(seed)
    for m in model.modules(): m.train(bool(rng.random() < .5))
    snap = snapshot(model)
    pruner = Pruner(); pruned = pruner.prune_model(model, x[:1])
    assert_untouched(model, snap)
    assert {n: m.training for n, m in pruned.named_modules()} == snap['training']
    model.eval(); pruned.eval()
    with torch.no_grad(): y, y2 = model(x), pruned(x)
    torch.testing.assert_close(y2, y, rtol=RTOL, atol=ATOL * max(1.0, y.abs().max().item()))
    assert n_params(pruned) <= n_params(model)
    assert_dead_gone(pruner, model, pruned, injected)

# ============================================================================ bad and unusual inputs

def small_net(dead=(1, 2), dtype=torch.float32):
    "conv-BN-ReLU-conv-ReLU-pool-Linear with trained-like BatchNorm; the first conv's channels `dead` are dead."
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 6, 3), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))
    randomize_bn(m, torch.Generator().manual_seed(0))
    if dead: kill(m[0], list(dead), m[1])
    return m.to(dtype).eval()

X = torch.randn(4, 3, 10, 10, generator=torch.Generator().manual_seed(1))

def test_nothing_dead():
    """Bad input: a model with no dead channel. It comes back equal: same layers, same weights, same output."""
    model = small_net(dead=())
    snap = snapshot(model)
    pruner = Pruner(); pruned = pruner.prune_model(model, X[:1])
    assert_untouched(model, snap)
    assert pruned is not model
    assert str(pruned) == str(model)
    assert pruned.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(v, pruned.state_dict()[k]) for k, v in model.state_dict().items())
    assert pruner.report.params_before == pruner.report.params_after == n_params(model)
    with torch.no_grad(): assert torch.equal(model(X), pruned(X))

class TwoLinear(nn.Module):
    def __init__(self):
        super().__init__(); self.fc1, self.fc2, self.fc3 = nn.Linear(6, 7), nn.Linear(7, 5), nn.Linear(5, 3)
    def forward(self, x): return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

class ResStream(nn.Module):
    "Two convs write one residual stream; a head reads it."
    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv, self.bn1 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.head = nn.Conv2d(4, 2, 1)
    def forward(self, x):
        s = F.relu(self.bn0(self.stem(x)))
        return self.head(F.relu(s + self.bn1(self.conv(s))))

def _all_dead_conv():
    m = small_net(dead=range(8)); return m, X, m[0]
def _all_dead_linear():
    torch.manual_seed(0); m = TwoLinear().eval(); kill(m.fc2, list(range(5)))
    return m, torch.randn(4, 6), m.fc2
def _all_dead_residual():
    torch.manual_seed(0); m = randomize_bn(ResStream().eval(), torch.Generator().manual_seed(0))
    kill(m.stem, list(range(4)), m.bn0); kill(m.conv, list(range(4)), m.bn1)
    return m, X, m.stem

@pytest.mark.parametrize('make', [_all_dead_conv, _all_dead_linear, _all_dead_residual], ids=['conv_bn', 'linear', 'residual_stream'])
def test_every_channel_of_a_layer_dead(make):
    """Bad input: every output channel of a layer is dead (a conv+BN, a hidden Linear, a whole residual
    stream). The pruned model stays valid (at least one channel per layer) and computes the same output."""
    model, x, layer = make()
    snap = snapshot(model)
    with torch.no_grad(): y = model(x)
    pruned = Pruner().prune_model(model, x[:1])
    assert_untouched(model, snap)
    for m in pruned.modules():
        if isinstance(m, nn.Conv2d): assert m.out_channels >= 1 and m.in_channels >= 1
        if isinstance(m, nn.Linear): assert m.out_features >= 1 and m.in_features >= 1
        if isinstance(m, nn.BatchNorm2d): assert m.num_features >= 1
    with torch.no_grad(): y2 = pruned(x)
    assert rel_err(y, y2) < 1e-6
    assert n_params(pruned) < n_params(model)

def test_model_in_train_mode():
    """Bad input: a model in train mode (its Dropout left in eval mode). The pruned model's training flags
    equal the original's, module by module; BatchNorm running statistics of the input are not updated; in
    eval mode both give the same output."""
    model = nn.Sequential(small_net(), nn.Dropout(0.5)).train()
    model[1].eval()
    snap = snapshot(model)
    pruned = Pruner().prune_model(model, X[:2])
    assert_untouched(model, snap)
    assert {n: m.training for n, m in pruned.named_modules()} == snap['training']
    assert pruned[0][0].out_channels == 6
    model.eval(); pruned.eval()
    with torch.no_grad(): assert rel_err(model(X), pruned(X)) < 1e-6

class SharedLinear(nn.Module):
    "Two Linear layers sharing one weight Parameter."
    def __init__(self):
        super().__init__(); self.a, self.b = nn.Linear(6, 6), nn.Linear(6, 6); self.b.weight = self.a.weight
    def forward(self, x): return self.b(F.relu(self.a(x)))

def test_shared_weights_between_two_linears():
    """Bad input: two Linear layers share one weight Parameter and a channel between them is dead (zero
    row of the shared weight, zero bias). Output unchanged, input untouched, the weights stay shared, and
    the pruned model has no more parameters than the original."""
    torch.manual_seed(0)
    model = SharedLinear().eval()
    with torch.no_grad(): model.a.weight[2] = 0; model.a.bias[2] = 0
    check_tied_pruning(model, torch.randn(4, 6), 'a', 'b')

def check_tied_pruning(model, x, first, second):
    "Prune `model` whose layers `first` and `second` share a weight: output unchanged, input untouched, tie kept, no growth."
    snap = snapshot(model)
    pruned = Pruner().prune_model(model, x[:1])
    assert_untouched(model, snap)
    with torch.no_grad(): assert rel_err(model(x), pruned(x)) < 1e-6
    w1, w2 = pruned.get_submodule(first).weight, pruned.get_submodule(second).weight
    assert w1 is w2, f"the tied weight was split into two Parameters: {tuple(w1.shape)} and {tuple(w2.shape)}"
    assert n_params(pruned) <= n_params(model), f"{n_params(model)} -> {n_params(pruned)} parameters"

class TiedLM(nn.Module):
    "An embedding tied to the output Linear (a language-model head)."
    def __init__(self):
        super().__init__()
        self.emb, self.hidden = nn.Embedding(10, 8), nn.Linear(8, 8)
        self.out = nn.Linear(8, 10, bias=False); self.out.weight = self.emb.weight
    def forward(self, ids): return self.out(F.relu(self.hidden(self.emb(ids))))

@pytest.mark.parametrize('where', ['hidden_unit', 'embedding_dim'])
def test_embedding_tied_to_output_linear(where):
    """Bad input: an nn.Embedding whose weight is tied to the output Linear, with a dead hidden unit (read
    by the tied weight) or a dead embedding dimension. Output unchanged, input untouched, the tie kept, and
    no more parameters than the original."""
    torch.manual_seed(0)
    model = TiedLM().eval()
    with torch.no_grad():
        if where == 'hidden_unit': model.hidden.weight[3] = 0; model.hidden.bias[3] = 0
        else: model.emb.weight[:, 3] = 0
    check_tied_pruning(model, torch.randint(0, 10, (4, 5), generator=torch.Generator().manual_seed(0)), 'emb', 'out')

class UsedTwice(nn.Module):
    "One conv applied to two branches; its dead filter is dead in both calls."
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 3, padding=1)
        self.shared, self.head = nn.Conv2d(4, 6, 3, padding=1), nn.Conv2d(6, 2, 1)
    def forward(self, x): return self.head(F.relu(self.shared(self.a(x))) + F.relu(self.shared(self.b(x))))

def test_module_used_twice():
    """Bad input: a conv called twice in forward, on two branches. Its dead filter and the branches' common
    dead channel go, the shared conv stays one module, and the output is unchanged."""
    torch.manual_seed(0)
    model = UsedTwice().eval()
    kill(model.shared, [1]); kill(model.a, [3]); kill(model.b, [3])
    snap = snapshot(model)
    pruned = Pruner().prune_model(model, X[:1])
    assert_untouched(model, snap)
    assert (pruned.shared.in_channels, pruned.shared.out_channels) == (3, 5)
    with torch.no_grad(): assert rel_err(model(X), pruned(X)) < 1e-6

@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torchscript_model():
    """Bad input: a TorchScript model (torch.jit.script). Either a clear TypeError/ValueError that says it is
    TorchScript and to pass the original nn.Module, or a correct result."""
    model = small_net()
    scripted = torch.jit.script(model)
    snap = snapshot(scripted)
    try:
        pruned = Pruner().prune_model(scripted, X[:1])
    except (TypeError, ValueError) as e:
        assert re.search(r'(?i)torchscript|jit|script', str(e)) and 'nn.Module' in str(e), f"unclear error: {e}"
    else:
        with torch.no_grad(): assert rel_err(scripted(X), pruned(X)) < 1e-6
    assert_untouched(scripted, snap)

def test_torch_nn_utils_prune_hooks():
    """Bad input: a conv pruned with torch.nn.utils.prune.ln_structured (weight_orig, weight_mask and a
    forward pre-hook), its bias masked alike. The filters the masks zero are dead: the pruned model gives
    the same output and lost them, and the input keeps its hooks, weight_orig and weight_mask."""
    model = small_net(dead=())
    torch_prune.ln_structured(model[3], 'weight', amount=0.5, n=2, dim=0)
    torch_prune.custom_from_mask(model[3], 'bias', mask=model[3].weight_mask.flatten(1).any(1).float())
    snap = snapshot(model)
    pruned = Pruner().prune_model(model, X[:1])
    assert_untouched(model, snap)
    assert torch_prune.is_pruned(model) and hasattr(model[3], 'weight_orig')
    with torch.no_grad(): assert rel_err(model(X), pruned(X)) < 1e-6
    assert rel_err(model(X), pruned(X)) < 1e-6                      # with autograd on as well
    assert pruned[3].weight.shape[0] == 3, "the 3 filters zeroed by the mask were not removed"
    assert n_params(pruned) < n_params(model)

class DictModel(nn.Module):
    "forward(batch: dict) -> dict"
    def __init__(self):
        super().__init__(); self.net = small_net()
    def forward(self, batch: dict) -> dict:
        return {'logits': self.net(batch['image']), 'mean': batch['image'].mean()}

def test_dict_input_and_dict_output():
    """Bad input: forward takes a dict of tensors and returns a dict. Output unchanged (every key) and the
    dead channels removed."""
    model = DictModel().eval(); snap = snapshot(model)
    pruned = Pruner().prune_model(model, ({'image': X[:1]},))
    assert_untouched(model, snap)
    with torch.no_grad(): y, y2 = model({'image': X}), pruned({'image': X})
    assert y.keys() == y2.keys() and all(rel_err(y[k], y2[k]) < 1e-6 for k in y)
    assert n_params(pruned) < n_params(model)

class DictOutput(nn.Module):
    "forward(x) -> dict, with a non-tensor entry"
    def __init__(self):
        super().__init__(); self.net = small_net()
    def forward(self, x): return {'logits': self.net(x), 'batch': x.shape[0], 'none': None}

def test_dict_output_with_non_tensor_values():
    """Bad input: forward returns a dict holding a tensor, an int and None. Same output, dead channels removed."""
    model = DictOutput().eval(); snap = snapshot(model)
    pruned = Pruner().prune_model(model, X[:1])
    assert_untouched(model, snap)
    with torch.no_grad(): y, y2 = model(X), pruned(X)
    assert rel_err(y['logits'], y2['logits']) < 1e-6 and (y2['batch'], y2['none']) == (4, None)
    assert n_params(pruned) < n_params(model)

class Scaled(nn.Module):
    "forward(x, scale: float)"
    def __init__(self):
        super().__init__(); self.net = small_net()
    def forward(self, x, scale: float): return self.net(x) * scale

def test_float_argument():
    """Bad input: forward(x, scale: float), a non-tensor argument in the example inputs. Same output for
    other scales too, dead channels removed."""
    model = Scaled().eval(); snap = snapshot(model)
    pruned = Pruner().prune_model(model, (X[:1], 2.0))
    assert_untouched(model, snap)
    with torch.no_grad(): assert rel_err(model(X, 3.0), pruned(X, 3.0)) < 1e-6
    assert n_params(pruned) < n_params(model)

class Flagged(nn.Module):
    "forward(x, features: bool = False): a Python flag that selects the output"
    def __init__(self):
        super().__init__(); net = small_net(); self.body, self.fc = net[:7], net[7]
    def forward(self, x, features: bool = False):
        f = self.body(x)
        return f if features else self.fc(f)

def test_bool_flag_argument():
    """Bad input: forward(x, features: bool), where the bool picks a branch with a Python `if`. Passing the
    flag in the example inputs must give a correct result (or a clear error naming the flag)."""
    model = Flagged().eval(); snap = snapshot(model)
    try:
        pruned = Pruner().prune_model(model, (X[:1], False))
    except (TypeError, ValueError) as e:
        assert 'features' in str(e) or 'concrete' in str(e), f"unclear error: {e}"
    else:
        with torch.no_grad(): assert rel_err(model(X, False), pruned(X, False)) < 1e-6
    assert_untouched(model, snap)

@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=['float16', 'bfloat16'])
def test_half_precision_on_cpu(dtype):
    """Bad input: a float16 / bfloat16 model on CPU. It keeps its dtype, loses its dead channels, and widened
    to float64 computes the same function as the original."""
    model = small_net(dtype=dtype); snap = snapshot(model)
    pruned = Pruner().prune_model(model, X[:1].to(dtype))
    assert_untouched(model, snap)
    assert all(p.dtype == dtype for p in pruned.parameters())
    assert pruned[0].out_channels == 6
    with torch.no_grad(): y = pruned(X.to(dtype))
    assert y.dtype == dtype and torch.isfinite(y).all()
    wide, pwide = copy.deepcopy(model).double(), copy.deepcopy(pruned).double()
    with torch.no_grad(): assert rel_err(wide(X.double()), pwide(X.double())) < 1e-12

@pytest.mark.parametrize('thing', [lambda x: x, None, 'resnet18', small_net().state_dict()],
                         ids=['function', 'None', 'string', 'state_dict'])
def test_non_module_argument(thing):
    """Bad input: something that is not an nn.Module (a function, None, a string, a state_dict): a TypeError
    that says an nn.Module was expected."""
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        Pruner().prune_model(thing, X[:1])

@pytest.mark.parametrize('inputs', [torch.randn(1, 4, 10, 10), torch.randn(3, 10, 10), torch.randn(1, 3, 3, 3)],
                         ids=['wrong_channels', 'no_batch_axis', 'too_small'])
def test_wrong_input_shape(inputs):
    """Bad input: example inputs that do not fit the model (wrong channels, no batch axis, too small for the
    kernels): a ValueError about the example inputs; the model untouched."""
    model = small_net(); snap = snapshot(model)
    with pytest.raises(ValueError, match="example inputs"):
        Pruner().prune_model(model, inputs)
    assert_untouched(model, snap)

class MadeInForward(nn.Module):
    "Scales conv channels by a tensor its forward makes each call (torch.fx stores such tensors on the traced module)."
    def __init__(self):
        super().__init__(); self.conv, self.head = nn.Conv2d(3, 6, 3), nn.Conv2d(6, 4, 1)
    def forward(self, x):
        return self.head(F.relu(self.conv(x)) * torch.arange(1., 7.).reshape(1, 6, 1, 1)) + torch.tensor(0.5)

def test_tensor_made_in_forward():
    """Unusual input: a tensor constant made in forward multiplies dead channels. It cannot be sliced, so those
    channels are kept with the reason; the output is unchanged and no attribute is added to either model."""
    torch.manual_seed(0)
    model = MadeInForward().eval(); kill(model.conv, [1, 4])
    snap = snapshot(model)
    pruner = Pruner(); pruned = pruner.prune_model(model, X[:1])
    assert_untouched(model, snap)
    assert not any('_tensor_constant' in k for m in pruned.modules() for k in vars(m))
    with torch.no_grad(): assert rel_err(model(X), pruned(X)) < 1e-6
    assert pruned.conv.out_channels == 6
    assert any('tensor constant' in why for why in pruner.report.frozen), pruner.report.frozen

class Stateful(nn.Module):
    "A forward with side effects in eval mode: an observer-like buffer written in place, and a cache attribute."
    def __init__(self):
        super().__init__(); self.net = small_net(); self.register_buffer('calls', torch.zeros(()))
    def forward(self, x):
        self.calls.add_(1); self.seen = True
        return self.net(x)

def test_forward_with_side_effects():
    """Unusual input: a model whose forward writes a buffer in place and sets an attribute, in eval mode.
    Pruning runs it, but on its own copy: the input model's buffer, attributes and parameters stay as they were."""
    model = Stateful().eval(); snap = snapshot(model)
    pruned = Pruner().prune_model(model, X[:1])
    assert_untouched(model, snap)
    assert model.calls.item() == 0 and not hasattr(model, 'seen')
    with torch.no_grad(): assert rel_err(model.net(X), pruned.net(X)) < 1e-6
    assert n_params(pruned) < n_params(model)

def test_unbatched_conv_input():
    """Unusual input: a conv net called on one unbatched sample (C, H, W), whose channels run along axis 0.
    Dead channels go, a constant one (zero weights, bias 0.5) is folded into the next conv; the output is
    unchanged on other samples too, and the input model is untouched."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 6, 3), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(0), nn.Linear(6, 2)).eval()
    kill(model[0], [1, 4]); kill(model[2], [3])
    with torch.no_grad(): model[0].weight[6] = 0; model[0].bias[6] = 0.5
    snap = snapshot(model)
    pruned = Pruner().prune_model(model, torch.randn(3, 12, 12))
    assert_untouched(model, snap)
    assert (pruned[0].out_channels, pruned[2].in_channels, pruned[2].out_channels, pruned[6].in_features) == (5, 5, 5, 5)
    for _ in range(3):
        x = torch.randn(3, 12, 12)
        with torch.no_grad(): assert rel_err(model(x), pruned(x)) < 1e-6

def test_too_many_example_inputs():
    """Bad input: one example input more than forward takes: an error that says so; the model untouched."""
    model = small_net(); snap = snapshot(model)
    with pytest.raises((TypeError, ValueError), match="argument|example inputs"):
        Pruner().prune_model(model, (X[:1], X[:1]))
    assert_untouched(model, snap)
