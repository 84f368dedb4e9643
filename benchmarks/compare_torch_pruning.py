#!/usr/bin/env python
"""Compare fasterai's `Pruner` with Torch-Pruning 1.6.1 on the torchvision, timm or Hugging Face zoo (not run in CI).

    python benchmarks/compare_torch_pruning.py [--zoo torchvision|timm|hf] [--models alexnet,resnet18] [--quick]
                                               [--no-latency] [--threads 1] [--timeout 300]

The timm zoo is `fasterai.testing.TIMM_ZOO` (the test suite's; timm must be installed); the hf zoo is
`fasterai.testing.HF_ZOO` (BERT, GPT-2, Llama with grouped-query attention, Phi-3, ViT, small configs; the
dead channels there are whole attention heads and MLP units, and the input is token ids). For every model
(random weights, trained-like BatchNorm statistics) the same channels are made dead with
fasterai's channel graph and `zero_channels` (a fixed seed, 40% of the removable channels of every
prunable group). Then, on identical copies of that model, each in a fresh subprocess:

1. fasterai: `Pruner().prune_model(model, x)` (this includes its own check of the output), and the same
   call with `Pruner(verify=False)`, which shows what that check costs;
2. Torch-Pruning: `DependencyGraph().build_dependency(model, x)`, and for every group of
   `get_all_groups()` the channels whose rows (weights and biases of every conv/linear/norm/parameter that
   writes the group) are all zero, pruned with `get_pruning_group(root, fn, idxs).prune()`.

Each row says whether each tool ran (works) and kept the output (exact: max |pruned - original| /
max |original| < 1e-4 on a random batch of 4), the fraction of parameters each removed, the wall time of
each (both return a new model and leave the input as it was: Torch-Pruning's call includes a deep copy; best of 5 calls, as the CPU may be shared) and the ratio ours/theirs, and each tool's peak resident memory above
what the process held just before the call (Linux VmHWM, reset through /proc/self/clear_refs).

A second table gives, for vgg16 and resnet50 with 50% of every group's channels removed (the weakest by
L1 norm, zeroed then pruned by fasterai), the CPU latency of the original and pruned model at batch 1
and 32 on 224x224 inputs (median of repeated runs after warm-up) next to the FLOPs ratio.

Every measurement runs with one torch thread unless --threads says otherwise: on a machine whose cores
are shared, multi-threaded timings of the same call varied tenfold here, single-threaded ones by a few %.
"""
import argparse, copy, datetime, importlib.util, json, os, platform, re, statistics, subprocess, sys, tempfile, time, traceback

import numpy as np, torch, torch.nn as nn

ZOO = {'alexnet': 64, 'vgg11': 32, 'vgg16': 32, 'vgg16_bn': 32, 'resnet18': 64, 'resnet50': 64,
       'resnext50_32x4d': 64, 'wide_resnet50_2': 64, 'mobilenet_v2': 64, 'mobilenet_v3_small': 64,
       'mnasnet0_5': 64, 'densenet121': 64, 'squeezenet1_0': 64, 'googlenet': 64, 'efficientnet_b0': 64,
       'regnet_y_400mf': 64, 'shufflenet_v2_x0_5': 64, 'convnext_tiny': 64, 'inception_v3': 96, 'vit_b_16': 224}
QUICK = ['alexnet', 'resnet18', 'mobilenet_v2', 'densenet121']
FRACTION, SEED, EXACT, REPEATS, ROUNDS = 0.4, 0, 1e-4, 5, 7

# ----------------------------------------------------------------------------- models (as tests/conftest.py)
from fasterai.cli import build_model as build, latency
from fasterai.testing import trained_like, TIMM_ZOO, timm_model, HF_ZOO, hf_model, HF_VOCAB
from fasterai.sparse.measure import n_params


