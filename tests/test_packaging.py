"""The built wheel is complete: every module of the checkout is in it, it installs into a fresh venv, every
module imports from there (not from the checkout), package data ships, and `pairstream --help` runs."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from support.processes import ROOT

PACKAGES = ("streams", "schemas")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with only the wheel installed; dependencies are borrowed from this venv's site-packages
    through a .pth line (added to sys.path as a plain directory, so this venv's editable hook is not loaded)."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a clean copy: an in-tree build/ directory would keep modules a broken config leaves out.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "data", "*.egg-info", "__pycache__", ".pytest_cache", "tests"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp / "dist").glob("pairstream-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def checkout_modules() -> set[str]:
    modules = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


IMPORT_ALL = """
import importlib, pkgutil, sys
names = []
for top in sys.argv[1:]:
    package = importlib.import_module(top)
    names.append(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        importlib.import_module(info.name)
        names.append(info.name)
print(importlib.import_module("streams").__file__)
print("\\n".join(sorted(names)))
"""


def test_every_module_is_in_the_wheel_and_imports_from_it(installed, tmp_path):
    python = installed / "bin" / "python"
    out = subprocess.run([str(python), "-c", IMPORT_ALL, *PACKAGES], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    location, *names = out.stdout.split()
    assert location.startswith(str(installed)), f"imported from {location}, not the wheel"
    assert set(names) == checkout_modules()


def test_package_data_ships(installed, tmp_path):
    python = installed / "bin" / "python"
    code = ("import pathlib, streams.local.demo as d, schemas.export as e, streams.quality.local_minilm as m; "
            "print(d.SAMPLE.is_file(), all(e.schema_path(n).is_file() for n in ('anchor', 'triplet', 'dead_letter')),"
            " m.TOKENIZER.is_file() and str(m.TOKENIZER).startswith(sys.argv[1]))")
    out = subprocess.run([str(python), "-c", "import sys; " + code, str(installed)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "True", "True"], out.stderr[-2000:]


def test_the_installed_command_runs(installed, tmp_path):
    from streams import __version__

    command = installed / "bin" / "pairstream"
    help_ = subprocess.run([str(command), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0, help_.stderr
    for name in ("worker", "publish", "consume", "broker", "demo", "bench"):
        assert f"  {name} " in help_.stdout
    version = subprocess.run([str(command), "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == f"pairstream, version {__version__}"
    bench = subprocess.run([str(command), "bench", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bench.returncode == 0 and "--latency-ms" in bench.stdout
