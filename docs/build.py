"""Build the documentation site from the notebooks in nbs/ into _docs/, offline and without Quarto.

Usage (from anywhere; needs `pip install -e ".[docs]"`, which `.[dev]` includes):

    python docs/build.py                 # execute, process and render every notebook: _docs/index.html
    python docs/build.py --jobs 2        # execute two notebooks at a time (default: one)
    python -m http.server -d _docs       # then view the site at http://localhost:8000

The notebooks in nbs/ are stored without outputs, so every output on the site comes from running
them here. Four steps, each in its own folder under build/docs/ (ignored by git):

1. execute: every notebook (nbdev's list: `nbglob`, so nbs/tutorials/ too) runs top to bottom as
   nbdev-test runs it (execnb's shell, in a worker process, in the notebook's own folder), each cell
   limited to --timeout seconds; `#| eval: false` cells do not run. A failing cell fails the build,
   so the build is the notebooks' test too (CI runs no separate nbdev-test).   -> executed/
2. process: nbdev's own notebook processing, the processors nbdev-proc-nbs runs before Quarto
   (`nbdev.processors.FilterDefaults`): `#| hide` cells dropped, a show_doc for every exported
   symbol, the title cell turned into front matter (with nbdev's page name: 05_pruner.ipynb ->
   pruner.html), backticked symbols linked to their docs. One change from nbdev's defaults: the
   source of `#| export` cells is shown, after its show_doc, as nbdev shows `#| exports` cells.
3. convert: for myst-nb: front matter -> title and description, Quarto cell options (`echo`,
   `output`, `include`) -> myst-nb tags, show_doc results (`output: asis`) -> markdown with nbdev's
   anchors (pruner.html#pruner.prune_model), site-root and .ipynb links -> relative links, so the
   site works from any folder; a table of contents added to the home page.   -> src/
4. render: Sphinx with myst-nb (configuration: docs/conf.py, theme furo), which writes every image
   output to a file in _docs/_images/ and executes nothing itself.   -> _docs/

It leaves nbdev's files alone: _proc/ (nbdev-proc-nbs's cache, which .ci/readme.py also uses),
nbs/_quarto.yml and nbs/nbdev.yml, so `nbdev-docs` still works where Quarto is installed.
Exit status: 0 when the site is built, 1 when a notebook or Sphinx fails (the error is printed).
"""
import argparse, os, re, shutil, sys, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT/'build'/'docs'
CONF_DIR = ROOT/'docs'
IMAGES = ('.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp')


class BuildError(Exception):
    "A notebook or Sphinx failed: the message says which and why."


def _cfg():
    from nbdev.config import get_config
    return get_config(ROOT)

def notebooks(cfg) -> list:
    "The notebooks nbdev works on (its `nbglob`: recursive, no `_`/`.` files or folders), in order."
    from nbdev.doclinks import nbglob
    return sorted(nbglob(cfg.nbs_path, as_path=True), key=lambda p: p.relative_to(cfg.nbs_path).parts)


# ---------------------------------------------------------------- 1. execute
def _plain(e) -> str: return re.sub(r'\x1b\[[0-9;]*m', '', str(e))   # a traceback without its colours

def execute(src: Path, dst: Path, timeout: int) -> float:
    """Run notebook `src` top to bottom as nbdev-test does (execnb's shell, in this process, with `src`'s folder as
    working directory); write it with its outputs to `dst`."""
    from fastcore.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    nb = read_nb(src)
    # `#| eval: false` cells are shown but not run, as under nbdev-test (a `__main__` guard, say)
    skip = lambda cell: cell.cell_type != 'code' or bool(re.search(r'^#\|\s*eval:\s*false\s*$', cell.source, re.M))
    t0, main = time.perf_counter(), sys.modules['__main__']
    shell = CaptureShell(src, timeout=timeout)   # an IPython shell: it makes its namespace sys.modules['__main__']
    try:
        with working_directory(src.parent): shell.run_all(nb, exc_stop=True, preproc=skip, cell_timeout=timeout)
    except Exception as e:
        raise BuildError(f"{src}: a cell failed\n{_plain(shell.prettytb(fname=src)) or f'{type(e).__name__}: {e}'}") from None
    finally:   # the next notebook this worker runs is sent as `__main__.execute`: the real __main__ must be back
        shell.close(); sys.modules['__main__'] = main
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_nb(nb, dst)
    return time.perf_counter() - t0