def prepare(name, path):
    "Build `name`, make 40% of every prunable group dead (fixed seed), save model and inputs to `path`."
    if name in LLAMA_1B:   # built in each tool's process (llama_decoder: 40% of MLP units, one key/value group)
        open(path, 'w').close(); return 22 * (int(0.4 * 5632) + 8)
    from fasterai.sparse.analysis import analyse
    from fasterai.sparse.sparsifier import zero_channels, weakest_channels
    torch.manual_seed(SEED)
    if name in HF_ZOO:   # token ids (or pixels for ViT) as the one positional input both tools take
        model = hf_model(name, seed=SEED); model.config.use_cache = False
        x, batch = ((torch.randn(1, 3, 32, 32), torch.randn(4, 3, 32, 32)) if name == 'vit' else
                    (torch.randint(1, HF_VOCAB, (1, 16)), torch.randint(1, HF_VOCAB, (4, 16))))
    else:
        if name in ZOO: model, s = trained_like(build(name)), ZOO[name]
        else: model, s = timm_model(name, seed=SEED)
        x, batch = torch.randn(1, 3, s, s), torch.randn(4, 3, s, s)
    graph = analyse(model, (x,)).graph
    chosen = weakest_channels(model, graph, FRACTION, 'random', SEED)
    zero_channels(model, graph, chosen)
    torch.save(dict(model=model, x=x, batch=batch), path)
    return len(chosen)

# ----------------------------------------------------------------------------- the two tools
def prune_ours(model, x):
    from fasterai.sparse.pruner import Pruner
    return Pruner().prune_model(model, (x,))

STAGES = []   # the stages of each of our calls in this process (Pruner.report.stages)

def prune_ours_unchecked(model, x):
    "What fasterai's own output check costs: the same call without it (Torch-Pruning does not check)."
    from fasterai.sparse.pruner import Pruner
    p = Pruner(verify=False); out = p.prune_model(model, (x,)); STAGES.append(p.report.stages)
    return out

def prune_inplace(model, x, verify=True):
    "The 1.1B decoder: pruned in place (no copy of a model that barely fits), with or without the check."
    from fasterai.sparse.pruner import Pruner
    p = Pruner(verify=verify, progress=False); out = p.prune_model(model, x, inplace=True)
    STAGES.append(p.report.stages)
    return out

def _rows_alive(dg, dep, idxs):
    "For each index in `idxs` of the group item's target: does any value it writes differ from zero? None: writes nothing."
    import torch_pruning as tp
    m, k = dep.target.module, len(idxs)
    ix = torch.as_tensor(idxs, dtype=torch.long)
    if isinstance(m, nn.Parameter):
        return m.detach().index_select(dep.target.pruning_dim, ix).movedim(dep.target.pruning_dim, 0).reshape(k, -1).ne(0).any(1)
    if isinstance(m, nn.PReLU) or isinstance(dg.get_pruner_of_module(m), tp.ops.DummyPruner):
        return None                                 # prelu(0) == 0, and Torch-Pruning's pseudo-ops (add, cat, ...)
    if isinstance(m, nn.Embedding): w = m.weight.detach().t()
    elif isinstance(m, nn.modules.conv._ConvNd) and m.transposed: w = m.weight.detach().transpose(0, 1)
    elif isinstance(m, (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)):
        w = getattr(m, 'weight', None)
        if w is None: return torch.ones(k, dtype=torch.bool)              # a norm without affine: not zero
        w = w.detach()
    else: return torch.ones(k, dtype=torch.bool)                        # unknown writer: assume alive
    alive = w.index_select(0, ix).reshape(k, -1).ne(0).any(1)
    b = getattr(m, 'bias', None)
    if isinstance(b, torch.Tensor) and not isinstance(m, nn.Embedding): alive |= b.detach().index_select(0, ix).ne(0)
    return alive

def prune_torch_pruning(model, x):
    "Torch-Pruning's DependencyGraph, pruning in every group exactly the channels that all its writers zero."
    import torch_pruning as tp
    model = copy.deepcopy(model)
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=x, verbose=False)
    todo = []
    for group in dg.get_all_groups(root_module_types=(nn.modules.conv._ConvNd, nn.Linear)):
        root, fn = group[0].dep.target.module, group[0].dep.handler
        n = dg.get_out_channels(root)
        alive, seen = torch.zeros(n, dtype=torch.bool), False
        for item in group:
            if not dg.is_out_channel_pruning_fn(item.dep.handler): continue
            a = _rows_alive(dg, item.dep, item.idxs)
            if a is None: continue
            roots = item.root_idxs
            ok = [i for i, r in enumerate(roots) if r is not None]
            alive[torch.as_tensor([roots[i] for i in ok], dtype=torch.long)] |= a[ok]
            seen = True
        dead = torch.nonzero(~alive).flatten().tolist() if seen else []
        if len(dead) == n: dead = dead[1:]                               # never empty a layer
        if dead: todo.append((root, fn, dead))
    for root, fn, dead in todo:
        group = dg.get_pruning_group(root, fn, dead)
        if dg.check_pruning_group(group): group.prune()
    return model

