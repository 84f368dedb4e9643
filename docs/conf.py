"""Sphinx configuration of the documentation site. Read by Sphinx when docs/build.py renders the
notebooks it has executed, processed with nbdev and converted (build/docs/src/); the pages come
from nbs/, never from this folder. Build the site with `python docs/build.py`, not sphinx-build."""
import fasterai

project = 'fasterai'
author = 'fasterai developers'
copyright = author
release = version = fasterai.__version__
html_title = f'{project} {release}'

extensions = ['myst_nb']
nb_execution_mode = 'off'          # docs/build.py executed every notebook already (and fails the build on errors)
nb_merge_streams = True            # one block per cell for interleaved stdout/stderr
myst_enable_extensions = ['attrs_block']   # {.fa-description} on the page's description
myst_all_links_external = True     # docs/build.py made every link a relative URL of the site: keep them as they are
highlight_language = 'none'       # a fence without a language (a command's output) is text, not Python
suppress_warnings = ['myst.header']   # show_doc headings (###) may follow the page title (#) directly

html_theme = 'furo'
html_static_path = ['_static']
html_css_files = ['fasterai.css']
html_copy_source = False           # no notebook copies under _sources/
html_show_sourcelink = False
html_theme_options = {'navigation_with_keys': True}
html_short_title = project
