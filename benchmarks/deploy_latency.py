"""Is the pruned model as fast as its FLOPs say? FLOPs ratio and CPU latency ratio, with and without
BatchNorm folding, round_to=8 and channels_last, for VGG16, ResNet-50 and MobileNetV2 at 50% of the
channels of every group removed. Everything is measured in one run, on this machine.

    python benchmarks/deploy_latency.py [--models vgg16,resnet50,mobilenet_v2] [--repeats 15] [--sizes 1,32]

Ratios are pruned / original. Two baselines: the original as the user has it (BatchNorms unfolded,
contiguous: columns 'lat'), and the original given the same deployment options as the pruned model
(fold_bn and channels_last where the row has them: columns 'same'), which isolates what pruning
itself buys. 'r/r' = latency ratio / FLOPs ratio (1.0: the time follows the FLOPs exactly).
"""
import argparse, collections, os, platform, statistics, time
import torch, torchvision
from fasterai.sparse.analysis import analyse
from fasterai.sparse.sparsifier import zero_channels, weakest_channels
from fasterai.sparse.pruner import Pruner
from fasterai.sparse.measure import count_flops
from fasterai.sparse.deploy import fold_batchnorm

def round_robin(models: dict, repeats: int, warmup: int = 3) -> dict:
    "Median seconds of each `model(x)` in `models` ({key: (model, x)}), running each once per round, `warmup` rounds not counted."
    times = {k: [] for k in models}
    with torch.inference_mode():
        for i in range(warmup + repeats):
            for k, (m, x) in models.items():
                t0 = time.perf_counter(); m(x); dt = time.perf_counter() - t0
                if i >= warmup: times[k].append(dt)
    return {k: statistics.median(v) for k, v in times.items()}