TOOLS = {'ours': prune_ours, 'unchecked': prune_ours_unchecked, 'tp': prune_torch_pruning}

# ----------------------------------------------------------------------------- one tool on one model, in a subprocess
def _status(key):
    return int(re.search(rf'{key}:\s+(\d+)', open('/proc/self/status').read()).group(1)) * 1024

def _main(out):
    "The output tensor to compare: a model's own, or a Hugging Face output's logits or last hidden state."
    if isinstance(out, torch.Tensor): return out
    return out['logits'] if 'logits' in out else out['last_hidden_state']

LLAMA_1B = {'llama1b-float32': torch.float32, 'llama1b-bfloat16': torch.bfloat16}
LLAMA_TOOLS = {'ours': lambda m, x: prune_inplace(m, x, True), 'unchecked': lambda m, x: prune_inplace(m, x, False),
               'tp': lambda m, x: prune_torch_pruning(m, x)}

def _llama_1b(name):
    "The 1.1B decoder (fasterai.testing.llama_decoder), its example input (16 tokens) and a batch it never saw."
    from fasterai.testing import llama_decoder
    g = torch.Generator().manual_seed(SEED)
    ids = lambda b, n: dict(input_ids=torch.randint(1, 32000, (b, n), generator=g),
                            attention_mask=torch.ones(b, n, dtype=torch.long))
    return llama_decoder(dtype=LLAMA_1B[name], seed=SEED), ids(1, 16), ids(2, 24)

def child(tool, path, result_path):
    "Load the prepared model (or build the 1.1B decoder), run one tool on it, measure; write a JSON result."
    import warnings; warnings.filterwarnings('ignore')
    from fasterai.sparse.measure import run_checked
    from fasterai.sparse.trace import as_inputs
    global TOOLS, REPEATS
    if tool.startswith('timing:'):
        d = torch.load(path, weights_only=False)
        return json.dump(timing(d['model'], d['x'], tool.split(':')[1].split(',')), open(result_path, 'w'))
    if os.path.basename(path) in LLAMA_1B:   # too large to save and load: built here, pruned once, in place
        model, x, batch = _llama_1b(os.path.basename(path)); TOOLS, REPEATS = LLAMA_TOOLS, 1
    else:
        d = torch.load(path, weights_only=False)
        model, x, batch = d['model'], d['x'], d['batch']
    # outputs compared in float32 (half-precision models too: their own rounding would hide a difference)
    run = lambda m: _main(run_checked(m, as_inputs(batch, m)))
    y = run(model)   # also the warm-up: caches of a first forward are not counted as the tool's memory
    res = dict(works=False, exact=False, err=None, frac=None, seconds=None, peak=None, error=None)
    try:
        res['params'] = n_params(model)
        res['model_bytes'] = sum(p.numel() * p.element_size() for p in model.parameters())
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')      # peak RSS := current RSS
        base = _status('VmRSS'); t0 = time.perf_counter()
        pruned = TOOLS[tool](model, x)
        times = [time.perf_counter() - t0]
        res['peak'] = _status('VmHWM') - base
        for _ in range(REPEATS - 1):                                     # the CPU may be shared: best of REPEATS
            t0 = time.perf_counter(); TOOLS[tool](model, x); times.append(time.perf_counter() - t0)
        res['seconds'] = min(times)
        if STAGES: res['stages'] = STAGES[times.index(min(times))]
        res['frac'] = 1 - n_params(pruned) / res.pop('params', n_params(model))
        y2 = run(pruned)
        res['works'] = True
        res['err'] = ((y - y2).abs().max() / y.abs().max()).item()
        res['exact'] = bool(res['err'] < EXACT)
    except Exception as e:
        res['error'] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
        traceback.print_exc()
    json.dump(res, open(result_path, 'w'))