def _execute_all(srcs: list, dsts: list, jobs: int, timeout: int, log):
    """`execute` every notebook, `jobs` at a time, each worker process running its share one after the other (as
    nbdev-test's workers do: torch and the other imports are paid once per worker, not once per notebook)."""
    # the slowest notebooks first, so that no worker is left with a long one at the end
    order = sorted(range(len(srcs)), key=lambda i: ('tutorials' not in srcs[i].parts, i))
    with ProcessPoolExecutor(max(1, jobs)) as pool:
        runs = {pool.submit(execute, srcs[i], dsts[i], timeout): i for i in order}
        for run in as_completed(runs):
            log(f"    {dsts[runs[run]].relative_to(BUILD/'executed')}  {run.result():.1f}s")


# ---------------------------------------------------------------- 2. process
def _show_exports(cell):
    "Treat `#| export` cells as nbdev treats `#| exports` ones: their source stays, after its show_doc."
    if cell.cell_type == 'code' and 'export' in cell.directives_: cell.directives_['exports'] = cell.directives_.pop('export')

def _docs_filter():
    "nbdev's `FilterDefaults` with the two changes this build needs (see `_show_exports` and `show_docs_after_run`)."
    import ast
    from nbdev.processors import FilterDefaults, exec_show_docs, _do_eval, _show_docs
    class show_docs_after_run(exec_show_docs):
        """nbdev's `exec_show_docs` for a notebook that has run already: show_doc cells get their output;
        the other cells nbdev runs for them (exports, imports) run without their outputs being replaced, and
        a cell mixing imports with other code runs only its imports (nbdev runs it whole, which fails when
        it uses results of cells nbdev does not run, and warns "Found cells containing imports and other code")."""
        def __call__(self, cell):
            if not self.nb.has_docs_ or not hasattr(self, 'k') or not _do_eval(cell): return
            trees = cell.parsed_()
            if _show_docs(trees): self.k.cell(cell)
            elif cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'}: self.k.run(cell.source)
            else: self.k.run('\n'.join(ast.unparse(t) for t in trees if isinstance(t, (ast.Import, ast.ImportFrom))))
            if (e := self.k.exc): raise BuildError(f"show_doc's run of cell {cell.idx_} failed:\n{cell.source}\n{type(e).__name__}: {e}")
    class DocsFilter(FilterDefaults):
        def base_procs(self):
            return [_show_exports, *(show_docs_after_run if p is exec_show_docs else p for p in super().base_procs())]
    return DocsFilter

