"The console command, run as a user would: in a subprocess, through the installed entry point."
import shutil, subprocess
import pytest, torch

FASTERAI = shutil.which('fasterai')
pytestmark = pytest.mark.skipif(FASTERAI is None, reason="the fasterai console script is not installed (pip install -e '.[dev]')")
SMALL = ('--input-shape', '3,64,64', '--quiet')

def run(*args, cwd=None):
    return subprocess.run([FASTERAI, *args], capture_output=True, text=True, timeout=600, cwd=cwd)

def value(out, label, col=2):
    "The number in column `col` after `label` in the summary table."
    return float(out.split(label)[1].split()[col].replace(',', ''))

def test_default_run(tmp_path):
    "No arguments: VGG16, half of every group zeroed, pruned, compared and saved."
    r = run('prune', *SMALL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('vgg16:') and 'FLOPs' in r.stdout
    assert 0.2 < value(r.stdout, 'parameters') < 0.35, r.stdout   # half of every group: about a quarter of the weights
    assert float(r.stdout.split('difference|')[1].split(':')[1].split()[0]) < 1e-4, r.stdout
    assert (tmp_path/'vgg16-pruned.pt').is_file()

def test_named_model_round_trip(tmp_path):
    "A torchvision name, float64, per-layer table; the saved file loads into a fresh architecture with the same output."
    import torchvision
    from fasterai.sparse.checkpoint import load_pruned
    out = tmp_path/'r18.pt'
    r = run('prune', 'resnet18', *SMALL, '--sparsity', '0.25', '--layers', '--dtype', 'float64', '-o', str(out))
    assert r.returncode == 0, r.stderr
    assert 'layer4.1.conv1' in r.stdout and 'float64' in r.stdout
    loaded = load_pruned(lambda: torchvision.models.resnet18(), out)
    assert loaded.layer4[1].conv1.out_channels == 384 and loaded.fc.weight.dtype == torch.float64

def test_saved_module_and_weights(tmp_path):
    "A model saved whole with torch.save, and a state_dict given with --weights."
    import torchvision
    torch.manual_seed(0); m = torchvision.models.resnet18()
    torch.save(m, tmp_path/'whole.pt'); torch.save(m.state_dict(), tmp_path/'sd.pt')
    r = run('prune', str(tmp_path/'whole.pt'), *SMALL, '-o', str(tmp_path/'a.pt'))
    assert r.returncode == 0 and r.stdout.startswith(f"{tmp_path/'whole.pt'}:"), r.stderr
    r2 = run('prune', 'resnet18', '--weights', str(tmp_path/'sd.pt'), *SMALL, '-o', str(tmp_path/'b.pt'))
    assert r2.returncode == 0, r2.stderr
    assert value(r.stdout, 'parameters', 1) == value(r2.stdout, 'parameters', 1)   # same weights, same pruning

def test_already_dead_model_is_not_sparsified(tmp_path):
    "A model that already has dead channels is pruned as it is."
    import torchvision
    m = torchvision.models.resnet18()
    with torch.no_grad(): m.layer1[0].conv1.weight[:16] = 0; m.layer1[0].bn1.weight[:16] = 0; m.layer1[0].bn1.bias[:16] = 0
    torch.save(m, tmp_path/'m.pt')
    r = run('report', str(tmp_path/'m.pt'), *SMALL)
    assert r.returncode == 0, r.stderr
    assert 'already has removable channels' in r.stdout and 'layer1.0.conv1' in r.stdout
    assert list(tmp_path.iterdir()) == [tmp_path/'m.pt']          # report writes nothing

def test_bench():
    r = run('bench', 'resnet18', *SMALL, '--repeats', '2', '--warmup', '1', '--batch-sizes', '1', '2')
    assert r.returncode == 0, r.stderr
    assert 'FLOPs ratio' in r.stdout and len([l for l in r.stdout.splitlines() if l.strip().startswith(('1 ', '2 '))]) == 2

@pytest.mark.parametrize('command', ['prune', 'report', 'bench'])
def test_help(command):
    r = run(command, '--help')
    assert r.returncode == 0 and '--sparsity' in r.stdout and 'torchvision' in r.stdout

@pytest.mark.parametrize('args, message', [
    (('prune', 'not_a_model'), 'unknown model'),
    (('prune', 'missing.pt'), 'not found'),
    (('prune', '--sparsity', '2'), 'between 0 and 1'),
    (('prune', '--device', 'nonsense'), 'not available'),
    (('report', 'resnet18', '--input-shape', '5,64,64'), 'input-shape'),
    (('prune', 'resnet18', '--input-shape', 'a,b'), 'integers'),
    (('prune', 'resnet18', '--weights', 'missing.pt'), 'not found'),
])
def test_bad_input(args, message, tmp_path):
    "Each bad input: exit code 2, one line naming the problem, no traceback."
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

def test_files_that_are_not_models(tmp_path):
    import torchvision, warnings
    m = torchvision.models.resnet18()
    torch.save(m.state_dict(), tmp_path/'sd.pt')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); torch.jit.save(torch.jit.script(m), tmp_path/'ts.pt')
    (tmp_path/'junk.pt').write_text('not a model')
    for f, message in (('sd.pt', '--weights'), ('ts.pt', 'TorchScript'), ('junk.pt', 'cannot read')):
        r = run('prune', str(tmp_path/f), cwd=tmp_path)
        assert r.returncode == 2 and message in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_weights_only_constants(tmp_path):
    "--weights-only leaves constant channels: folded where exact by default, all of them with --constants approx."
    common = ('alexnet', '--input-shape', '3,64,64', '--weights-only', '--quiet')
    exact = run('prune', *common, '-o', str(tmp_path/'e.pt'), '--layers')
    approx = run('prune', *common, '--constants', 'approx', '-o', str(tmp_path/'a.pt'))
    glob = run('report', *common, '--context', 'global')
    assert exact.returncode == approx.returncode == glob.returncode == 0, exact.stderr + approx.stderr + glob.stderr
    assert 'weights only' in exact.stdout and 'zero-pads' in exact.stdout and 'folded' in exact.stdout
    assert 'folded approximately' in approx.stdout and '50% of all prunable channels, weakest first' in glob.stdout
    import re
    diff = lambda out: float(re.search(r"max \|output difference\| on a random batch of \d+: (\S+)", out).group(1))
    assert diff(exact.stdout) < 1e-6 and diff(approx.stdout) > 10 * diff(exact.stdout)