def timing(model, x, tools) -> dict:
    """Each tool's best time over ROUNDS rounds in which the tools take turns, the first of each round rotating, in one
    process: a slow spell of a shared machine then falls on every tool alike. (Timed one tool after the other, each in
    its own process, it fell on whichever tool ran then: on this host a pure-Python loop's time varies twofold from
    one second to the next.) A garbage collection before every call: no call pays for another's garbage. Also the
    stages of fasterai's fastest unchecked call and the floor (`_floor`)."""
    import gc
    res, stages = {}, []
    for t in list(tools):   # warm-up, untimed: first-call costs (imports, caches, the allocator's first growth)
        try: TOOLS[t](model, x)
        except Exception as e: res[f'{t} error'] = f"{type(e).__name__}: {e}"[:200]; tools.remove(t)
    times = {t: [] for t in tools}
    for r in range(ROUNDS):
        for t in tools[r % len(tools):] + tools[:r % len(tools)]:
            gc.collect(); t0 = time.perf_counter(); TOOLS[t](model, x); times[t].append(time.perf_counter() - t0)
            if t == 'unchecked': stages.append((times[t][-1], STAGES[-1]))
    res.update({t: min(v) for t, v in times.items()})
    if stages: res['stages'] = min(stages, key=lambda s: s[0])[1]
    if 'unchecked' in tools: res.update(_floor(model, x))
    return res

def _floor(model, x) -> dict:
    """What any tool that runs the model once on the example input pays: the model's own forward pass (best of
    REPEATS), and the same pass on shapes alone (torch.fx's graph run on `meta` tensors: no arithmetic, but each op's
    shape function), the design that would not run the model for real."""
    import copy
    from torch.fx import Interpreter
    from fasterai.sparse.trace import as_inputs
    args = as_inputs(x, model); out = {}
    def best(f):
        ts = []
        for _ in range(REPEATS): t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
        return min(ts)
    with torch.no_grad():
        out['forward'] = best(lambda: model(*args))
        try:   # fx-traceable models only (the torchvision zoo)
            meta = copy.deepcopy(torch.fx.symbolic_trace(model)).to('meta')
            margs = [a.to('meta') if isinstance(a, torch.Tensor) else a for a in args]
            out['shapes only'] = best(lambda: Interpreter(meta).run(*margs))
        except Exception: pass
    return out

def run_child(tool, path, threads, timeout, rounds=ROUNDS, repeats=REPEATS):
    with tempfile.NamedTemporaryFile(suffix='.json', delete=False) as f: out = f.name
    try:
        r = subprocess.run([sys.executable, __file__, '--threads', str(threads), '--rounds', str(rounds),
                            '--repeats', str(repeats), '--child', tool, path, out],
                           capture_output=True, text=True, timeout=timeout)
        try: return json.load(open(out))
        except Exception:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f'exit code {r.returncode}']
            return dict(works=False, exact=False, error=f"subprocess died: {tail[0][:150]}")
    except subprocess.TimeoutExpired:
        return dict(works=False, exact=False, error=f"timed out after {timeout}s")
    finally: os.unlink(out)

# ----------------------------------------------------------------------------- latency vs FLOPs
def flops(model, x):
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc, torch.no_grad(): model(x)
    return fc.get_total_flops()

def median_latency(model, batch, repeats, warmup=2):
    with torch.inference_mode(): return latency(model, torch.randn(batch, 3, 224, 224), repeats, warmup)

