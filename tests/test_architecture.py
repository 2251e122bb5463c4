"""The layers of docs/architecture.md, checked on the imports of every module."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ctapipe_sst1m"

#: units of the package, lowest layer first (docs/architecture.md); a unit is a
#: top-level module or a subpackage of ctapipe_sst1m
LAYERS = (
    (
        "version",
        "_version",
        "instrument",
        "time",
        "coordinates",
        "earth_orientation",
        "event_index",
        "statistics",
        "voltage_drop",
    ),
    ("io",),
    (
        "calibration",
        "image",
        "stereo",
        "reco",
        "simulation",
        "performance",
        "irf",
        "dl3",
        "analysis",
    ),
    ("event_source", "testing", "plotting"),
    ("night",),
    ("tools",),
)
LAYER_OF = {unit: n for n, units in enumerate(LAYERS) for unit in units}
#: units that may import each other within their layer (the core is one unit)
SHARED_LAYER = {0}
#: tool modules that are helpers of the tools, not tools
TOOL_HELPERS = {"summary", "failures"}
#: the longest module, in lines, without a reason at its top
MAX_LINES = 500


def modules():
    """Every module of the package but its face (``__init__.py`` of the package)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent == PACKAGE and path.name == "__init__.py":
            continue
        if path.parent.name != "resources":
            yield path


def dotted(path):
    """``ctapipe_sst1m``-relative dotted name of a module path."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return parts


def imported_modules(path):
    """The ctapipe_sst1m modules a module imports (anywhere in it), as part lists."""
    tree = ast.parse(path.read_text())
    own = dotted(path)
    package = own if path.name == "__init__.py" else own[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "ctapipe_sst1m":
                target = node.module.split(".")[1:]
            else:
                continue
            if target:
                yield target
            else:  # from . import name: names are modules of the package
                yield from ([*package, alias.name] for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ctapipe_sst1m":
                    yield alias.name.split(".")[1:]


@pytest.mark.parametrize("path", list(modules()), ids=lambda p: "/".join(dotted(p)))
def test_no_import_from_a_higher_layer(path):
    unit = dotted(path)[0]
    assert unit in LAYER_OF, f"{unit} is in no layer of docs/architecture.md"
    layer = LAYER_OF[unit]
    for target in imported_modules(path):
        if not target or target[0] == unit:
            continue
        assert target[0] in LAYER_OF, f"{'.'.join(target)} is in no layer"
        other = LAYER_OF[target[0]]
        allowed = other < layer or (other == layer and layer in SHARED_LAYER)
        assert allowed, (
            f"{'.'.join(dotted(path))} (layer {layer}) imports {'.'.join(target)} (layer {other})"
        )


def test_tools_import_no_other_tool():
    for path in (PACKAGE / "tools").glob("*.py"):
        for target in imported_modules(path):
            if target[0] == "tools" and len(target) > 1:
                assert target[1] in TOOL_HELPERS, (
                    f"tools/{path.name} imports the tool {target[1]}"
                )


def test_modules_are_short_or_say_why():
    for path in modules():
        text = path.read_text()
        if text.count("\n") > MAX_LINES:
            head = ast.get_docstring(ast.parse(text)) or ""
            assert "long because" in head.lower(), (
                f"{path.relative_to(PACKAGE)} has over {MAX_LINES} lines and no reason"
            )


def test_no_backend_switching_at_import():
    for path in modules():
        assert "matplotlib.use(" not in path.read_text(), path.relative_to(PACKAGE)
