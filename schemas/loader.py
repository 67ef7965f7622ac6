"""Load a rule set: find the files, parse them, validate each, merge, run the cross-field checks.

``load_rule_set`` never raises for bad input. It returns every problem at once as a
``RuleError`` (``file:line:col: field.path: message``), sorted by file and line, so that the
daemon can call it on every hot reload and keep acting on the last good rule set when the new
one is broken.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tradectl.schemas.checks import Problem, check_rule_set
from tradectl.schemas.models import (
    GCS_URL,
    QUANTITY_FORM_TAGS,
    RULE_KINDS,
    SINGLETON_SECTIONS,
    TARGETS_FORM_TAGS,
    RuleFile,
    RuleSet,
)
from tradectl.schemas.strict_modes import untrusted_input_problems
from tradectl.schemas.yaml_source import (
    FieldPath,
    FileKind,
    Mark,
    NodeSpan,
    ParsedFile,
    read_rule_file,
)

RULE_FILE_SUFFIXES = (".yaml", ".yml")
REQUIRED_SECTIONS = {
    "account": ("an account section", "account: {id: DU1234567}"),
    "risk": ("a risk section", "risk: {max_order_value: ..., max_position_fraction: ..., ...}"),
}

_PATTERN_MEANINGS = {
    r"^[a-z0-9][a-z0-9_-]{0,39}$": (
        "rule names are 1-40 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
    ),
    r"^[A-Z]{1,3}[0-9]{4,10}$": "must be an IB account id such as DU1234567 (paper) or U1234567",
    GCS_URL: "must be a Cloud Storage location such as gs://bucket/prefix",
}


@dataclass(frozen=True, order=True)
class RuleError:
    """One problem in a rule set, located in its file."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, str | int]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


@dataclass(frozen=True)
class LoadResult:
    """The outcome of loading: a rule set when there are no errors, else the errors."""

    rule_set: RuleSet | None
    errors: tuple[RuleError, ...]
    files: tuple[Path, ...]
    origins: Mapping[str, Path] = field(default_factory=dict)
    """Which file defines each section and rule, keyed ``account``, ``brackets.x`` and so on."""

    @property
    def ok(self) -> bool:
        return self.rule_set is not None


def dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


# docs/security.md: anything of this name in a rules directory halts trading; never a rule file.
HALT_FILE_NAME = "HALT"


def halt_file(rules_path: Path) -> Path:
    """Where the HALT file of a rule directory (or of a single rule file's directory) lives."""
    directory = rules_path if rules_path.is_dir() else rules_path.parent
    return directory / HALT_FILE_NAME


def halt_present(rules_path: Path) -> bool:
    """Whether trading is halted by the HALT file: *anything* named HALT halts, a regular file,
    a directory, a dangling symbolic link or one that cannot be read alike. Every command asks
    this one function (docs/security.md): an emergency stop must not depend on what kind of
    file a hurried operator created, and a mistake this way only holds orders back."""
    return os.path.lexists(halt_file(rules_path))


def is_rule_file_name(name: str) -> bool:
    """YAML files only; hidden files, editor swap, lock and backup files never are rules."""
    return (
        name.endswith(RULE_FILE_SUFFIXES)
        and not name.startswith((".", "#"))
        and not name.endswith(("~", "#"))
    )


def discover_rule_files(paths: Sequence[Path | str]) -> tuple[list[Path], list[RuleError]]:
    """The rule files named by ``paths`` (directories are read one level deep, in name order)."""
    files: list[Path] = []
    errors: list[RuleError] = []
    seen: set[Path] = set()

    def add(candidate: Path) -> None:
        try:
            identity = candidate.resolve()
        except (OSError, RuntimeError):
            identity = candidate.absolute()
        if identity not in seen:
            seen.add(identity)
            files.append(candidate)

    for given in paths:
        path = Path(given)
        try:
            _discover(path, add, errors)
        except OSError as exc:
            errors.append(RuleError(str(path), 1, 1, "", f"cannot read: {exc.strerror or exc}"))
    return files, errors