def latency_table(names, batches, repeats):
    from fasterai.sparse.analysis import analyse
    from fasterai.sparse.sparsifier import zero_channels, weakest_channels
    from fasterai.sparse.pruner import Pruner
    print(f"\nCPU latency at 224x224, 50% of every prunable group's channels removed (weakest L1, zeroed, then pruned by "
          f"fasterai); median of {repeats} runs after 2 warm-up runs, torch threads = {torch.get_num_threads()}")
    hdr = f"{'model':10s} {'params kept':>11s} {'FLOPs kept':>10s}"
    for b in batches: hdr += f" {f'b{b} orig ms':>12s} {f'b{b} pruned ms':>13s} {f'b{b} speedup':>11s}"
    print(hdr); print('-' * len(hdr))
    for name in names:
        torch.manual_seed(SEED)
        model = trained_like(build(name)); x = torch.randn(1, 3, 224, 224)
        g = analyse(model, (x,)).graph; zero_channels(model, g, weakest_channels(model, g, 0.5))
        pruned = Pruner().prune_model(model, (x,))
        row = f"{name:10s} {n_params(pruned) / n_params(model):11.3f} {flops(pruned, x) / flops(model, x):10.3f}"
        for b in batches:
            reps = repeats if b == 1 else max(3, repeats // 4)
            t0, t1 = median_latency(model, b, reps), median_latency(pruned, b, reps)
            row += f" {t0 * 1e3:12.1f} {t1 * 1e3:13.1f} {t0 / t1:10.2f}x"
        print(row, flush=True)
        del model, pruned

# ----------------------------------------------------------------------------- main
def machine():
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    import torchvision
    from importlib.metadata import version
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    git = lambda *args: subprocess.run(['git', '-C', root, *args], capture_output=True, text=True).stdout.strip()
    rev = git('rev-parse', '--short', 'HEAD') or 'unknown'
    if git('status', '--porcelain', '--', 'fasterai'): rev += ' with uncommitted changes in fasterai/'
    return (f"fasterai {rev}\n"
            f"date {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; CPU {cpu}; {os.cpu_count()} cores "
            f"({len(os.sched_getaffinity(0))} usable), load average {os.getloadavg()[0]:.2f}; "
            f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"torchvision {torchvision.__version__}, torch-pruning {version('torch-pruning')}" +
            (f", timm {version('timm')}" if importlib.util.find_spec('timm') else ""))

def cpu_times():
    "(busy, steal) jiffies of all CPUs from /proc/stat."
    f = [int(v) for v in open('/proc/stat').readline().split()[1:]]
    return sum(f[:3]) + sum(f[5:7]), f[7] if len(f) > 7 else 0

def _timed_in_turn(path, a) -> dict:
    """One call of each tool in a fresh process (whether it works, is exact, what it removes, its peak memory), then
    the tools that worked timed in turn in one more process (`timing`): the time columns come from there."""
    r = {tool: run_child(tool, path, a.threads, a.timeout, a.rounds, repeats=1) for tool in ('ours', 'tp')}
    for res in r.values(): res.pop('seconds', None)   # a first call: its time is the timing child's to give
    timed = [t for t, ok in (('ours', r['ours'].get('works')), ('unchecked', r['ours'].get('works')),
                             ('tp', r['tp'].get('works'))) if ok]
    tm = run_child('timing:' + ','.join(timed), path, a.threads, a.timeout * 3, a.rounds) if timed else {}
    # the same pruned model as ours: works and exact as ours (its output is compared once, in ours' process)
    r['unchecked'] = dict({k: r['ours'][k] for k in ('works', 'exact', 'err', 'frac') if k in r['ours']},
                          **{k: tm[k] for k in ('stages', 'forward', 'shapes only') if k in tm})
    for tool in ('ours', 'unchecked', 'tp'):
        if tool in tm: r[tool]['seconds'] = tm[tool]
        if f'{tool} error' in tm: r[tool]['error'] = f"timing: {tm[f'{tool} error']}"
    if tm.get('error'): r['unchecked']['error'] = tm['error']
    return r

def main():
    global ROUNDS, REPEATS
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--zoo', choices=('torchvision', 'timm', 'hf', 'llama1b'), default='torchvision',
                    help="the models: torchvision's (the default), fasterai.testing.TIMM_ZOO's, HF_ZOO's "
                         "(small Hugging Face transformers with dead heads and MLP units), or llama1b: a 1.1B "
                         "Llama-style decoder (fasterai.testing.llama_decoder) in float32 and bfloat16, pruned in "
                         "place once per tool (memory: peak over the model's own size)")
    ap.add_argument('--models', help=f"comma-separated names (default: the whole zoo; with --quick: {','.join(QUICK)})")
    ap.add_argument('--timeout', type=int, default=600,
                    help="seconds one tool may take on one model (all its calls), so that a hang shows as one")
    ap.add_argument('--quick', action='store_true', help="4 small models, latency at batch 1 only with few repeats")
    ap.add_argument('--no-latency', action='store_true', help="skip the latency table")
    ap.add_argument('--threads', type=int, default=1,
                    help="torch threads for every measurement (default 1: steadier timings on a shared machine)")
    ap.add_argument('--rounds', type=int, default=ROUNDS,
                    help="timing rounds: in each, every tool prunes the model once, in turn, in one process; each "
                         "tool's time is its best round (the 1.1B decoder: one call per tool, each in its own process)")
    ap.add_argument('--repeats', type=int, default=REPEATS, help=argparse.SUPPRESS)   # calls in a one-tool child
    ap.add_argument('--child', nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ROUNDS, REPEATS = a.rounds, a.repeats
    if a.child: return child(*a.child)
    zoo = {'torchvision': ZOO, 'timm': TIMM_ZOO, 'hf': HF_ZOO, 'llama1b': LLAMA_1B}[a.zoo]
    names = a.models.split(',') if a.models else (QUICK if a.zoo == 'torchvision' else list(zoo)[:4]) if a.quick \
        else list(zoo)
    bad = [n for n in names if n not in zoo]
    if bad: ap.error(f"unknown model(s) {bad} in the {a.zoo} zoo; choose from {','.join(zoo)}")

    print(machine())
    busy0, steal0 = cpu_times(); t_start = time.time()
    print(f"Dead channels: {FRACTION:.0%} of every prunable group (seed {SEED}). exact: max relative output error < {EXACT:g} "
          "on a random batch of 4.\nmem: peak resident memory (VmHWM) above the process's resident size just before the "
          f"first call, one fresh subprocess per tool per model.\ntime: wall seconds, each returning a new model (tp: deep "
          "copy included); ours runs its own output check, 'no chk' is ours with Pruner(verify=False); " +
          (f"one call per tool in its own process.\n" if a.zoo == 'llama1b' else
           f"the best of {ROUNDS} rounds in which the three take turns in one process (the first rotating; a garbage "
           "collection before each call).\n"))
    hdr = (f"{'model':20s} {'dead':>6s} | {'ours':>8s} {'tp':>8s} | {'removed ours':>12s} {'tp':>6s} | "
           f"{'time ours':>9s} {'no chk':>6s} {'tp':>6s} {'ratio':>5s} {'no chk':>6s} | {'mem ours':>8s} {'tp':>8s}")
    print(hdr); print('-' * len(hdr), flush=True)
    state = lambda r: 'exact' if r.get('exact') else 'WRONG' if r.get('works') else 'FAIL'
    pct = lambda r: f"{r['frac']:.1%}" if r.get('frac') is not None else '-'
    sec = lambda r: f"{r['seconds']:.2f}" if r.get('seconds') is not None else '-'
    mib = lambda r: f"{r['peak'] / 2**20:.0f}MiB" if r.get('peak') is not None else '-'
    notes, rows = [], []
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, name if a.zoo == 'llama1b' else 'model.pt')
            try: ndead = prepare(name, path)
            except Exception as e:
                print(f"{name:20s} could not prepare: {type(e).__name__}: {e}", flush=True); continue
            if a.zoo == 'llama1b': r = {tool: run_child(tool, path, a.threads, a.timeout) for tool in TOOLS}
            else: r = _timed_in_turn(path, a)
        o, u, t = r['ours'], r['unchecked'], r['tp']; rows.append((name, o, u, t))
        ratio = lambda a: f"{a['seconds'] / t['seconds']:.2f}" if a.get('seconds') and t.get('seconds') else '-'
        print(f"{name:20s} {ndead:6d} | {state(o):>8s} {state(t):>8s} | {pct(o):>12s} {pct(t):>6s} | "
              f"{sec(o):>9s} {sec(u):>6s} {sec(t):>6s} {ratio(o):>5s} {ratio(u):>6s} | {mib(o):>8s} {mib(t):>8s}", flush=True)
        for tool, res in r.items():
            if res.get('error'): notes.append(f"  {name} [{tool}] {res['error']}")
            elif res.get('works') and not res.get('exact') and tool != 'unchecked': notes.append(f"  {name} [{tool}] relative output error {res['err']:.3g}")
    if notes: print("\nFailures and wrong outputs:\n" + "\n".join(notes))
    profile = [(n, u['stages']) for n, _, u, _ in rows if u.get('stages')]
    if profile:   # where fasterai's time goes: Pruner(verify=False), the fastest call (check: a half model's reference)
        keys = list(dict.fromkeys(k for _, st in profile for k in st))
        print("\nWhere the time goes, Pruner(verify=False), fastest call, seconds per stage:")
        print(f"{'model':20s} " + ' '.join(f"{k:>9s}" for k in keys))
        for n, st in profile: print(f"{n:20s} " + ' '.join(f"{st.get(k, 0):9.3f}" for k in keys))
        floor = [(n, u, t) for n, _, u, t in rows if u.get('forward') and t.get('seconds')]
        if floor:   # the least a call that runs the model once can cost, against Torch-Pruning's whole call
            print("\nThe floor: one forward pass of the model on the example input (best of the calls), the same pass on "
                  "shapes alone (meta tensors), and each over Torch-Pruning's whole call:")
            print(f"{'model':20s} {'forward':>9s} {'fwd/tp':>7s} {'shapes':>9s} {'shp/tp':>7s} {'ours-fwd/tp':>12s}")
            for n, u, t in floor:
                sh = u.get('shapes only'); tp_s = t['seconds']
                print(f"{n:20s} {u['forward']:9.3f} {u['forward'] / tp_s:7.2f} "
                      f"{(f'{sh:9.3f}' if sh else '        -')} {(f'{sh / tp_s:7.2f}' if sh else '      -')} "
                      f"{(u['seconds'] - u['forward']) / tp_s:12.2f}")
            over = [n for n, u, t in floor if u['forward'] > t['seconds'] / 2]
            print(f"The forward pass alone is over half of Torch-Pruning's call on {len(over)}/{len(floor)} models"
                  + (f": {', '.join(over)}" if over else ""))
    if a.zoo == 'llama1b':
        for n, o, u, t in rows:
            for tool, r in (('ours', o), ('no chk', u), ('tp', t)):
                if r.get('peak') is not None and r.get('model_bytes'):
                    size, peak = r['model_bytes'], r['peak']
                    print(f"{n} [{tool}] peak memory {(size + peak) / size:.3f}x the model "
                          f"({size / 2**30:.2f} GiB + {peak / 2**30:.2f} GiB)")
    both = [(n, o, u, t) for n, o, u, t in rows if o.get('exact') and t.get('exact')]
    print(f"\nfasterai exact on {sum(bool(o.get('exact')) for _, o, _, _ in rows)}/{len(rows)} models, Torch-Pruning on "
          f"{sum(bool(t.get('exact')) for _, _, _, t in rows)}/{len(rows)}.")
    more = [n for n, o, _, t in both if t['frac'] > o['frac'] + 1e-9]
    print("Where both are exact, Torch-Pruning removes more on: " + (', '.join(more) if more else "no model"))
    if both:
        med = lambda k: statistics.median(x[k]['seconds'] / x[3]['seconds'] for x in both)
        worst = max(both, key=lambda x: x[2]['seconds'] / x[3]['seconds'])
        print(f"Median time ratio ours/theirs where both are exact: {med(1):.2f} with our check, {med(2):.2f} without; "
              f"highest without: {worst[2]['seconds'] / worst[3]['seconds']:.2f} ({worst[0]})")

    if not a.no_latency and a.zoo == 'torchvision':
        latency_table(['vgg16', 'resnet50'], (1,) if a.quick else (1, 32), 5 if a.quick else 12)
    busy1, steal1 = cpu_times()
    print(f"\nrun took {time.time() - t_start:.0f}s; CPU time stolen by other guests on this host during the run: "
          f"{(steal1 - steal0) / max(1, busy1 - busy0 + steal1 - steal0):.1%}; load average at the end "
          f"{os.getloadavg()[0]:.2f}")

if __name__ == '__main__':
    main()
