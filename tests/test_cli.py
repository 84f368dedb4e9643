"The console command, run as a user would: in a subprocess, through the installed entry point."
import shutil, subprocess, sys
import pytest

FASTERAI = shutil.which('fasterai')
pytestmark = pytest.mark.skipif(FASTERAI is None, reason="the fasterai console script is not installed (pip install -e '.[dev]')")

def run(*args):
    return subprocess.run([FASTERAI, *args], capture_output=True, text=True, timeout=600)

def test_default_run():
    r = run('prune', '--input-size', '64')
    assert r.returncode == 0, r.stderr
    assert 'vgg16' in r.stdout and 'parameters' in r.stdout and 'FLOPs' in r.stdout
    ratio = float(r.stdout.split('parameters')[1].split()[2])
    assert 0.2 < ratio < 0.35, r.stdout            # half of every group's channels: about a quarter of the weights
    diff = float(r.stdout.split('difference|')[1].split(':')[1])
    assert diff < 1e-4, r.stdout

def test_named_model_and_layers():
    r = run('prune', 'resnet18', '--input-size', '64', '--sparsity', '0.25', '--layers', '--dtype', 'float64')
    assert r.returncode == 0, r.stderr
    assert 'layer4.1.conv1' in r.stdout and 'float64' in r.stdout

def test_help():
    r = run('prune', '--help')
    assert r.returncode == 0 and '--sparsity' in r.stdout and 'torchvision' in r.stdout

@pytest.mark.parametrize('args, message', [(('prune', 'not_a_model'), 'unknown model'),
                                           (('prune', '--sparsity', '2'), 'between 0 and 1'),
                                           (('prune', '--device', 'nonsense'), 'not available')])
def test_bad_input(args, message):
    r = run(*args)
    assert r.returncode == 2 and message in r.stderr and 'Traceback' not in r.stderr, r.stderr
