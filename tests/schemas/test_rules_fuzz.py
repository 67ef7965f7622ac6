"""The loader turns any input into a rule set or a list of located errors, never an exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_fixture import BASE_FILES

from tradectl.schemas.loader import RuleError, load_rule_set

YAML_TOKENS = [
    *"abcxyzAPL019 :-_.,[]{}&*!|>'\"#%@`?~\t\n\u00e9\x00",
    "\n  ",
    ": ",
    "- ",
    "version: 1\n",
    "account: ",
    "risk:\n  ",
    "brackets:\n  x:\n    ",
    "&a ",
    "*a",
    "<<: ",
    "---\n",
    "!!int ",
    "!!python/object ",
    "? ",
    "1e3",
    "true",
    "null",
    "ON",
    "0x1F",
    ".inf",
]
YAMLISH = st.lists(st.sampled_from(YAML_TOKENS), max_size=80).map("".join)
VALID_LINES = [line for text in BASE_FILES.values() for line in text.splitlines()]


def _load(files: dict[str, str | bytes]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        for name, content in files.items():
            if isinstance(content, bytes):
                (root / name).write_bytes(content)
            else:
                (root / name).write_text(content, encoding="utf-8", errors="surrogatepass")
        result = load_rule_set([root])
    assert (result.rule_set is None) == bool(result.errors)
    for error in result.errors:
        assert isinstance(error, RuleError)
        assert error.line >= 1 and error.column >= 1
        assert str(error).startswith(f"{error.file}:{error.line}:{error.column}: ")


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(text=YAMLISH)
def test_random_yamlish_text(text: str) -> None:
    _load({**BASE_FILES, "fuzz.yaml": text})


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _load({**BASE_FILES, "fuzz.yaml": data})


@st.composite
def mutated_rule_set(draw: st.DrawFn) -> dict[str, str | bytes]:
    name = draw(st.sampled_from(sorted(BASE_FILES)))
    lines = BASE_FILES[name].splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        operation = draw(
            st.sampled_from(["delete", "insert", "duplicate", "change", "swap", "indent"])
        )
        index = draw(st.integers(min_value=0, max_value=max(len(lines) - 1, 0)))
        if not lines:
            lines.append(draw(st.sampled_from(VALID_LINES)))
        elif operation == "delete":
            del lines[index]
        elif operation == "insert":
            lines.insert(index, draw(st.sampled_from(VALID_LINES)))
        elif operation == "duplicate":
            lines.insert(index, lines[index])
        elif operation == "change":
            line = lines[index]
            position = draw(st.integers(min_value=0, max_value=len(line)))
            character = draw(st.sampled_from(list(" :-{}[],.0159aZ#&*\t'\"")))
            lines[index] = line[:position] + character + line[position + 1 :]
        elif operation == "swap":
            other = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            key, _, value = lines[index].partition(":")
            other_key, _, other_value = lines[other].partition(":")
            lines[index] = f"{key}:{other_value}"
            lines[other] = f"{other_key}:{value}"
        else:
            lines[index] = "  " + lines[index]
    return {**BASE_FILES, name: "\n".join(lines) + "\n"}


@FUZZ
@given(files=mutated_rule_set())
def test_random_mutations_of_valid_files(files: dict[str, str | bytes]) -> None:
    _load(files)


def _leaf_paths(node: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaf_paths(value, (*path, key))]
    if isinstance(node, list):
        return [leaf for i, value in enumerate(node) for leaf in _leaf_paths(value, (*path, i))]
    return [path]


ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["America", "Etc", "UTC", "30s", "0ms", "* * * * *", "*/0 * * * *", "DU1"]),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@FUZZ
@given(data=st.data())
def test_random_values_in_valid_files(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(BASE_FILES)))
    document = yaml.safe_load(BASE_FILES[name])
    path = data.draw(st.sampled_from(_leaf_paths(document)))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = data.draw(ODD_VALUES)
    _load({**BASE_FILES, name: yaml.safe_dump(document, allow_unicode=True)})
