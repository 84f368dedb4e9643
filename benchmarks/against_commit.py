"""Time `Pruner(verify=False).prune_model` of this checkout against an earlier commit, on the same machine, in turn.

    python benchmarks/against_commit.py --base 32aa415                       # 6 torchvision models, 3 rounds
    python benchmarks/against_commit.py --base HEAD~3 --models resnet18,vgg16 --rounds 5 --repeats 9

The earlier commit is checked out into a temporary git worktree (removed afterwards) and imported there by
PYTHONPATH. Every round runs one subprocess per side, base first, then this checkout, so slow drift of the
machine hits both alike. Each subprocess builds each model (torchvision, random weights, trained-like
BatchNorm statistics, one thread), makes 40% of the channels of every prunable group dead (random, seed 0,
with that side's own analysis) and times `--repeats` calls; the table gives, per model, the mean over rounds
of each side's median and the ratio this/base (below 1: this checkout is faster). Works with the API before
and after `analyse` returned an `Analysis`.
"""
import argparse, os, statistics, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = r'''
import sys, time, statistics, torch, torchvision
torch.set_num_threads(1)
from fasterai.sparse.pruner import Pruner
from fasterai.sparse.analysis import analyse
from fasterai.sparse.sparsifier import zero_channels, weakest_channels
try: from fasterai.testing import trained_like
except ImportError: from fasterai.sparse.pruner import trained_like
for name in sys.argv[1].split(','):
    torch.manual_seed(0)
    m = trained_like(torchvision.models.get_model(name, weights=None)); x = torch.randn(1, 3, 224, 224)
    a = analyse(m, x); g = getattr(a, 'graph', a)
    zero_channels(m, g, weakest_channels(m, g, 0.4, 'random', 0))
    ts = []
    for _ in range(int(sys.argv[2])):
        t0 = time.perf_counter(); Pruner(verify=False).prune_model(m, x); ts.append(time.perf_counter() - t0)
    print(name, statistics.median(ts), flush=True)
'''

def run(path, models, repeats) -> dict:
    env = dict(os.environ, PYTHONPATH=str(path), PYTHONWARNINGS='ignore')
    out = subprocess.run([sys.executable, '-c', CHILD, models, str(repeats)], env=env, capture_output=True, text=True,
                         cwd=tempfile.gettempdir())
    if out.returncode: sys.exit(f"the run at {path} failed:\n{out.stderr[-3000:]}")
    return {name: float(t) for name, t in (line.split() for line in out.stdout.splitlines())}

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--base', required=True, help="the commit to compare with (any git revision)")
    p.add_argument('--models', default='mobilenet_v3_small,mnasnet0_5,resnet18,googlenet,efficientnet_b0,densenet121')
    p.add_argument('--rounds', type=int, default=3, help="subprocesses per side, in turn (default: 3)")
    p.add_argument('--repeats', type=int, default=7, help="timed calls per model in each subprocess (default: 7)")
    a = p.parse_args()
    rev = subprocess.run(['git', '-C', str(ROOT), 'rev-parse', '--short', a.base], capture_output=True, text=True)
    if rev.returncode: sys.exit(f"unknown revision {a.base!r}: {rev.stderr.strip()}")
    here = subprocess.run(['git', '-C', str(ROOT), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True)
    here = here.stdout.strip()
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)/'base'
        subprocess.run(['git', '-C', str(ROOT), 'worktree', 'add', '-q', '--detach', str(base), a.base], check=True)
        try:
            sides = {'base': [], 'this': []}
            for r in range(a.rounds):
                for side, path in (('base', base), ('this', ROOT)):
                    sides[side].append(run(path, a.models, a.repeats))
                    print(f"round {r + 1}/{a.rounds}: {side} done", file=sys.stderr, flush=True)
        finally: subprocess.run(['git', '-C', str(ROOT), 'worktree', 'remove', '--force', str(base)], check=False)
    print(f"Pruner(verify=False).prune_model, median of {a.repeats} calls, mean over {a.rounds} rounds run in turn; "
          f"base {rev.stdout.strip()}, this {here} (uncommitted changes included)")
    print(f"{'model':22s}{'base s':>9s}{'this s':>9s}{'this/base':>11s}")
    ratios = []
    for name in a.models.split(','):
        b, t = (statistics.mean(run_[name] for run_ in sides[s]) for s in ('base', 'this'))
        ratios.append(t / b); print(f"{name:22s}{b:9.3f}{t:9.3f}{t / b:11.2f}")
    print(f"{'median ratio':40s}{statistics.median(ratios):11.2f}")

if __name__ == '__main__': main()