def _discover(path: Path, add: Callable[[Path], None], errors: list[RuleError]) -> None:
    if path.is_dir():
        found = sorted(entry for entry in path.iterdir() if is_rule_file_name(entry.name))
        if not found:
            errors.append(
                RuleError(str(path), 1, 1, "", "no rule files (*.yaml, *.yml) in this directory")
            )
        for entry in found:
            if entry.is_file():
                add(entry)
            else:
                # Skipping it would silently drop its rules (and cancel their orders).
                errors.append(
                    RuleError(
                        str(entry),
                        1,
                        1,
                        "",
                        "not a readable regular file (a broken symbolic link?); fix or remove it",
                    )
                )
    elif path.is_file():
        if path.name.endswith(RULE_FILE_SUFFIXES):
            add(path)
        else:
            errors.append(
                RuleError(str(path), 1, 1, "", "not a rule file: the name must end in .yaml")
            )
    else:
        errors.append(RuleError(str(path), 1, 1, "", "no such file or directory"))


@dataclass
class _Source:
    path: Path
    parsed: ParsedFile

    def mark(self, path: FieldPath, *, prefer_key: bool) -> Mark:
        span = self.span(path)
        if span is None:
            return Mark(1, 1)
        if span.key is not None and (prefer_key or span.is_collection):
            return span.key
        return span.value

    def span(self, path: FieldPath) -> NodeSpan | None:
        for length in range(len(path), -1, -1):
            span = self.parsed.spans.get(path[:length])
            if span is not None:
                return span
        return None

    def error(
        self, path: FieldPath, message: str, *, prefer_key: bool = False, at: Mark | None = None
    ) -> RuleError:
        mark = at or self.mark(path, prefer_key=prefer_key)
        return RuleError(str(self.path), mark.line, mark.column, dotted(path), message)


def load_rule_set(paths: Sequence[Path | str]) -> LoadResult:
    """Load, validate and merge the rule files named by ``paths`` (files or directories)."""
    files, errors = discover_rule_files(paths)
    if not paths:
        errors.append(RuleError(".", 1, 1, "", "no rule files or directories given"))
    # Rules are read one level deep, so a file's directory is its rules root.
    untrusted = [
        problem for path in files for problem in untrusted_input_problems(path, path.parent)
    ]
    errors.extend(RuleError(str(problem.path), 1, 1, "", problem.message) for problem in untrusted)
    files = [path for path in files if path.resolve() not in {p.path for p in untrusted}]
    sources = [_Source(path, read_rule_file(path)) for path in files]
    rule_files: list[tuple[_Source, RuleFile]] = []
    for source in sources:
        errors.extend(
            RuleError(str(source.path), error.line, error.column, dotted(error.path), error.message)
            for error in source.parsed.errors
        )
        if source.parsed.data is None:
            continue
        try:
            rule_files.append((source, RuleFile.model_validate(source.parsed.data)))
        except ValidationError as exc:
            errors.extend(_validation_errors(source, exc))
    errors.extend(_duplicate_errors(sources))
    rule_set: RuleSet | None = None
    origins: dict[str, Path] = {}
    if not errors and rule_files:
        rule_set, origins, merge_errors = _merge(rule_files)
        errors.extend(merge_errors)
        if rule_set is not None:
            errors.extend(_problem_errors(check_rule_set(rule_set), rule_files))
    if errors:
        return LoadResult(None, tuple(sorted(set(errors))), tuple(files))
    if rule_set is not None and paths:
        first = Path(paths[0])
        rule_set.with_source_dir(first if first.is_dir() else first.parent)
    return LoadResult(rule_set, (), tuple(files), origins)


Model = TypeVar("Model", bound=BaseModel)


def load_model_file(
    path: Path, model: type[Model], kind: FileKind
) -> tuple[Model | None, tuple[RuleError, ...]]:
    """Any other YAML file tradectl reads (the sim's state file, an account snapshot), checked
    against ``model`` and reported as ``validate`` reports rule files: file:line:col, the field
    path, a plain message."""
    source = _Source(path, read_rule_file(path, kind))
    errors = [
        RuleError(str(path), error.line, error.column, dotted(error.path), error.message)
        for error in source.parsed.errors
    ]
    if errors or source.parsed.data is None:
        return None, tuple(errors)
    try:
        return model.model_validate(source.parsed.data), ()
    except ValidationError as exc:
        return None, tuple(sorted(set(_validation_errors(source, exc, model))))


