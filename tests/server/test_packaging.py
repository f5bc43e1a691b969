"""Test what ships: the wheel holds quantdesk/<folder>/..., no top-level server or tools, and it imports."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    (found,) = out.glob("quantdesk-*.whl")
    return found


def test_the_wheel_holds_the_quantdesk_namespace_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops <= {"quantdesk", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for required in ("quantdesk/server/app.py", "quantdesk/server/py.typed", "quantdesk/tools/market/tools.py",
                     "quantdesk/server/rest_derive.py", "quantdesk/schemas/manifest.py",
                     "quantdesk/schemas/simulation_manifest.schema.json", "quantdesk/well_known/mcp.json",
                     "quantdesk/well_known/mcp-config.json"):
        assert required in names, required
    assert not any(n.startswith(("server/", "tools/", "schemas/", "compat_http/", "tests/")) for n in names)
    assert "quantdesk/__init__.py" not in names, "quantdesk is an implicit namespace"
    assert not any(n.endswith("conftest.py") for n in names)


def test_every_source_package_is_in_the_wheel(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in REPO.glob("*/**/__init__.py"):
        rel = init.relative_to(REPO)
        if rel.parts[0] in ("tests", "bench", "build", ".venv", ".typecheck", ".conformance"):
            continue
        top = {".well-known": "well_known"}.get(rel.parts[0], rel.parts[0])
        assert "/".join(("quantdesk", top, *rel.parts[1:])) in names, f"{rel} is missing from the wheel"


def test_the_installed_wheel_imports_and_runs_outside_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    deps = sysconfig.get_paths()["purelib"]
    # site-packages on PYTHONPATH (not a site dir) skips its .pth files, so the editable finder stays out.
    env = {"PYTHONPATH": f"{target}{os.pathsep}{deps}", "PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    code = ("import quantdesk.server.app as a, quantdesk.tools, quantdesk.well_known as w, importlib.resources as r;"
            "print(a.__file__); print(r.files(w).joinpath('mcp.json').is_file())")
    result = subprocess.run([str(env_dir / "bin" / "python"), "-c", code], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    path, has_card = result.stdout.split()
    assert path.startswith(str(target)) and has_card == "True"
