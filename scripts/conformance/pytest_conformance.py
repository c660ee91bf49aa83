"""pytest plugin for running llama.cpp's server tests against Grove (run.mjs loads it with -p).

Two changes to the suite's session, nothing else:

- ``ServerPreset.load_all`` becomes a no-op. The suite's conftest calls it once per session to
  download every preset's model by starting each server online; here nothing is downloaded (the
  shim serves generated models), and a preset that cannot start would fail the whole file.
- Where the ``openai`` package is missing, a stand-in module is installed so the test files that
  import it still load: a test that touches it is skipped with OPENAI_SKIP_REASON, which the
  runner counts apart from the server's failures.
"""

import importlib.util
import sys
import types

import pytest

OPENAI_SKIP_REASON = "conformance: the openai Python package is not installed"


class _OpenAIStandIn(Exception):
    """Any name imported from the stand-in ``openai``: using it skips the test."""

    def __init__(self, *args, **kwargs):
        pytest.skip(OPENAI_SKIP_REASON)


def _openai_stand_in():
    module = types.ModuleType("openai")

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (_OpenAIStandIn,), {})

    module.__getattr__ = __getattr__
    return module


def pytest_configure(config):
    if importlib.util.find_spec("openai") is None:
        sys.modules["openai"] = _openai_stand_in()
    if str(config.rootpath) not in sys.path:
        sys.path.insert(0, str(config.rootpath))
    import utils  # the suite's utils.py, beside its pytest.ini


    utils.ServerPreset.load_all = staticmethod(lambda: None)