def process(src: Path, dst: Path):
    "nbdev's processing of the executed notebook `src` (what nbdev-proc-nbs does before Quarto), written to `dst`."
    import warnings
    from fastcore.nbio import read_nb, write_nb
    nb = read_nb(src)   # sets nb.path_, from which nbdev names the page
    os.environ['IN_TEST'] = '1'   # as nbdev's own processing driver does
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='Found cells containing imports and other code')
            _docs_filter()()(nb)
    except BuildError as e: raise BuildError(f"{src}: {e}") from None
    except Exception as e: raise BuildError(f"{src}: nbdev's processing failed: {type(e).__name__}: {e}") from e
    finally: os.environ.pop('IN_TEST', None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_nb(nb, dst)


# ---------------------------------------------------------------- 3. convert
_re_opt = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
_re_source = re.compile(r'\[source\]\(([^)\s]*)\)(\{[^}]*\})?')
_re_link = re.compile(r'\]\(([^)\s]+)\)')

def cell_options(source: str):
    "The Quarto options (`#| key: value` lines) at the top of a code cell, and the rest of its source."
    opts, lines = {}, source.splitlines()
    while lines and _re_opt.match(lines[0]):
        k, v = _re_opt.match(lines.pop(0)).groups(); opts[k] = v.strip('"\'')
    return opts, '\n'.join(lines)

def _relative(target: str, page: Path) -> str:
    "A link from `page` (path of the page under the site root) to site path `target` (no leading /)."
    return os.path.relpath(target or 'index.html', start=page.parent.as_posix() or '.').replace(os.sep, '/')

def fix_links(md: str, page: Path, src_dir: Path, html_of: dict, anchors: dict) -> str:
    """Markdown `md` of `page` with site-root links (/pruner.html#x, as nbdev writes them) and links to
    notebooks (../05_pruner.ipynb, relative to the notebook's folder `src_dir`) made relative to `page`.
    nbdev also links methods that have no show_doc of their own (/pruner.html#prunereport.to_records):
    those point to their class's entry, or to the page, if `anchors` (page -> show_doc anchors) lacks them.
    show_doc's `[source]` link is dropped while the project has no repository URL (it would be /blob/...)."""
    md = _re_source.sub(lambda m: f'<a class="fa-source" href="{m[1]}">source</a>' if m[1].startswith(('http:', 'https:')) else '', md)
    def link(m):
        url = m[1]
        if url.startswith('//') or re.match(r'^[a-zA-Z][\w+.-]*:', url): return m[0]   # another site, mailto:...
        path, _, frag = url.partition('#')
        if url.startswith('/'):
            target = path.lstrip('/') or 'index.html'
            while frag and Path(target) in anchors and frag not in anchors[Path(target)]: frag = frag.rpartition('.')[0]
        elif path.endswith('.ipynb'):
            nb = (src_dir/path).resolve()
            if nb not in html_of: raise BuildError(f"{page}: link to {path}, which is not one of the notebooks")
            target = html_of[nb].as_posix()
        else: return m[0]
        return f"]({_relative(target, page)}{'#' + frag if frag else ''})"
    return _re_link.sub(link, md)

_re_heading = re.compile(r'^(#{2,6}) (.+)$', re.MULTILINE)
def _anchor(heading: str) -> str: return heading.replace('\\', '').strip('` ').lower()

def show_doc_anchors(nb: dict) -> set:
    "The anchors nbdev gives the show_doc entries of a processed notebook (`Pruner.prune_model` -> pruner.prune_model)."
    return {_anchor(m[2]) for c in nb['cells'] if c['cell_type'] == 'code' and cell_options(_text(c.get('source')))[0].get('output') == 'asis'
            for o in c.get('outputs', []) for m in _re_heading.finditer(_text(o.get('data', {}).get('text/markdown')))}

def _anchored(md: str) -> str:
    """show_doc markdown with nbdev's anchor (`### Pruner.prune_model` -> id pruner.prune_model) before each heading,
    and without its leading rule `---` (docutils refuses a section that begins with one; the anchor draws it)."""
    md = re.sub(r'^\s*---\s*\n', '', md)
    # where the heading's own id (docutils: `Pruner` -> pruner) is nbdev's anchor already, a second one would repeat it
    div = lambda h: '' if _anchor(h) == re.sub(r'[^a-z0-9]+', '-', h.lower()).strip('-') else \
        f'<div id="{_anchor(h)}" class="fa-anchor"></div>\n\n'
    return _re_heading.sub(lambda m: f'{div(m[2])}{m[1]} {m[2]}', md)

def _text(x): return ''.join(x) if isinstance(x, list) else (x or '')

# show_doc's signatures name types as Python prints them: short names readers know instead
_SHORT = [(r'\btyping\.', ''), (r'\btorch\.nn\.modules\.[\w.]*?\.(\w+)\b', r'nn.\1'), (r'\btorch\.fx\.[\w.]*?\.(\w+)\b', r'fx.\1'),
          (r'\btorch\.(Tensor|Size)\b', r'\1'), (r'\bnumpy\.', 'np.'), (r'\bpathlib\.', ''),
          (r'\b(?:fasterai|rich|fastcore)\.[\w.]*\.(\w+)\b', r'\1'), (r'\bOptional\[(.*)\]$', r'\1 | None')]
_re_signature = re.compile(r'```python\ndef (\w+)\((.*?)\)(?:->(.*?))?:\n```\n*(\*.*?\*)?', re.S)
_re_argument = re.compile(r'^\s*(\*{0,2}\w+)(?::([^=]+?))?(?:=(.*?))?,?\s*(?:#\s?(.*))?$')

def short_type(t: str) -> str:
    "A type as a reader writes it: `nn.Module` for torch.nn.modules.module.Module, no annotation for NoneType."
    t = (t or '').strip()
    if t in ('NoneType', 'None'): return ''
    for pattern, repl in _SHORT: t = re.sub(pattern, repl, t)
    return t

def tidy_signature(md: str, heading: str) -> str:
    """show_doc's signature block made readable: short types, `class` for a class, the arguments on one line when
    they fit, and their descriptions (the comments nbdev's docments reads) in a table after the docstring."""
    def tidy(m):
        name, body, ret, doc = m[1], m[2], short_type(m[3]), m[4] or ''
        rows = []
        for line in body.splitlines():
            a = _re_argument.match(line)
            if line.strip() and a: rows.append((a[1], short_type(a[2]), (a[3] or '').strip(), (a[4] or '').strip()))
        params = [f"{n}: {t}" + (f" = {d}" if d else '') if t else n + (f"={d}" if d else '') for n, t, d, _ in rows]
        kind = 'class' if '.' not in heading and name[:1].isupper() else 'def'
        one = f"{kind} {name}({', '.join(params)})" + (f" -> {ret}" if ret else '')
        sig = one if len(one) <= 100 else f"{kind} {name}(\n" + ''.join(f"    {p},\n" for p in params) + ')' + (f" -> {ret}" if ret else '')
        out = f"```python\n{sig}\n```\n\n{doc}"
        described = [r for r in rows if r[3]]
        if described:
            cell = lambda v: v.replace('|', '\\|')
            out += "\n\n| argument | type | default | |\n|---|---|---|---|\n" + ''.join(
                f"| `{n}` | {f'`{cell(t)}`' if t else ''} | {f'`{cell(d)}`' if d else ''} | {cell(c)} |\n"
                for n, t, d, c in described)
        return out
    return _re_signature.sub(tidy, md, count=1)

def imports_only(code: str) -> bool:
    "Is `code` nothing but imports (an exported cell the API page need not show)?"
    import ast
    try: tree = ast.parse(code)
    except SyntaxError: return False
    return bool(tree.body) and all(isinstance(t, (ast.Import, ast.ImportFrom)) for t in tree.body)

def to_myst(nb: dict, page: Path, src_dir: Path, html_of: dict, anchors: dict) -> dict:
    "The processed notebook `nb` made ready for myst-nb (see the module docstring, step 3)."
    import yaml
    cells, fix = [], lambda md: fix_links(md, page, src_dir, html_of, anchors)
    md_cell = lambda src: {'cell_type': 'markdown', 'metadata': {}, 'source': src}
    for c in nb['cells']:
        src = _text(c.get('source'))
        if c['cell_type'] == 'raw' and src.lstrip().startswith('---'):
            fm = yaml.safe_load(src.strip().strip('-')) or {}
            head = f"# {fm.get('title') or page.stem}"
            if fm.get('description'): head += f"\n\n{{.fa-description}}\n{fm['description']}"
            cells.append(md_cell(fix(head)))
        elif c['cell_type'] == 'markdown':
            if src.startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'): continue
            cells.append(md_cell(fix(src)))
        elif c['cell_type'] == 'code':
            opts, code = cell_options(src)
            if opts.get('include') == 'false': continue
            if opts.get('output') == 'asis':   # show_doc: its markdown is part of the page, as Quarto does
                for o in c.get('outputs', []):
                    md = _text(o.get('data', {}).get('text/markdown'))
                    heading = next((h[2] for h in _re_heading.finditer(md)), '')
                    if md: cells.append(md_cell(fix(_anchored(tidy_signature(md, heading.strip('` '))))))
                continue
            tags = list(c.get('metadata', {}).get('tags', []))
            if opts.get('echo') == 'false': tags.append('remove-input')
            if opts.get('output') == 'false': tags.append('remove-output')
            if opts.get('code-summary') == 'Exported source':
                if imports_only(code): continue   # a module's imports are not its API
                tags.append('fa-exported')
            outputs = c.get('outputs', [])
            for o in outputs:
                if 'text/markdown' in o.get('data', {}): o['data']['text/markdown'] = fix(_text(o['data']['text/markdown']))
            if not code.strip() and not outputs: continue
            cells.append({'cell_type': 'code', 'metadata': {'tags': tags} if tags else {}, 'source': code,
                          'outputs': outputs, 'execution_count': c.get('execution_count')})
    return {'cells': cells, 'metadata': {k: v for k, v in nb.get('metadata', {}).items() if k in ('kernelspec', 'language_info')},
            'nbformat': 4, 'nbformat_minor': 5}

def toctree(caption: str, pages: list) -> str:
    entries = '\n'.join(p.with_suffix('').as_posix() for p in pages)
    return f"```{{toctree}}\n:hidden:\n:caption: {caption}\n\n{entries}\n```"


# ---------------------------------------------------------------- 4. render
def render(src: Path, out: Path):
    """Sphinx + myst-nb: the HTML site from the converted notebooks in `src`, into `out`. Sphinx writes into
    build/docs/html/ first, as myst-nb puts its files beside the output folder (build/docs/jupyter_execute/)."""
    from sphinx.cmd.build import build_main
    html = BUILD/'html'
    rc = build_main(['-b', 'html', '-q', '-E', '-j', '1', '-c', str(CONF_DIR), '-d', str(BUILD/'doctrees'), str(src), str(html)])
    if rc: raise BuildError(f"Sphinx failed (exit code {rc}): see the messages above")
    shutil.rmtree(out, ignore_errors=True)   # the previous site stays until a new one is ready
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(html, out)


# ---------------------------------------------------------------- the build
def build(out: Path = None, jobs: int = 1, timeout: int = 600, reuse: bool = False, log=print) -> Path:
    "Build the site into `out` (default: nbdev's doc_path, _docs/) and return the path of its index.html; `reuse`: keep the executed notebooks of the last build."
    import json
    cfg = _cfg(); os.chdir(cfg.config_path)   # nbdev's processing reads the project config from the working directory
    out = Path(out or cfg.doc_path).resolve()
    nbs_path = Path(cfg.nbs_path).resolve()
    srcs = notebooks(cfg)
    if not srcs: raise BuildError(f"no notebooks in {nbs_path}")
    if out.exists() and any(out.iterdir()) and out != Path(cfg.doc_path).resolve() and not (out/'.buildinfo').exists():
        raise BuildError(f"{out} is not empty and holds no site built before: choose another --out")
    rel = {s: s.resolve().relative_to(nbs_path) for s in srcs}
    for d in ('proc', 'src', 'doctrees', 'html', 'jupyter_execute') if reuse else ('',): shutil.rmtree(BUILD/d, ignore_errors=True)
    t_all = time.perf_counter()

    if reuse:
        missing = [str(rel[s]) for s in srcs if not (BUILD/'executed'/rel[s]).is_file()]
        if missing: raise BuildError(f"--reuse-executed: no executed copy of {', '.join(missing)}: build without it once")
        log(f"1/4 execute: skipped (--reuse-executed: the outputs of the last build, in {BUILD/'executed'})")
    else:
        log(f"1/4 execute {len(srcs)} notebooks ({jobs} at a time, cells time out after {timeout}s)")
        _execute_all(srcs, [BUILD/'executed'/rel[s] for s in srcs], jobs, timeout, log)

    log("2/4 process with nbdev (show_doc, hidden cells, front matter, links)")
    for s in srcs: process(BUILD/'executed'/rel[s], BUILD/'proc'/rel[s])

    log("3/4 convert for myst-nb")
    from nbdev.config import nbpath2html
    html_of = {s.resolve(): nbpath2html(rel[s]) for s in srcs}   # the page names nbdev (and Quarto) use
    home = next((s for s in srcs if rel[s] == Path(cfg.readme_nb)), None)
    if home is None or html_of[home.resolve()] != Path('index.html'): raise BuildError(f"the home page needs nbs/{cfg.readme_nb}")
    procd = {s: json.loads((BUILD/'proc'/rel[s]).read_text(encoding='utf-8')) for s in srcs}
    anchors = {html_of[s.resolve()]: show_doc_anchors(nb) for s, nb in procd.items()}
    pages = {html_of[s.resolve()]: to_myst(nb, html_of[s.resolve()], s.resolve().parent, html_of, anchors) for s, nb in procd.items()}
    sections = {}
    for page in pages:
        if page != Path('index.html'): sections.setdefault(page.parent.as_posix(), []).append(page)
    tocs = [toctree(d.replace('_', ' ').capitalize(), ps) for d, ps in sorted(sections.items()) if d != '.']
    if '.' in sections: tocs.append(toctree('API reference', sections['.']))
    pages[Path('index.html')]['cells'].append({'cell_type': 'markdown', 'metadata': {}, 'source': '\n\n'.join(tocs)})
    for f in nbs_path.rglob('*'):   # pictures the notebooks' markdown refers to, at the same relative paths
        r = f.relative_to(nbs_path)
        if f.suffix.lower() in IMAGES and f.is_file() and not any(p[0] in '_.' for p in r.parts):
            (BUILD/'src'/r).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, BUILD/'src'/r)
    for page, nb in pages.items():
        dst = BUILD/'src'/page.with_suffix('.ipynb')
        dst.parent.mkdir(parents=True, exist_ok=True)
        for i, c in enumerate(nb['cells']): c['id'] = f'cell-{i}'
        dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')

    log(f"4/4 render with Sphinx + myst-nb -> {out}")
    render(BUILD/'src', out)
    index = out/'index.html'
    if not index.is_file(): raise BuildError(f"Sphinx wrote no {index}")
    log(f"built {len(pages)} pages in {time.perf_counter() - t_all:.0f}s: {index}")
    return index

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Build the documentation site from nbs/ into _docs/ (see the module docstring).")
    p.add_argument('--jobs', type=int, default=1, help="notebooks executed at a time (default: 1)")
    p.add_argument('--timeout', type=int, default=600, help="seconds one cell may run (default: 600)")
    p.add_argument('--out', type=Path, help="output folder (default: nbdev's doc_path, _docs/)")
    p.add_argument('--reuse-executed', action='store_true', help="do not execute: reuse the executed notebooks of the last build "
                   "(build/docs/executed/; stale if a notebook changed since), to work on the rendering quickly")
    args = p.parse_args(argv)
    try: build(args.out, args.jobs, args.timeout, args.reuse_executed)
    except BuildError as e:
        print(f"\ndocs/build.py FAILED: {e}", file=sys.stderr); return 1
    return 0

if __name__ == '__main__': sys.exit(main())