# --- per-file validation errors -----------------------------------------------------------------


def _validation_errors(
    source: _Source, exc: ValidationError, root: type[BaseModel] = RuleFile
) -> list[RuleError]:
    return [_one_validation_error(source, detail, root) for detail in exc.errors(include_url=False)]


def _one_validation_error(
    source: _Source, detail: ErrorDetails, root: type[BaseModel] = RuleFile
) -> RuleError:
    data = source.parsed.data
    path: list[str | int] = []
    names_key = False
    for element in detail["loc"]:
        if _has_child(data, element):
            path.append(element)
            data = data[element]  # type: ignore[index]
        elif element == "[key]":
            names_key = True
        elif element in QUANTITY_FORM_TAGS or element in TARGETS_FORM_TAGS:
            continue
        else:
            path.append(element)
    field_path = tuple(path)
    kind = detail["type"]
    if kind == "missing":
        parent = source.span(field_path[:-1])
        at = parent.value if parent is not None else Mark(1, 1)
        return source.error(field_path, _missing_message(field_path), at=at)
    if kind == "extra_forbidden":
        return source.error(field_path, _unknown_key_message(field_path, root), prefer_key=True)
    shown = None if _bears_secrets(field_path) else detail.get("input")
    return source.error(field_path, _message(detail, shown), prefer_key=names_key)


# Fields that can carry credentials by mistake (a URL with a user:password@ or a token): their
# value is never repeated in an error message, which ends up in logs and `tradectl status`.
_SECRET_BEARING_FIELDS: tuple[FieldPath, ...] = (("records", "gcs"), ("alerts",))


def _bears_secrets(path: FieldPath) -> bool:
    return any(path[: len(field)] == field for field in _SECRET_BEARING_FIELDS)


def _has_child(data: object, element: str | int) -> bool:
    if isinstance(data, dict):
        return element in data
    return isinstance(data, list) and isinstance(element, int) and 0 <= element < len(data)


def _missing_message(path: FieldPath) -> str:
    if path == ("version",):
        return "missing: every rule file starts with 'version: 1'"
    return f"missing required key {path[-1]!r}"


def _unknown_key_message(path: FieldPath, root: type[BaseModel] = RuleFile) -> str:
    key = str(path[-1])
    allowed = sorted(_allowed_keys(path[:-1], root))
    message = f"unknown key {key!r}"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    if allowed:
        return f"{message}; expected one of: {', '.join(allowed)}"
    return message


def _message(detail: ErrorDetails, given: object) -> str:
    kind = detail["type"]
    context: dict[str, Any] = dict(detail.get("ctx") or {})
    if kind == "string_pattern_mismatch":
        meaning = _PATTERN_MEANINGS.get(str(context.get("pattern")))
        if meaning is not None:
            return f"{given!r}: {meaning}" if isinstance(given, str) else meaning
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if given is None:
            return "is empty; it needs a mapping of keys"
        return "must be a mapping of keys"
    if kind == "list_type":
        return "must be a list"
    if kind == "too_short":
        return f"must not be empty (at least {context.get('min_length', 1)})"
    message = detail["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ")
    if message.startswith("String should "):
        message = "must " + message.removeprefix("String should ")
    return message


