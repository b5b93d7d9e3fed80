"""`pip install .` (not only -e) carries every file the app reads at run time."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_FILES = ("saas/templates", "saas/static", "saas/translations", "migrations")


def test_the_wheel_contains_templates_translations_and_migrations(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True)
    (wheel,) = tmp_path.glob("dealdocs-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(p.relative_to(ROOT)) for folder in RUNTIME_FILES for p in (ROOT / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pot"}
    assert expected and expected <= packaged, sorted(expected - packaged)
    assert "wsgi.py" in packaged
