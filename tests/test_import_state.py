"""A library import changes nothing process-wide; the CLI alone configures its process (tartarus.quiet).

``import tartarus`` and its modules must leave a notebook user's environment variables, logging,
warnings filters, import hooks, numpy/Keras/matplotlib settings and random state as they were.
Third-party packages (TensorFlow, Keras ...) change some of that on their own import, so the check
imports them first, snapshots, then imports every tartarus module and snapshots again: what differs
is tartarus's doing. Each check runs in a fresh process, since an import happens once per process.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "tartarus"

# the process-wide state a library could change on import, as JSON-able values
SNAPSHOT = r'''
import json, locale, logging, os, random, signal, sys, warnings

def snapshot():
    state = {"environ": dict(os.environ), "cwd": os.getcwd(), "locale": locale.setlocale(locale.LC_ALL),
             "recursion_limit": sys.getrecursionlimit(),
             "meta_path": [type(f).__qualname__ for f in sys.meta_path],
             "path_hooks": [repr(h) for h in sys.path_hooks],
             "hooks": [repr(sys.excepthook), repr(sys.displayhook), repr(sys.stdout), repr(sys.stderr)],
             "signals": {s: repr(signal.getsignal(getattr(signal, s))) for s in ("SIGINT", "SIGTERM")},
             "random": repr(random.getstate()),
             "warnings": [(a, getattr(m, "pattern", m), c.__name__, getattr(mod, "pattern", mod), n)
                          for a, m, c, mod, n in warnings.filters],
             "logging_disable": logging.root.manager.disable}
    loggers = {"": logging.root, **{name: lg for name, lg in logging.root.manager.loggerDict.items()
                                    if isinstance(lg, logging.Logger)}}
    state["loggers"] = {name: [lg.level, lg.propagate, lg.disabled, [type(h).__name__ for h in lg.handlers]]
                        for name, lg in loggers.items()}
    if "numpy" in sys.modules:
        import numpy as np
        state["numpy"] = [repr(sorted(np.get_printoptions().items())), np.geterr(),
                          repr(np.random.get_state()[1][:8]), int(np.random.get_state()[2])]
    if "keras" in sys.modules:
        import keras
        state["keras"] = [keras.config.backend(), keras.config.floatx(), keras.config.epsilon(),
                          keras.config.image_data_format(), keras.config.dtype_policy().name,
                          keras.config.is_traceback_filtering_enabled()]
    if "matplotlib" in sys.modules:
        import matplotlib
        state["matplotlib"] = {k: repr(dict.__getitem__(matplotlib.rcParams, k)) for k in matplotlib.rcParams}
    if "tensorflow" in sys.modules:
        import tensorflow as tf
        state["tensorflow"] = [tf.config.functions_run_eagerly()]
    return state

def tartarus_modules():
    import importlib, pkgutil, tartarus
    names = ["tartarus"] + sorted(m.name for m in pkgutil.walk_packages(tartarus.__path__, "tartarus."))
    for name in names:
        importlib.import_module(name)
    return names
'''

# which packages outside the standard library importing tartarus pulls in
DISCOVER = SNAPSHOT + r'''
before = set(sys.modules)
tartarus_modules()
import importlib.util
tops = {m.split(".")[0] for m in set(sys.modules) - before}

def importable(name):  # not the generated names that some packages put in sys.modules
    try:
        return name.isidentifier() and importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False

print(json.dumps(sorted(t for t in tops if t != "tartarus" and not t.startswith("_") and importable(t))))
'''

# import those first, then every tartarus module: the difference is tartarus's
COMPARE = SNAPSHOT + r'''
import importlib
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except ImportError:  # a private name in sys.modules, not importable by itself: its package was
        pass
before = snapshot()
names = tartarus_modules()
print(json.dumps({"before": before, "after": snapshot(), "modules": names}))
'''


def _python(script, *args, drop=("TF_CPP_MIN_LOG_LEVEL", "TARTARUS_VERBOSE")):
    """Run ``script`` in a fresh interpreter (no pytest, no conftest); its last stdout line as JSON.

    ``drop``: environment variables left out, so that a library setting one of them would show."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = str(REPO / "src")
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _differences(before, after):
    """``key: before -> after`` for every differing part of two snapshots; loggers that the import
    created are fine when they are plain (level NOTSET, propagating, no handlers)."""
    diffs = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        if key == "loggers":
            for name in sorted(set(b) | set(a)):
                if name not in b and a[name] == [0, True, False, []]:
                    continue  # logging.getLogger(__name__): a new logger that configures nothing
                if b.get(name) != a.get(name):
                    diffs.append(f"logger {name!r}: {b.get(name)} -> {a.get(name)}")
        elif key in ("environ", "matplotlib"):
            for name in sorted(set(b or {}) | set(a or {})):
                if (b or {}).get(name) != (a or {}).get(name):
                    diffs.append(f"{key}[{name!r}]: {(b or {}).get(name)!r} -> {(a or {}).get(name)!r}")
        elif b != a:
            diffs.append(f"{key}: {b!r} -> {a!r}")
    return diffs