def cpu_name():
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except Exception: return platform.processor()

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', default='vgg16,resnet50,mobilenet_v2')
    ap.add_argument('--repeats', type=int, default=15)
    ap.add_argument('--sizes', default='1,32', help="batch sizes")
    ap.add_argument('--sparsity', type=float, default=0.5)
    ap.add_argument('--breakdown', action='store_true', help="also time each kind of op (torch.profiler, one run at the largest batch size)")
    ap.add_argument('--layers', action='store_true',
                    help="also time each layer of the folded channels_last original and pruned model (median of 3 runs at the largest batch size)")
    a = ap.parse_args()
    print(f"# {cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"224x224 inputs, median of {a.repeats} runs after 3 warm-up runs, all models of a row group timed in turn, round after round")
    sizes = a.sizes.split(',')
    print(f"{'model':14s} {'variant':32s} {'FLOPs ratio':>11s} " +
          " ".join(f"{'lat b'+s:>8s} {'r/r':>5s} {'same b'+s:>8s} {'r/r':>5s}" for s in sizes))
    for name in a.models.split(','):
        torch.manual_seed(0)
        model = torchvision.models.get_model(name, weights=None).eval()
        x1 = torch.randn(1, 3, 224, 224)
        g = analyse(model, (x1,)).graph; zero_channels(model, g, weakest_channels(model, g, a.sparsity))
        pruned = Pruner().prune_model(model, (x1,))
        pruned8 = Pruner(round_to=8).prune_model(model, (x1,))
        variants = {'pruned': pruned, 'pruned + fold_bn': fold_batchnorm(pruned),
                    'pruned + fold_bn + round_to=8': fold_batchnorm(pruned8),
                    'pruned + fold_bn + channels_last': fold_batchnorm(pruned).to(memory_format=torch.channels_last)}
        f0 = count_flops(model, (x1,))
        cl = lambda t: t.to(memory_format=torch.channels_last)
        inputs = {s: torch.randn(int(s), 3, 224, 224) for s in sizes}
        # the original under each treatment: as it is, folded, folded and channels_last
        originals = {'': (model, False), 'fold': (fold_batchnorm(model), False), 'fold+cl': (cl(fold_batchnorm(model)), True)}
        timed = {('original', k): v for k, v in originals.items()}
        timed.update({('pruned', label): (m, 'channels_last' in label) for label, m in variants.items()})
        # every model runs once per round, in turn: a slow drift of the machine moves all of them alike
        secs = {s: round_robin({key: (m, cl(inputs[s]) if last else inputs[s]) for key, (m, last) in timed.items()}, a.repeats)
                for s in sizes}
        for label, m in variants.items():
            same = ('fold+cl' if 'channels_last' in label else 'fold' if 'fold_bn' in label else '')
            fr = count_flops(m, (x1,)) / f0; cells = []
            for s in sizes:
                t = secs[s]['pruned', label]
                lr, ls = t / secs[s]['original', ''], t / secs[s]['original', same]
                cells.append(f"{lr:8.3f} {lr/fr:5.2f} {ls:8.3f} {ls/fr:5.2f}")
            print(f"{name:14s} {label:32s} {fr:11.3f} " + " ".join(cells), flush=True)
        if a.breakdown: breakdown(name, model, pruned, inputs[sizes[-1]])
        if a.layers: per_layer(name, originals['fold+cl'][0], variants['pruned + fold_bn + channels_last'], cl(inputs[sizes[-1]]))

def layer_seconds(model, x, repeats=3) -> dict:
    "Median seconds of each leaf module's call (forward hooks) over `repeats` forward passes after one warm-up."
    times, hooks, start = {}, [], {}
    for name, m in model.named_modules():
        if list(m.children()): continue
        hooks.append(m.register_forward_pre_hook(lambda m, a, name=name: start.__setitem__(name, time.perf_counter())))
        hooks.append(m.register_forward_hook(lambda m, a, o, name=name: times.setdefault(name, []).append(time.perf_counter() - start[name])))
    try:
        with torch.inference_mode():
            model(x); times.clear()
            for _ in range(repeats): model(x)
    finally:
        for h in hooks: h.remove()
    return {k: statistics.median(v) for k, v in times.items()}

def per_layer(name, original, pruned, x):
    "Each layer's time, pruned / original, beside its FLOPs ratio (convolutions: in x out channels / groups; Linear: in x out)."
    a, b = layer_seconds(original, x), layer_seconds(pruned, x)
    size = lambda m: (m.in_channels * m.out_channels / m.groups if isinstance(m, torch.nn.Conv2d) else
                      m.in_features * m.out_features if isinstance(m, torch.nn.Linear) else None)
    print(f"{name}: time per layer at batch {x.shape[0]}, folded, channels_last (ms)")
    for k in a:
        m, mp = original.get_submodule(k), pruned.get_submodule(k)
        fr = f"{size(mp) / size(m):.3f}" if size(m) else '' 
        print(f"  {k:28s} {type(m).__name__:18s} original {a[k]*1e3:8.1f}  pruned {b.get(k, float('nan'))*1e3:8.1f}  "
              f"ratio {b.get(k, float('nan')) / a[k]:.3f}  FLOPs ratio {fr}", flush=True)
    print(f"  {'all layers':28s} {'':18s} original {sum(a.values())*1e3:8.1f}  pruned {sum(b.values())*1e3:8.1f}  "
          f"ratio {sum(b.values()) / sum(a.values()):.3f}", flush=True)

OPS = {'aten::conv2d': 'conv', 'aten::linear': 'linear', 'aten::max_pool2d': 'max pool', 'aten::adaptive_avg_pool2d': 'avg pool',
       'aten::relu_': 'relu', 'aten::relu': 'relu', 'aten::batch_norm': 'batch norm', 'aten::add': 'add', 'aten::add_': 'add'}

def breakdown(name, model, pruned, x):
    "Milliseconds per kind of op in one forward of the original and the pruned model, and their ratio."
    from torch.profiler import profile, ProfilerActivity
    def per_op(m):
        with torch.no_grad():
            m(x)
            with profile(activities=[ProfilerActivity.CPU]) as prof: m(x)
        ms = collections.Counter()
        for e in prof.key_averages():
            if e.key in OPS: ms[OPS[e.key]] += e.cpu_time_total / 1e3
        return ms
    a, b = per_op(model), per_op(pruned)
    print(f"{name}: time per kind of op at batch {x.shape[0]} (pruned, not folded), ms")
    for k in a: print(f"  {k:12s} original {a[k]:9.1f}  pruned {b[k]:9.1f}  ratio {b[k] / a[k]:.3f}", flush=True)

if __name__ == '__main__': main()
