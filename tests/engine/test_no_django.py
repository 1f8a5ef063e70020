"""The engine is plain Python and NumPy: importing every part of it loads no Django and no other
part of the app."""

from tests.engine.support import run_python

PROBE = """
import importlib, pkgutil, sys
import margin.engine
names = [m.name for m in pkgutil.walk_packages(margin.engine.__path__, "margin.engine.")
         if m.name != "margin.engine.__main__"]
for name in names:
    importlib.import_module(name)
assert len(names) >= 10, names
loaded = sorted(
    m for m in sys.modules
    if m == "django" or m.startswith(("django.", "accounts", "exchange_site"))
    or (m.startswith("margin.") and not m.startswith("margin.engine"))
)
print("django or app modules:", loaded)
sys.exit(1 if loaded else 0)
"""


def test_engine_imports_no_django():
    run = run_python("-c", PROBE)
    assert run.returncode == 0, run.stdout + run.stderr