def test_importing_tartarus_changes_no_process_state():
    third_party = _python(DISCOVER)
    assert "keras" in third_party and "numpy" in third_party  # the check covers the heavy imports
    result = _python(COMPARE, json.dumps(third_party))
    assert {"tartarus", "tartarus.cli", "tartarus.quiet", "tartarus.train", "tartarus.models"} <= set(result["modules"])
    assert _differences(result["before"], result["after"]) == []



def test_import_tartarus_before_keras_leaves_only_the_layer_registration():
    # `import tartarus` with Keras not loaded yet: the one thing it leaves is tartarus.keras_objects'
    # finder, which registers the custom layers when Keras is imported and then removes itself
    script = SNAPSHOT + r'''
before = snapshot()
import tartarus
with_tartarus = snapshot()
loaded = "keras" in sys.modules or "tensorflow" in sys.modules
import keras
registered = keras.saving.get_registered_object("tartarus>Standardize") is not None
keras_loaded = snapshot()
print(json.dumps({"before": before, "tartarus": with_tartarus, "loaded": loaded, "registered": registered,
                  "meta_path": keras_loaded["meta_path"]}))
'''
    result = _python(script)
    assert not result["loaded"]  # import tartarus alone loads no Keras, no TensorFlow
    assert result["registered"]
    added = [f for f in result["tartarus"]["meta_path"] if f not in result["before"]["meta_path"]]
    assert added in ([], ["_AfterKeras"])
    assert _differences({**result["before"], "meta_path": None}, {**result["tartarus"], "meta_path": None}) == []
    assert "_AfterKeras" not in result["meta_path"]  # gone once Keras is loaded (Keras adds finders of its own)

