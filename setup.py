# setup.py -- setuptools executes this at every build and install (pip install ., pip install -e .,
# python -m build). Its one job: supply `optional-dependencies`, which pyproject.toml declares
# dynamic, from the pinned test stack in settings.ini, so the pins live in one file that .ci/run
# also reads. Everything else (name, version, dependencies, console script, packages, nbdev
# config) is static in pyproject.toml; do not add metadata here.
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
        # What .ci/run needs: the vision stack, nbdev (export/test; it brings execnb), pytest.
        "dev": ["fasterai[vision]", f"nbdev=={_pins['nbdev']}", "pytest"],
    },
)
