"""The README's Python snippets run as a reader meets them: in reading order, in one namespace, each building on
the ones before (the README is written from nbs/index.ipynb; its fenced ```python blocks are not notebook cells,
so nothing else runs them)."""
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / 'README.md'

def python_blocks(text: str) -> list:
    "The fenced ```python blocks of a markdown text, in order."
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)

def test_python_blocks_found():
    assert python_blocks("a\n```python\nx = 1\n```\n```sh\nls\n```\n```python\ny = x\n```\n") == ['x = 1\n', 'y = x\n']

def test_readme_snippets_run_in_order(tmp_path, monkeypatch):
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 4, f"expected the README's Python snippets, found {len(blocks)}"
    monkeypatch.chdir(tmp_path)   # the snippets write files (a checkpoint, an export)
    namespace = {'__name__': '__readme__'}
    for i, code in enumerate(blocks, 1):
        exec(compile(code, f"README.md python snippet {i}", 'exec'), namespace)
    assert (tmp_path / 'small-pruned.pt').exists() and (tmp_path / 'small.pt2').exists()
