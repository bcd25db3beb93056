"""Importing lit_gan sets no process-wide warnings filter: a warning that should not be shown is silenced around the
call that emits it (`warnings.catch_warnings`), never for the whole process at import time."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Records each warnings filter that lit_gan code adds to the process-wide list (inside `catch_warnings` the list is a
# copy), while every lit_gan module is imported. Third-party packages add filters of their own on import: ignored.
SCRIPT = """
import importlib, json, pkgutil, sys, warnings

process_filters = warnings.filters
set_by = []

def recording(add):
    def add_and_record(*args, **kwargs):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.split(".")[0] == "lit_gan" and warnings.filters is process_filters:
            set_by.append([caller, repr(args)])
        return add(*args, **kwargs)
    return add_and_record

warnings.filterwarnings = recording(warnings.filterwarnings)
warnings.simplefilter = recording(warnings.simplefilter)
import lit_gan
names = [m.name for m in pkgutil.walk_packages(lit_gan.__path__, "lit_gan.") if m.name != "lit_gan.__main__"]
for name in names:
    importlib.import_module(name)
print(json.dumps({"file": lit_gan.__file__, "modules": names, "set_by": set_by}))
"""


def test_no_module_sets_a_warnings_filter_at_import():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, check=True)
    imported = json.loads(result.stdout.splitlines()[-1])
    assert Path(imported["file"]).is_relative_to(REPO)  # this checkout's lit_gan, not an installed one
    assert {"lit_gan.data.datamodule", "lit_gan.cli", "lit_gan.models.base"} <= set(imported["modules"])
    assert imported["set_by"] == []
