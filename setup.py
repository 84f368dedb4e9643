# setup.py -- setuptools executes this at every build and install (pip install ., pip install -e .,
# python -m build). Its one job: supply `optional-dependencies`, which pyproject.toml declares
# dynamic. The test stack's pins (torch, torchvision, nbdev, timm, transformers) come from settings.ini, so they live in
# one file that .ci/run also reads; the `bench` extra's torch-pruning pin is written here, as it is
# only for benchmarks/ and CI neither installs nor checks it; so are the pins of the `docs` extra
# (the site generator of docs/build.py), which `dev` includes and .ci/run installs but does not
# compare with settings.ini. Everything else (name, version, dependencies, console script,
# packages, nbdev config) is static in pyproject.toml; do not add metadata here.
from configparser import ConfigParser
from pathlib import Path

from setuptools import setup

_ini_path = Path(__file__).resolve().with_name("settings.ini")
_ini = ConfigParser()
if not _ini.read(_ini_path): raise FileNotFoundError(f"{_ini_path} is missing: it holds the pinned test stack")
_pins = _ini["test_stack"]

setup(
    extras_require={
        # torchvision supplies the CLI's default model; pinned with the torch it is built for.
        "vision": [f"torch=={_pins['torch']}", f"torchvision=={_pins['torchvision']}"],
        # What .ci/run needs: the vision stack, nbdev (export/test; it brings execnb), pytest (with
        # pytest-xdist: .ci/run spreads the tests over two workers),
        # hypothesis for the property-based tests in tests/test_reliability.py, the docs stack (the
        # tutorials draw with matplotlib; tests/test_docs_site.py builds the site) and selenium,
        # which drives Debian's chromium + chromium-driver in that test (.ci/run apt-installs them),
        # and the export stack, so tests/test_deploy.py checks ONNX files with onnxruntime.
        # timm and transformers give the test zoos (random weights, nothing downloaded); never the core's.
        "dev": ["fasterai[vision,docs,export]", f"nbdev=={_pins['nbdev']}", "pytest", "pytest-xdist", "hypothesis",
                "selenium==4.51.0",
                f"timm=={_pins['timm']}", f"transformers=={_pins['transformers']}"],
        # PruneReport.plot and the command line's --plot: the widths before and after, drawn.
        "plot": ["matplotlib"],
        # fasterai.sparse.deploy.export_model to .onnx (torch's dynamo exporter) and its check with onnxruntime.
        "export": ["onnx", "onnxscript", "onnxruntime"],
        # `python docs/build.py`: the site from nbs/ into _docs/. nbdev's execnb executes the
        # notebooks (as nbdev-test does), matplotlib and networkx draw the tutorials' figures, Sphinx + myst-nb render
        # the HTML with the furo theme. The renderer is pinned to releases that support Python 3.10
        # (Sphinx 9 and myst-parser 5 need 3.11); nbdev comes with it for its notebook processing.
        # The tutorial on timm and Hugging Face models runs with the same pins as the tests.
        "docs": ["fasterai[vision]", f"nbdev=={_pins['nbdev']}", "sphinx==8.1.3", "myst-parser==4.0.1", "myst-nb==1.4.0",
                 "furo==2025.12.19", "matplotlib", "networkx", "pyyaml",
                 f"timm=={_pins['timm']}", f"transformers=={_pins['transformers']}"],
        # benchmarks/compare_torch_pruning.py (not run in CI): the vision stack, the exact
        # Torch-Pruning release it compares against, and timm for its --zoo timm.
        "bench": ["fasterai[vision]", "torch-pruning==1.6.1", f"timm=={_pins['timm']}"],
    },
)
