"""Peak memory of pruning: copy mode (the default) against inplace=True, on a large model.

    python benchmarks/memory.py [--model wide_resnet50_2] [--mlp-gb 2]

Each measurement runs in a fresh subprocess: it builds and sparsifies the model, resets the kernel's
peak-RSS counter (/proc/self/clear_refs), prunes, and reports the resident memory before pruning and
the peak during it (VmRSS, VmHWM), beside the size of the model's parameters. The MLP case is
a stack of wide Linear layers of about --mlp-gb GB in total, the case of a model that barely fits.
"""
import argparse, json, subprocess, sys

CHILD = r'''
import json, sys, torch, torch.nn as nn
from fasterai.sparse.analysis import analyse
from fasterai.sparse.sparsifier import zero_channels, weakest_channels
from fasterai.sparse.pruner import Pruner
kind, arg, mode = sys.argv[1], sys.argv[2], sys.argv[3]
torch.manual_seed(0)
if kind == 'mlp':
    width = int((float(arg) * 2**30 / 4 / 4) ** .5)          # four square layers of float32
    model = nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(width, width), nn.ReLU())]).eval(); x = torch.randn(1, width)
else:
    import torchvision; model = torchvision.models.get_model(arg, weights=None).eval(); x = torch.randn(1, 3, 224, 224)
g = analyse(model, (x,)).graph; zero_channels(model, g, weakest_channels(model, g, 0.5)); del g
model_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
status = lambda key: int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith(key))) / 1024
open('/proc/self/clear_refs', 'w').write('5')            # reset the peak (VmHWM) to the current RSS
before = status('VmRSS')
pruned = Pruner().prune_model(model, (x,), inplace=(mode == 'inplace'))
print(json.dumps(dict(model_mb=model_mb, before_mb=before, peak_mb=status('VmHWM'))))
'''

def measure(kind, arg, mode):
    out = subprocess.run([sys.executable, '-c', CHILD, kind, arg, mode], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='wide_resnet50_2'); ap.add_argument('--mlp-gb', default='2')
    a = ap.parse_args()
    print(f"{'model':22s} {'mode':8s} {'params MB':>10s} {'RSS before MB':>14s} {'peak RSS MB':>12s} {'peak - before':>14s}")
    for kind, arg, label in (('tv', a.model, a.model), ('mlp', a.mlp_gb, f"MLP {a.mlp_gb} GB")):
        for mode in ('copy', 'inplace'):
            r = measure(kind, arg, mode)
            print(f"{label:22s} {mode:8s} {r['model_mb']:10.0f} {r['before_mb']:14.0f} {r['peak_mb']:12.0f} {r['peak_mb'] - r['before_mb']:14.0f}", flush=True)

if __name__ == '__main__': main()
