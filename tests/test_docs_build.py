"""docs/build.py's parts, without building the site: the conversions of nbdev's show_doc output (readable signatures
with a table of argument descriptions, no import blocks on API pages, one id per anchor) and the execution of a
notebook (outputs kept, `eval: false` skipped, a failing cell failing the build)."""
import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location('docs_build', Path(__file__).resolve().parent.parent/'docs'/'build.py')
build = importlib.util.module_from_spec(spec); spec.loader.exec_module(build)

SHOW_DOC = '''### Pruner.prune_model

```python
def prune_model(
    model:torch.nn.modules.module.Module, # the model to prune; left as it was unless `inplace`
    example_inputs:NoneType=None, # one batch shaped like real data
    size:tuple=(1, 2), # a default with a comma
)->torch.nn.modules.module.Module:
```

*A pruned copy of `model`.*'''

def test_signature_is_readable_and_arguments_described():
    md = build.tidy_signature(SHOW_DOC, 'Pruner.prune_model')
    assert 'def prune_model(model: nn.Module, example_inputs=None, size: tuple = (1, 2)) -> nn.Module' in md
    assert 'NoneType' not in md and 'torch.nn.modules' not in md and '#' not in md.split('```')[1]
    table = md.split('*A pruned copy of `model`.*')[1].strip().splitlines()
    assert table[2] == "| `model` | `nn.Module` |  | the model to prune; left as it was unless `inplace` |"
    assert table[4] == "| `size` | `tuple` | `(1, 2)` | a default with a comma |"

def test_class_and_no_arguments():
    md = build.tidy_signature('### Pruner\n\n```python\ndef Pruner(\n    verify:bool=True, # check\n):\n```\n\n*Doc.*', 'Pruner')
    assert md.startswith('### Pruner\n\n```python\nclass Pruner(verify: bool = True)\n```')
    md = build.tidy_signature('### R.to_records\n\n```python\ndef to_records()->list:\n```\n\n*One.*', 'R.to_records')
    assert '```python\ndef to_records() -> list\n```\n\n*One.*' in md and '| argument' not in md

def test_short_types():
    for long, short in [('torch.nn.modules.linear.Linear', 'nn.Linear'), ('fasterai.sparse.graph.ChannelGraph', 'ChannelGraph'),
                        ('numpy.ndarray', 'np.ndarray'), ('torch.fx.node.Node', 'fx.Node'), ('NoneType', ''),
                        ('typing.Optional[torch.Tensor]', 'Tensor | None'), ('pathlib.Path', 'Path')]:
        assert build.short_type(long) == short, long

def test_imports_only():
    assert build.imports_only('import time\nfrom contextlib import nullcontext\n')
    assert not build.imports_only('import time\nx = 1') and not build.imports_only('def f(): pass') and not build.imports_only('')

def test_one_id_per_anchor():
    "A heading whose own id is nbdev's anchor gets no second one; a dotted one keeps nbdev's (pruner.prune_model)."
    assert 'fa-anchor' not in build._anchored('### Pruner\n')
    assert '<div id="pruner.prune_model" class="fa-anchor"></div>' in build._anchored('### Pruner.prune_model\n')

def _notebook(path, *sources):
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    nbformat.write(nb, path); return path

def test_execute_runs_cells_in_the_notebooks_folder(tmp_path):
    "Outputs kept, `#| eval: false` cells shown but not run, the notebook's folder as working directory, __main__ back."
    import json, sys
    main = sys.modules['__main__']
    (tmp_path/'data.txt').write_text('beside the notebook')
    src = _notebook(tmp_path/'ok.ipynb', "print(open('data.txt').read())", "#| eval: false\nraise SystemExit('run')", "6*7")
    build.execute(src, tmp_path/'out'/'ok.ipynb', timeout=60)
    cells = json.loads((tmp_path/'out'/'ok.ipynb').read_text())['cells']
    assert cells[0]['outputs'][0]['text'] == ['beside the notebook\n']
    assert cells[1]['outputs'] == [] and 'SystemExit' in ''.join(cells[1]['source'])
    assert cells[2]['outputs'][0]['data']['text/plain'] == ['42']
    assert sys.modules['__main__'] is main

def test_a_failing_cell_fails_the_build(tmp_path):
    "The build is the notebooks' test: a cell that raises stops it with the notebook's name and the error."
    import pytest
    src = _notebook(tmp_path/'bad.ipynb', "x = 1", "assert x == 2, 'x is not 2'", "print('never')")
    with pytest.raises(build.BuildError, match=r"bad\.ipynb: a cell failed[\s\S]*x is not 2"):
        build.execute(src, tmp_path/'out'/'bad.ipynb', timeout=60)
    assert not (tmp_path/'out'/'bad.ipynb').exists()
