"""The hierarchy drawn in each exceptions module's docstring is exactly its classes and their real bases."""

from __future__ import annotations

import inspect
import re
from types import ModuleType

import pytest

import airflow_provider_fasttrack.exceptions as provider_exceptions
import training.exceptions as training_exceptions

_ENTRY = re.compile(r"^(?P<indent>(?:│   |    )*)(?:├── |└── )?(?P<name>\w+)(?:\((?P<base>\w+)\))?(?:\s|$)")


def drawn_tree(module: ModuleType) -> dict[str, str]:
    """``{class name: base name}`` as the docstring's ``Hierarchy::`` block draws it."""
    doc = module.__doc__ or ""
    block = doc.split("::\n", 1)[1]
    lines = [line[4:] for line in block.splitlines()[1:] if line.startswith("    ")]
    bases: dict[str, str] = {}
    parents: list[str] = []
    for line in lines:
        match = _ENTRY.match(line)
        assert match, f"not a tree line: {line!r}"
        depth = len(match["indent"]) // 4 + (1 if line[len(match["indent"]) :].startswith(("├", "└")) else 0)
        name = match["name"]
        if depth == 0:
            assert match["base"], f"a root names its base: {line!r}"
            bases[name] = match["base"]
        else:
            assert not match["base"], f"only roots name their base: {line!r}"
            bases[name] = parents[depth - 1]
        parents[depth:] = [name]
    return bases


def real_tree(module: ModuleType) -> dict[str, str]:
    return {
        name: cls.__bases__[0].__name__
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == module.__name__
    }


@pytest.mark.parametrize("module", [provider_exceptions, training_exceptions], ids=lambda m: m.__name__)
def test_docstring_tree_matches_the_classes(module: ModuleType) -> None:
    assert drawn_tree(module) == real_tree(module)
    assert set(module.__all__) >= set(real_tree(module))


def test_the_parser_sees_a_wrong_drawing() -> None:
    wrong = ModuleType("wrong", "Errors.\n\nHierarchy::\n\n    A(Exception)\n    B(Exception)\n")
    exec("class A(Exception): pass\nclass B(A): pass", wrong.__dict__)
    for cls in (wrong.A, wrong.B):
        cls.__module__ = "wrong"
    assert drawn_tree(wrong) != real_tree(wrong)
