"""Hostile YAML (alias bombs, deep nesting, huge integers) is one clean error line in every reader of YAML files.

Each reader runs in a child process under an address-space limit and a timeout: before the bound, nine levels of
nine-fold aliases in a few hundred bytes made the pipeline validator run for minutes and grow memory ninefold per
level, so the child would be killed (or die of ``MemoryError``) instead of answering.
"""

from __future__ import annotations

import itertools
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from training.yamldoc import MAX_DEPTH, MAX_NODES

ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 3 * 2**30
TIMEOUT_SECONDS = 120


def alias_bomb(levels: int = 9) -> str:
    """``a: &a [x, ...x9]``, ``b: &b [*a, ...x9]``, ...: ``9**levels`` values in a few hundred bytes."""
    names = [chr(ord("a") + i) for i in range(levels)]
    lines = [f"{names[0]}: &{names[0]} [{', '.join('x' * 9)}]"]
    lines += [f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]" for prev, name in itertools.pairwise(names)]
    return "\n".join(lines) + "\n"


HOSTILE = {
    "bomb": (alias_bomb(), rf"the document expands to more than {MAX_NODES:,} values"),
    "deep": ("[" * 100_000 + "]" * 100_000 + "\n", "nesting depth"),
    "deep-under-libyaml-limit": ("x: " + "[" * 150 + "]" * 150 + "\n", f"deeper than {MAX_DEPTH} levels"),
    "recursive": ("a: &a [1, *a]\n", "an alias refers to a list or mapping that contains it"),
    "bigint": ("name: x\nn: " + "9" * 5000 + "\n", "the integer has more than 4300 digits"),
}

_READERS = {
    "lite": "from airflow_provider_fasttrack.lite.config import load_config; load_config(sys.argv[1])",
    "recipe": "from pathlib import Path; from training.config import load_config; load_config(Path(sys.argv[1]))",
}
_CHILD = """
import sys
from training.yamldoc import YamlDocumentError
try:
    {call}
except YamlDocumentError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
"""


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AIRFLOW__CORE__UNIT_TEST_MODE": "False"}
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=TIMEOUT_SECONDS,
        preexec_fn=_limited,
    )


def _assert_one_clean_line(result: subprocess.CompletedProcess[str], path: Path, fragment: str) -> None:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: ", lines[0]), lines[0]
    assert re.search(fragment, lines[0]), lines[0]


def test_the_bomb_is_small() -> None:
    assert len(alias_bomb().encode()) < 600


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_fasttrack_validate_refuses_hostile_yaml(case: str, tmp_path: Path) -> None:
    text, fragment = HOSTILE[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    result = _run([sys.executable, "-m", "airflow_provider_fasttrack.cli", "validate", str(path)])
    _assert_one_clean_line(result, path, fragment)


@pytest.mark.parametrize("reader", sorted(_READERS))
@pytest.mark.parametrize("case", ["bomb", "deep", "bigint"])
def test_lite_config_and_recipes_refuse_hostile_yaml(reader: str, case: str, tmp_path: Path) -> None:
    text, fragment = HOSTILE[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    result = _run([sys.executable, "-c", _CHILD.format(call=_READERS[reader]), str(path)])
    _assert_one_clean_line(result, path, fragment)


def test_a_set_override_value_goes_through_the_same_bounds() -> None:
    from training.config import load_config, preset_path
    from training.exceptions import ConfigError

    nested = "[" * 150 + "]" * 150
    with pytest.raises(ConfigError) as caught:
        load_config(preset_path("smollm2-135m-cpu"), [f"sft.x={nested}"])
    assert str(caught.value).startswith(f"--set sft.x={nested}:1:")
    assert f"deeper than {MAX_DEPTH} levels" in str(caught.value)


def test_a_list_met_again_under_more_levels_counts_them() -> None:
    """An alias's levels count where it is used: a list of 60 levels, used again under 60 more, is too deep."""
    from training.yamldoc import YamlDocumentError, parse_yaml

    inner = "[" * 60 + "]" * 60
    fits = f"a: &a {inner}\nb: {'[' * 39}*a{']' * 39}\n"
    assert parse_yaml(fits, "fits.yaml").data["b"] is not None
    deeper = f"a: &a {inner}\nb: {'[' * 60}*a{']' * 60}\n"
    with pytest.raises(YamlDocumentError, match=rf"^deeper.yaml:\d+:\d+: .*deeper than {MAX_DEPTH} levels"):
        parse_yaml(deeper, "deeper.yaml")
