"""The console command, run as a user would: in a subprocess, through the interpreter that runs the tests
(`python -m fasterai.cli`, the command the `fasterai` entry point runs), so that no test depends on PATH. The many
bad-input cases call the same `main` in this process (a process costs seconds of imports), and a few of them in a
process too, to check that both give the same line."""
import io, os, shutil, subprocess, sys
import pytest, torch

SMALL = ('--input-shape', '3,64,64', '--quiet')

def run(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'fasterai.cli', *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd)

def test_entry_point_is_the_module():
    "The installed `fasterai` script, where it is on PATH, is the same command."
    # on PATH, or beside the interpreter running the tests (a venv's bin/, not activated)
    script = shutil.which('fasterai') or shutil.which('fasterai', path=os.path.dirname(sys.executable))
    if script is None: pytest.skip("no fasterai script on PATH or beside the interpreter: the other tests run "
                                   "`python -m fasterai.cli`")
    r = subprocess.run([script, 'prune', '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == run('prune', '--help').stdout

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
    r = run_here('prune', str(tmp_path/'whole.pt'), *SMALL, '--trust-pickle', '-o', str(tmp_path/'a.pt'))
    assert r.returncode == 0 and r.stdout.startswith(f"{tmp_path/'whole.pt'}:"), r.stderr
    r2 = run_here('prune', 'resnet18', '--weights', str(tmp_path/'sd.pt'), *SMALL, '-o', str(tmp_path/'b.pt'))
    assert r2.returncode == 0, r2.stderr
    assert value(r.stdout, 'parameters', 1) == value(r2.stdout, 'parameters', 1)   # same weights, same pruning

def test_already_dead_model_is_not_sparsified(tmp_path):
    "A model that already has dead channels is pruned as it is."
    import torchvision
    m = torchvision.models.resnet18()
    with torch.no_grad(): m.layer1[0].conv1.weight[:16] = 0; m.layer1[0].bn1.weight[:16] = 0; m.layer1[0].bn1.bias[:16] = 0
    torch.save(m, tmp_path/'m.pt')
    r = run_here('report', str(tmp_path/'m.pt'), *SMALL, '--trust-pickle')
    assert r.returncode == 0, r.stderr
    assert 'already has removable channels' in r.stdout and 'layer1.0.conv1' in r.stdout
    assert list(tmp_path.iterdir()) == [tmp_path/'m.pt']          # report writes nothing

def test_bench():
    r = run_here('bench', 'resnet18', *SMALL, '--repeats', '2', '--warmup', '1', '--batch-sizes', '1', '2')
    assert r.returncode == 0, r.stderr
    assert 'FLOPs ratio' in r.stdout and len([l for l in r.stdout.splitlines() if l.strip().startswith(('1 ', '2 '))]) == 2

@pytest.mark.parametrize('command', ['prune', 'report', 'bench'])
def test_help(command):
    r = run_here(command, '--help')
    assert r.returncode == 0 and '--sparsity' in r.stdout and 'torchvision' in r.stdout

@pytest.fixture(scope='module')
def bad_files(tmp_path_factory):
    "The files the bad-input cases read, written once: a text file, a whole pickled model, state_dicts that fit and not."
    import torchvision, warnings
    tmp_path = tmp_path_factory.mktemp('bad_files')
    m = torchvision.models.resnet18()
    (tmp_path/'text.pt').write_text('not a model')
    torch.save(m, tmp_path/'whole.pt'); torch.save(m.state_dict(), tmp_path/'sd.pt')
    torch.save({k + '_x': v for k, v in m.state_dict().items()}, tmp_path/'keys.pt')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); torch.jit.save(torch.jit.script(m), tmp_path/'ts.pt')
    (tmp_path/'exists-pruned.pt').write_text('an earlier result'); (tmp_path/'earlier.png').write_text('a plot')
    return tmp_path

BAD_INPUT = [   # arguments, what the one line must say
    (('prune', 'resnt18'), 'did you mean resnet18'),
    (('prune', 'missing.pt'), 'not found'),
    (('prune', 'text.pt'), 'not a file written by torch.save'),
    (('prune', 'whole.pt'), '--trust-pickle'),
    (('prune', 'sd.pt'), '--weights'),
    (('prune', 'ts.pt'), 'TorchScript'),
    (('prune', '--sparsity', '2'), 'below 1'),
    (('prune', '--sparsity', '1'), 'below 1'),
    (('prune', '--batch', '0'), '--batch must be a positive integer'),
    (('prune', '--device', 'nonsense'), 'not available'),
    (('report', 'resnet18', '--input-shape', '5,64,64'), 'input-shape'),
    (('prune', 'resnet18', '--input-shape', 'a,b'), 'integers'),
    (('prune', 'resnet18', '--weights', 'missing.pt'), 'not found'),
    (('prune', 'resnet18', '--weights', 'text.pt'), 'not a file written by torch.save'),
    (('prune', 'resnet18', '--weights', 'whole.pt'), 'not a state_dict'),
    (('prune', 'resnet18', '--weights', 'keys.pt'), 'missing bn1.bias'),
    (('prune', 'resnet18', '-o', 'no/such/folder/x.pt'), 'does not exist'),
    (('prune', 'exists', '-o', 'exists-pruned.pt'), '--force'),
    (('prune', 'resnet18', '-o', 'exists-pruned.pt'), '--force'),
    (('prune', 'resnet18', '--export', 'out.txt'), '.pt2'),
    (('prune', 'resnet18', '--plot', 'widths.txt'), '.png'),
    (('prune', 'resnet18', '--plot', 'earlier.png'), '--force'),
]

def run_here(*args, cwd=None):
    """The same command in this process (`main(argv)`, which `python -m fasterai.cli` calls), as a `CompletedProcess`. A
    process costs seconds of imports: the tests of the options run here, those of the process itself (the entry point,
    the first run, exit codes and stderr as a shell sees them) in a process."""
    from contextlib import redirect_stdout, redirect_stderr
    from fasterai.cli import main
    out, err, old = io.StringIO(), io.StringIO(), os.getcwd()
    if cwd is not None: os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try: code = main(list(map(str, args)))
            except SystemExit as e: code = e.code   # argparse's own errors
    finally: os.chdir(old)
    return subprocess.CompletedProcess(['fasterai', *args], code, out.getvalue(), err.getvalue())

def _bad_args(args): return (*args, *(('--quiet',) if '--input-shape' in args else SMALL))

@pytest.mark.parametrize('args, message', BAD_INPUT, ids=[' '.join(a) for a, _ in BAD_INPUT])
def test_bad_input(args, message, bad_files, tmp_path):
    "Each bad input: exit code 2, one line naming the problem and what to do, no traceback, nothing written."
    shutil.copytree(bad_files, tmp_path, dirs_exist_ok=True)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    r = run_here(*_bad_args(args), cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and '\x1b' not in r.stderr, r.stderr
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before   # nothing written or replaced

@pytest.mark.parametrize('args, message', [BAD_INPUT[0], BAD_INPUT[6], BAD_INPUT[15]], ids=['name', 'argparse', 'keys'])
def test_bad_input_in_a_process(args, message, bad_files):
    "The same one line and exit code 2 from a real process: a misspelt name, an argparse error, a bad state_dict."
    r = run(*_bad_args(args), cwd=bad_files)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr == run_here(*_bad_args(args), cwd=bad_files).stderr

def test_force_replaces(tmp_path):
    "With --force an existing output is replaced; without, the earlier result stays."
    (tmp_path/'r.pt').write_text('an earlier result')
    r = run_here('prune', 'resnet18', *SMALL, '-o', str(tmp_path/'r.pt'), '--force')
    assert r.returncode == 0, r.stderr
    assert (tmp_path/'r.pt').read_bytes()[:2] == b'PK'   # a torch.save zip file now

def test_progress_in_a_log(tmp_path):
    "Piped (not a terminal): one line per step with its time on stderr, no escape codes; --quiet: none."
    r = run_here('prune', 'resnet18', '--input-shape', '3,64,64', '-o', str(tmp_path/'r.pt'))
    assert r.returncode == 0, r.stderr
    steps = [l for l in r.stderr.splitlines() if l.startswith('fasterai: ')]
    assert [l.split(' (')[0] for l in steps][-2:] == ['fasterai: pruning', f"fasterai: saving {tmp_path/'r.pt'}"], steps
    assert all(l.endswith('s)') for l in steps) and '\x1b' not in r.stderr
    quiet = run_here('prune', 'resnet18', *SMALL, '-o', str(tmp_path/'q.pt'))
    assert quiet.returncode == 0 and quiet.stderr.strip() == '', quiet.stderr

def test_exported_program_as_input(tmp_path):
    "A torch.export program (.pt2) is a model file too: sparsified and pruned; one exported for a batch of 4 is refused."
    import torchvision
    m = torchvision.models.resnet18().eval()
    for name, batch in (('one.pt2', 1), ('four.pt2', 4)):
        torch.export.save(torch.export.export(m, (torch.randn(batch, 3, 64, 64),)), tmp_path/name)
    r = run_here('prune', 'one.pt2', '--quiet', '-o', 'one-pruned.pt', cwd=tmp_path)
    assert r.returncode == 0 and 'parameters' in r.stdout and (tmp_path/'one-pruned.pt').exists(), r.stderr
    ratio = float(next(l for l in r.stdout.splitlines() if l.startswith('parameters')).split()[-1])
    assert ratio < 0.5, r.stdout
    bad = run_here('prune', 'four.pt2', '--quiet', cwd=tmp_path)
    assert bad.returncode == 2 and 'batches of exactly 4' in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

def test_plot(tmp_path):
    "--plot FILE draws the report: a PNG (or SVG) beside the pruned model, named in the output."
    r = run_here('prune', 'resnet18', *SMALL, '-o', str(tmp_path/'r.pt'), '--plot', str(tmp_path/'w.svg'))
    assert r.returncode == 0, r.stderr
    assert 'w.svg' in r.stdout and (tmp_path/'w.svg').read_text().lstrip().startswith('<?xml')

def test_weights_only_constants(tmp_path):
    "--weights-only leaves constant channels: folded where exact by default, all of them with --constants approx."
    common = ('alexnet', '--input-shape', '3,64,64', '--weights-only', '--quiet')
    exact = run_here('prune', *common, '-o', str(tmp_path/'e.pt'), '--layers')
    approx = run_here('prune', *common, '--constants', 'approx', '-o', str(tmp_path/'a.pt'))
    glob = run_here('report', *common, '--context', 'global')
    assert exact.returncode == approx.returncode == glob.returncode == 0, exact.stderr + approx.stderr + glob.stderr
    assert 'weights only' in exact.stdout and 'zero-pads' in exact.stdout and 'folded' in exact.stdout
    assert 'folded approximately' in approx.stdout and '50% of all prunable channels, weakest first' in glob.stdout
    import re
    diff = lambda out: float(re.search(r"max \|output difference\| on a random batch of \d+: (\S+)", out).group(1))
    assert diff(exact.stdout) < 1e-6 and diff(approx.stdout) > 10 * diff(exact.stdout)
