"""Handlers registered from outside the package: one replaces a built-in handler (the last registered wins, for modules
and functions alike) and is taken away again; a handler for a user's own layer prunes through it exactly; a broken
handler is reported as a bug, not as advice to the user."""
import copy, pytest, torch, torch.nn as nn, torch.nn.functional as F
from fasterai.sparse import Pruner, OpHandler, Reason, register_handler, unregister_handler, save_pruned, load_pruned
from fasterai.sparse.handlers import handler_for_module, shrink_param
from fasterai.sparse.layers import BatchNormHandler
from fasterai.sparse.analysis import HandlerError

def conv_bn_net(dead=(1, 4)):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 3), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 2)).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-.5, .5); net[1].running_var.uniform_(.5, 2); net[1].bias.uniform_(-.3, .3)
        for r in dead: net[0].weight[r] = 0; net[0].bias[r] = 0; net[1].weight[r] = 0; net[1].bias[r] = 0
    return net, torch.randn(5, 3, 8, 8, dtype=torch.float32)

class KeepBatchNorms(BatchNormHandler):
    "A user's stricter BatchNorm handler: never prune through a BatchNorm."
    def rule(self, g, call):
        return g.unknown(call, Reason('user_policy', f"{call.name}: this project keeps BatchNorm channels"))

def test_user_handler_replaces_a_builtin_and_can_be_removed():
    net, x = conv_bn_net()
    builtin = handler_for_module(net[1])
    register_handler(KeepBatchNorms)
    try:
        assert isinstance(handler_for_module(net[1]), KeepBatchNorms)
        pruner = Pruner(); small = pruner.prune_model(net, x[:1])
        assert small[0].out_channels == 6, "the user's handler keeps the channels"
        assert "1: this project keeps BatchNorm channels" in pruner.report.frozen
    finally: unregister_handler(KeepBatchNorms)
    assert handler_for_module(net[1]) is builtin
    small = Pruner().prune_model(net, x[:1])
    assert small[0].out_channels == 4
    with torch.no_grad(): torch.testing.assert_close(small(x), net(x), rtol=1e-5, atol=1e-6)

def test_function_handler_replaces_builtin():
    "F.relu is handled by the built-in unary handler; a user's handler for it wins, then goes."
    class Opaque(OpHandler): functions = (F.relu,)
    class Net(nn.Module):
        def __init__(self): super().__init__(); self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)
        def forward(self, x): return self.b(F.relu(self.a(x)))
    torch.manual_seed(0); net = Net().eval()
    with torch.no_grad(): net.a.weight[2] = 0; net.a.bias[2] = 0
    x = torch.randn(3, 4)
    register_handler(Opaque)
    try: assert Pruner().prune_model(net, x[:1]).a.out_features == 6   # the default rule: keep what it touches
    finally: unregister_handler(Opaque)
    assert Pruner().prune_model(net, x[:1]).a.out_features == 5

class Gate(nn.Module):
    "A user's layer: per-channel gain and its own width attribute."
    def __init__(self, n): super().__init__(); self.n, self.gain = n, nn.Parameter(torch.rand(n) + .5)
    def forward(self, x): return x * self.gain.view(1, -1, 1, 1)

class GateHandler(OpHandler):
    modules, widths, flop_free = (Gate,), ('n',), True
    def rule(self, g, call):
        slots, zero, const = g.along(call.sargs[0], 1, call.module.n)
        g.dim(call.name, 'chan', slots, call.module)
        return g.slotmap(slots, zero, 1, call.out.ndim, const)
    def shrink(self, module, keep): shrink_param(module, 'gain', 0, keep['chan']); module.n = len(keep['chan'])
    def carriers(self, module): return {'chan': [('gain', 0, 'scale')]}

@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_handler_for_a_custom_layer(tmp_path, dtype):
    def build():
        return nn.Sequential(nn.Conv2d(3, 8, 3), Gate(8), nn.ReLU(), nn.Conv2d(8, 2, 3)).eval().to(dtype)
    torch.manual_seed(0); net = build()
    with torch.no_grad(): net[0].weight[[0, 5]] = 0; net[0].bias[[0, 5]] = 0
    x = torch.randn(4, 3, 9, 9, dtype=dtype)
    state = copy.deepcopy(net.state_dict())
    assert Pruner(leaf_modules=(Gate,)).prune_model(net, x[:1])[0].out_channels == 8   # unknown: kept whole
    register_handler(GateHandler)
    try:
        small = Pruner(leaf_modules=(Gate,)).prune_model(net, x[:1])
        assert (small[0].out_channels, small[1].n, small[1].gain.shape[0], small[3].in_channels) == (6, 6, 6, 6)
        with torch.no_grad(): torch.testing.assert_close(small(x), net(x))   # another batch size than the example's
        assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items()), "the input model was modified"
        save_pruned(small, tmp_path / 'small.pt')
        loaded = load_pruned(build, tmp_path / 'small.pt')
        assert loaded[1].n == 6
        with torch.no_grad(): assert torch.equal(loaded(x), small(x))
    finally: unregister_handler(GateHandler)

def test_broken_handler_is_reported_as_a_bug_and_leaves_the_model():
    class Broken(OpHandler):
        modules = (nn.ReLU,)
        def rule(self, g, call): raise KeyError('oops')
    net, x = conv_bn_net()
    state = copy.deepcopy(net.state_dict())
    register_handler(Broken)
    try:
        with pytest.raises(HandlerError, match=r"Broken failed on node _2 \(ReLU \(2\)\).*bug in the handler Broken "
                                               r"registered from test_handlers, not in your model"):
            Pruner().prune_model(net, x[:1])
    finally: unregister_handler(Broken)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