def _models_in(annotation: Any) -> list[Any]:
    """The model classes and dict value types an annotation can hold."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [found for arg in typing.get_args(annotation) for found in _models_in(arg)]
    if origin is dict:
        return [annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _allowed_keys(path: FieldPath, root: type[BaseModel] = RuleFile) -> set[str]:
    current: list[Any] = [root]
    for element in path:
        following: list[Any] = []
        for candidate in current:
            if typing.get_origin(candidate) is dict:
                following.extend(_models_in(typing.get_args(candidate)[1]))
            elif isinstance(candidate, type) and issubclass(candidate, BaseModel):
                info = candidate.model_fields.get(str(element))
                if info is not None:
                    following.extend(_models_in(info.annotation))
        current = following
    return {
        name
        for candidate in current
        if isinstance(candidate, type) and issubclass(candidate, BaseModel)
        for name in candidate.model_fields
    }


# --- merging ------------------------------------------------------------------------------------


def _duplicate_errors(sources: Sequence[_Source]) -> list[RuleError]:
    """Singleton sections and rule names defined twice, found on the raw data so that they are
    reported even when the files have other errors."""
    errors: list[RuleError] = []
    sections: dict[str, tuple[_Source, Mark]] = {}
    names: dict[str, tuple[_Source, str, Mark]] = {}
    for source in sources:
        data = source.parsed.data
        if not isinstance(data, dict):
            continue
        for section in SINGLETON_SECTIONS:
            if section not in data:
                continue
            mark = source.mark((section,), prefer_key=True)
            if section in sections:
                first, first_mark = sections[section]
                errors.append(
                    source.error(
                        (section,),
                        f"duplicate section: {section} is already defined at "
                        f"{first.path}:{first_mark.line}:{first_mark.column}; each of "
                        f"{', '.join(SINGLETON_SECTIONS)} may appear in only one file",
                        prefer_key=True,
                    )
                )
            else:
                sections[section] = (source, mark)
        for kind in RULE_KINDS:
            rules = data.get(kind)
            if not isinstance(rules, dict):
                continue
            for name in rules:
                mark = source.mark((kind, name), prefer_key=True)
                if name in names:
                    first, first_kind, first_mark = names[name]
                    errors.append(
                        source.error(
                            (kind, name),
                            f"duplicate rule name {name!r}: already used by {first_kind}.{name} "
                            f"at {first.path}:{first_mark.line}:{first_mark.column}; rule names "
                            "must be unique across files and kinds (the name is part of every "
                            "orderRef)",
                            prefer_key=True,
                        )
                    )
                else:
                    names[name] = (source, kind, mark)
    return errors


def _merge(
    rule_files: Sequence[tuple[_Source, RuleFile]],
) -> tuple[RuleSet | None, dict[str, Path], list[RuleError]]:
    sections: dict[str, Any] = {}
    rules: dict[str, Any] = {kind: {} for kind in RULE_KINDS}
    origins: dict[str, Path] = {}
    for source, rule_file in rule_files:
        for section in SINGLETON_SECTIONS:
            value = getattr(rule_file, section)
            if value is not None:
                sections[section] = value
                origins[section] = source.path
        for kind in RULE_KINDS:
            for name, rule in getattr(rule_file, kind).items():
                rules[kind][name] = rule
                origins[f"{kind}.{name}"] = source.path
    first = rule_files[0][0]
    errors = [
        RuleError(
            str(first.path),
            1,
            1,
            section,
            f"missing: no file of this rule set has {what}; every rule set states its own "
            f"account and limits, add one ({example})",
        )
        for section, (what, example) in REQUIRED_SECTIONS.items()
        if section not in sections
    ]
    if errors:
        return None, origins, errors
    return RuleSet(version=1, **sections, **rules), origins, []


def _problem_errors(
    problems: Sequence[Problem], rule_files: Sequence[tuple[_Source, RuleFile]]
) -> list[RuleError]:
    owners: dict[FieldPath, _Source] = {}
    for source, rule_file in rule_files:
        for section in SINGLETON_SECTIONS:
            if getattr(rule_file, section) is not None:
                owners[(section,)] = source
        for kind in RULE_KINDS:
            for name in getattr(rule_file, kind):
                owners[(kind, name)] = source

    def owner(path: FieldPath) -> _Source:
        return owners.get(path[:1]) or owners.get(path[:2]) or rule_files[0][0]

    errors = []
    for problem in problems:
        message = problem.message
        if problem.see:
            references = []
            for path in problem.see:
                source = owner(path)
                mark = source.mark(path, prefer_key=True)
                references.append(f"{dotted(path)}, {source.path}:{mark.line}:{mark.column}")
            message = f"{message} ({'; '.join(references)})"
        errors.append(owner(problem.path).error(problem.path, message, prefer_key=True))
    return errors