def test_the_comparison_sees_a_change():
    # the check above passes only if it can fail: an environment variable, a logger's level and a
    # warnings filter set "on import" all show
    before = {"environ": {"A": "1"}, "loggers": {"": [30, True, False, []]}, "warnings": [["default"]]}
    after = {"environ": {"A": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
             "loggers": {"": [30, True, False, []], "tensorflow": [40, True, False, []],
                         "tartarus.x": [0, True, False, []]},
             "warnings": [["ignore"], ["default"]]}
    assert _differences(before, after) == ["environ['TF_CPP_MIN_LOG_LEVEL']: None -> '2'",
                                           "logger 'tensorflow': None -> [40, True, False, []]",
                                           "warnings: [['default']] -> [['ignore'], ['default']]"]


def test_cli_main_undoes_its_settings(tmp_path):
    # main() quiets TensorFlow for its command (an environment variable, an import hook, the tensorflow
    # logger at ERROR) and, called within a longer-lived process, hands the process back as it was
    script = SNAPSHOT + r'''
import logging
from tartarus.cli import main
from tartarus.quiet import configure_cli
tf_logger = logging.getLogger("tensorflow")
before = snapshot()
undo = configure_cli()
during = [os.environ.get("TF_CPP_MIN_LOG_LEVEL"), [type(f).__name__ for f in sys.meta_path], tf_logger.level]
undo()
after_undo = snapshot()
code = main(["list", "--experiments", sys.argv[1]])
after = snapshot()
keep = ("environ", "meta_path", "loggers", "warnings")
print(json.dumps({"during": during, "code": code, "before": {k: before[k] for k in keep},
                  "after_undo": {k: after_undo[k] for k in keep},
                  "after": {k: after[k] for k in keep}, "tf_loaded": "tensorflow" in sys.modules}))
'''
    result = _python(script, str(REPO / "experiments"))
    level, hooks, tf_level = result["during"]
    assert level == "2" and "_QuietTensorFlow" in hooks and tf_level == 40  # logging.ERROR
    assert _differences(result["before"], result["after_undo"]) == []
    assert result["code"] == 0
    if not result["tf_loaded"]:  # `list` loaded no TensorFlow: nothing of it to tell apart
        assert _differences(result["before"], result["after"]) == []
    else:  # TensorFlow's own import adds loggers and filters; ours are gone
        after = result["after"]
        assert after["environ"] == result["before"]["environ"] and "_QuietTensorFlow" not in after["meta_path"]
        assert after["loggers"].get("tensorflow", [0])[0] != 40


# ------------------------------------------------------------------------------ call time too
def _dotted(node):
    """``a.b.c`` for a Name/Attribute chain, calls in it passed over (``a.b(x).c`` is ``a.b.c``), else None."""
    parts = []
    while isinstance(node, (ast.Attribute, ast.Call)):
        if isinstance(node, ast.Call):
            node = node.func
            continue
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


# calls that change the process for everyone after them; a library function must not make them
PROCESS_WIDE = {"matplotlib.use", "logging.basicConfig", "os.putenv", "os.unsetenv", "os.environ.setdefault",
                "os.environ.update", "os.environ.pop", "os.environ.clear", "np.set_printoptions",
                "numpy.set_printoptions", "np.seterr", "numpy.seterr", "keras.config.set_floatx",
                "keras.config.set_epsilon", "keras.config.set_image_data_format", "keras.config.set_dtype_policy",
                "keras.config.set_backend", "keras.config.disable_traceback_filtering",
                "tf.config.run_functions_eagerly", "tf.get_logger", "locale.setlocale", "signal.signal"}
WARNING_FILTERS = {"warnings.filterwarnings", "warnings.simplefilter"}


def process_wide_calls(source, filename="<src>"):
    """``line: what`` for each statement of ``source`` that sets process-wide state: a call in
    :data:`PROCESS_WIDE`, any ``.setLevel(...)``/``.addHandler(...)``, an assignment to or deletion of
    ``os.environ[...]``, and a warnings filter outside a ``with warnings.catch_warnings()`` block."""
    tree = ast.parse(source, filename)
    guarded = set()  # the nodes inside catch_warnings blocks
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call) and _dotted(item.context_expr.func) == "warnings.catch_warnings"
                for item in node.items):
            guarded.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func) or ""
            if (name in PROCESS_WIDE or name.endswith((".setLevel", ".addHandler"))
                    or (name in WARNING_FILTERS and id(node) not in guarded)):
                found.append(f"{node.lineno}: {name}()")
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else \
            [node.target] if isinstance(node, ast.AugAssign) else []
        for target in targets:
            if isinstance(target, ast.Subscript) and _dotted(target.value) == "os.environ":
                found.append(f"{node.lineno}: os.environ[...] {'del' if isinstance(node, ast.Delete) else '='}")
    return sorted(found, key=lambda line: int(line.split(":")[0]))


def test_process_wide_calls_are_found():
    source = """
import os, warnings, logging, matplotlib
matplotlib.use("Agg")
os.environ["X"] = "1"
del os.environ["X"]
logging.getLogger("tensorflow").setLevel(logging.ERROR)
warnings.simplefilter("ignore")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # scoped: fine
x = os.environ.get("X")  # reading: fine
"""
    assert process_wide_calls(source) == ["3: matplotlib.use()", "4: os.environ[...] =", "5: os.environ[...] del",
                                          "6: logging.getLogger.setLevel()", "7: warnings.simplefilter()"]


def test_only_the_cli_configures_the_process():
    # tartarus.quiet is the CLI's (configure_cli); everything else is library code, which may run in a
    # notebook: no backend switched, no logger or warnings filter set, no environment variable written
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "quiet.py":
            continue
        calls = process_wide_calls(path.read_text(encoding="utf-8"), str(path))
        if calls:
            found[str(path.relative_to(REPO))] = calls
    assert found == {}


def test_quiet_is_not_imported_for_its_effects():
    # quiet.py only defines: importing it (as the CLI does) installs nothing until configure_cli()
    tree = ast.parse((SRC / "quiet.py").read_text(encoding="utf-8"))
    top_level_calls = [n.lineno for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
    assert top_level_calls == []
