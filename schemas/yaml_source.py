"""Read one YAML rule file into plain Python data plus the position of every node.

PyYAML's own loading is not good enough for files that move money: it silently keeps the last of
two duplicate keys, resolves ``ON``/``NO``/``Y`` to booleans (YAML 1.1), reads ``1:30`` as a
sexagesimal integer, and expands aliases without bound. So this module composes the node graph
with YAML-1.2-core scalar resolution and builds the Python data itself, recording where each
key and value sits so that every later error can point at ``file:line:col``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_NUMBER_DIGITS = 30

PathKey = str | int
FieldPath = tuple[PathKey, ...]

_TAG_STR = "tag:yaml.org,2002:str"
_TAG_INT = "tag:yaml.org,2002:int"
_TAG_FLOAT = "tag:yaml.org,2002:float"
_TAG_BOOL = "tag:yaml.org,2002:bool"
_TAG_NULL = "tag:yaml.org,2002:null"
_TAG_MAP = "tag:yaml.org,2002:map"
_TAG_SEQ = "tag:yaml.org,2002:seq"

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


class _CoreSchemaLoader(yaml.SafeLoader):
    """SafeLoader whose implicit resolvers follow the YAML 1.2 core schema."""


# libyaml composes a 1 MiB file in a fraction of the pure-Python time; the daemon reloads on
# every change, so use it when PyYAML was built with it.
_FastCoreSchemaLoader: type[yaml.SafeLoader] | None = (
    type("_FastCoreSchemaLoader", (yaml.CSafeLoader,), {}) if yaml.__with_libyaml__ else None
)

for _loader in (_CoreSchemaLoader, _FastCoreSchemaLoader):
    if _loader is None:
        continue
    _loader.yaml_implicit_resolvers = {}
    for _tag, _regexp, _first in (
        (_TAG_BOOL, _BOOL_RE, "tTfF"),
        (_TAG_INT, _INT_RE, "-+0123456789"),
        (_TAG_FLOAT, _FLOAT_RE, "-+.0123456789"),
        (_TAG_NULL, _NULL_RE, ["~", "n", "N", ""]),
    ):
        _loader.add_implicit_resolver(_tag, _regexp, list(_first))


def _compose(text: str) -> Node | None:
    if _FastCoreSchemaLoader is not None:
        try:
            return yaml.compose(text, Loader=_FastCoreSchemaLoader)
        except yaml.YAMLError:
            pass  # the pure-Python parser below reports the problem with clearer messages
    return yaml.compose(text, Loader=_CoreSchemaLoader)


@dataclass(frozen=True, order=True)
class Mark:
    """A 1-based position in a file."""

    line: int
    column: int


@dataclass(frozen=True)
class NodeSpan:
    """Where one entry of the data sits: its key (for mapping entries) and its value."""

    value: Mark
    key: Mark | None
    is_collection: bool
    """True for mappings, lists and empty values: errors about them point at their key."""


@dataclass(frozen=True)
class SourceError:
    line: int
    column: int
    path: FieldPath
    message: str


@dataclass
class ParsedFile:
    """The data of one rule file and the position of every node in it, by field path."""

    data: object = None
    spans: dict[FieldPath, NodeSpan] = field(default_factory=dict)
    errors: list[SourceError] = field(default_factory=list)


def _mark(node_mark: yaml.Mark | None) -> Mark:
    if node_mark is None:
        return Mark(1, 1)
    return Mark(node_mark.line + 1, node_mark.column + 1)


def _position_of_offset(text: str, offset: int) -> Mark:
    before = text[:offset]
    line = before.count("\n") + 1
    return Mark(line, offset - (before.rfind("\n") + 1) + 1)


@dataclass(frozen=True)
class FileKind:
    """What a file of this kind holds, for the messages about an empty or a non-mapping file."""

    empty: str
    mapping: str


RULE_FILE = FileKind(
    empty="file is empty: a rule file holds at least 'version: 1'",
    mapping="a rule file must be a mapping of sections (version, account, risk, ...)",
)


def read_rule_file(path: Path, kind: FileKind = RULE_FILE) -> ParsedFile:
    """Read and parse one file; problems come back as ``errors``, never as exceptions."""
    parsed = ParsedFile()
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        parsed.errors.append(SourceError(1, 1, (), f"cannot read the file: {exc.strerror}"))
        return parsed
    if len(raw) > MAX_FILE_BYTES:
        parsed.errors.append(
            SourceError(
                1, 1, (), "file is larger than 1 MiB; rule files are small, split or trim it"
            )
        )
        return parsed
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        decoded_prefix = raw[: exc.start].decode("utf-8", "replace")
        position = _position_of_offset(decoded_prefix, len(decoded_prefix))
        parsed.errors.append(
            SourceError(
                position.line,
                position.column,
                (),
                f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded; save the file as UTF-8",
            )
        )
        return parsed
    return parse_rule_text(text, kind)


def parse_rule_text(text: str, kind: FileKind = RULE_FILE) -> ParsedFile:
    """Parse the text of one rule file (a single YAML document holding a mapping)."""
    parsed = ParsedFile()
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = _mark(exc.problem_mark or exc.context_mark)
        parsed.errors.append(SourceError(mark.line, mark.column, (), _syntax_message(exc)))
        return parsed
    except yaml.reader.ReaderError as exc:
        mark = _position_of_offset(text, exc.position)
        parsed.errors.append(
            SourceError(
                mark.line,
                mark.column,
                (),
                f"character {chr(exc.character)!r} (U+{exc.character:04X}) is not allowed "
                "in YAML; remove it",
            )
        )
        return parsed
    except yaml.YAMLError as exc:
        parsed.errors.append(SourceError(1, 1, (), f"not valid YAML: {exc}"))
        return parsed
    except RecursionError:
        parsed.errors.append(
            SourceError(1, 1, (), f"nesting is too deep (more than {MAX_DEPTH} levels)")
        )
        return parsed
    if root is None:
        parsed.errors.append(SourceError(1, 1, (), kind.empty))
        return parsed
    if not isinstance(root, MappingNode):
        mark = _mark(root.start_mark)
        parsed.errors.append(
            SourceError(
                mark.line,
                mark.column,
                (),
                f"{kind.mapping}, not {_describe(root)}",
            )
        )
        return parsed
    builder = _Builder(parsed)
    parsed.spans[()] = NodeSpan(_mark(root.start_mark), None, True)
    try:
        _check_expanded_size(root)
        parsed.data = builder.build(root, (), 0)
    except _TooLarge as exc:
        parsed.data = None
        parsed.errors.append(SourceError(exc.mark.line, exc.mark.column, (), str(exc)))
    if parsed.errors:
        parsed.data = None
    return parsed


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or "syntax error"
    context = exc.context or ""
    if "'\\t'" in problem:
        return "tab character: YAML indentation must use spaces, not tabs"
    if "expected a single document" in context:
        return "more than one YAML document ('---'); put one document in each file"
    if context and exc.context_mark is not None:
        start = _mark(exc.context_mark)
        context = f" ({context} at line {start.line}, column {start.column})"
    elif context:
        context = f" ({context})"
    return f"YAML syntax error: {problem}{context}"


def _describe(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, ScalarNode):
        return f"the scalar {node.value!r}"[:80]
    return "a mapping"


class _TooLarge(Exception):
    def __init__(self, message: str, mark: Mark) -> None:
        super().__init__(message)
        self.mark = mark


def _check_expanded_size(root: Node) -> None:
    """Refuse alias bombs before building anything: the size of the expanded document is
    counted once per distinct node, so a bomb costs as little to refuse as it is to read."""
    sizes: dict[int, int] = {}
    entered: set[int] = set()
    pending: list[tuple[Node, bool]] = [(root, False)]
    while pending:
        node, children_done = pending.pop()
        if id(node) in sizes or (not children_done and id(node) in entered):
            continue
        children = _children(node)
        if not children_done:
            entered.add(id(node))
            pending.append((node, True))
            pending.extend(
                (child, False)
                for child in children
                if id(child) not in sizes and id(child) not in entered
            )
            continue
        # A child still unsized here is an ancestor of this node (an alias inside itself):
        # the builder reports that as too deep, so count it once and let it.
        size = 1 + sum(sizes.get(id(child), 1) for child in children)
        if size > MAX_NODES:
            raise _TooLarge(
                f"the document has, or expands through aliases to, more than {MAX_NODES} "
                "nodes; rule files are small, write the values out",
                _mark(node.start_mark),
            )
        sizes[id(node)] = size


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _parse_int(text: str) -> int:
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


def _parse_float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".nan"):
        return math.nan
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    return float(text)


class _Builder:
    """Turns a composed node graph into plain data, counting nodes so that aliases cannot
    expand without bound (billion laughs) and recording the span of every path."""

    def __init__(self, parsed: ParsedFile) -> None:
        self._parsed = parsed
        self._nodes = 0

    def _error(self, mark: Mark, path: FieldPath, message: str) -> None:
        self._parsed.errors.append(SourceError(mark.line, mark.column, path, message))

    def build(self, node: Node, path: FieldPath, depth: int) -> object:
        self._nodes += 1
        mark = _mark(node.start_mark)
        if self._nodes > MAX_NODES:
            raise _TooLarge(
                f"the document has, or expands through aliases to, more than {MAX_NODES} "
                "nodes; rule files are small, write the values out",
                mark,
            )
        if depth > MAX_DEPTH:
            raise _TooLarge(
                f"nesting is too deep (more than {MAX_DEPTH} levels; an alias inside itself?)",
                mark,
            )
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            if node.tag != _TAG_SEQ:
                self._error(mark, path, f"unsupported YAML tag {node.tag!r}")
            items: list[object] = []
            for index, item in enumerate(node.value):
                item_path = (*path, index)
                self._record(item_path, item, None)
                items.append(self.build(item, item_path, depth + 1))
            return items
        assert isinstance(node, ScalarNode)
        return self._scalar(node, path, mark)

    def _record(self, path: FieldPath, value: Node, key: Node | None) -> None:
        self._parsed.spans.setdefault(
            path,
            NodeSpan(
                value=_mark(value.start_mark),
                key=None if key is None else _mark(key.start_mark),
                is_collection=not isinstance(value, ScalarNode) or value.value == "",
            ),
        )

    def _mapping(self, node: MappingNode, path: FieldPath, depth: int) -> dict[str, object]:
        if node.tag != _TAG_MAP:
            self._error(_mark(node.start_mark), path, f"unsupported YAML tag {node.tag!r}")
        result: dict[str, object] = {}
        first_seen: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            key_mark = _mark(key_node.start_mark)
            if not isinstance(key_node, ScalarNode):
                self._error(key_mark, path, "mapping keys must be plain names, not lists or maps")
                continue
            # Keys are names (sections, fields, rule names, tickers): always text, so that a
            # ticker such as ON, NO or Y can never turn into a boolean.
            key = key_node.value
            entry_path = (*path, key)
            if key == "<<" and not key_node.style:
                self._error(
                    key_mark,
                    entry_path,
                    "YAML merge keys (<<) are not supported; write the keys out",
                )
                continue
            if key in first_seen:
                first = first_seen[key]
                self._error(
                    key_mark,
                    entry_path,
                    f"duplicate key {key!r} (first at line {first.line}, column "
                    f"{first.column}); each key may appear only once in a mapping",
                )
                continue
            first_seen[key] = key_mark
            self._record(entry_path, value_node, key_node)
            result[key] = self.build(value_node, entry_path, depth + 1)
        return result

    def _scalar(self, node: ScalarNode, path: FieldPath, mark: Mark) -> object:
        text = node.value
        tag = node.tag
        if tag == _TAG_STR:
            return text
        if tag == _TAG_NULL and _NULL_RE.match(text):
            return None
        if tag == _TAG_BOOL and _BOOL_RE.match(text):
            return text.lower() == "true"
        if tag == _TAG_INT and _INT_RE.match(text):
            if len(text) > MAX_NUMBER_DIGITS:
                self._error(mark, path, f"number with more than {MAX_NUMBER_DIGITS} digits")
                return None
            return _parse_int(text)
        if tag == _TAG_FLOAT and (_FLOAT_RE.match(text) or _INT_RE.match(text)):
            return _parse_float(text)
        if tag in (_TAG_NULL, _TAG_BOOL, _TAG_INT, _TAG_FLOAT):
            self._error(mark, path, f"{text!r} is not a valid {tag.rsplit(':', 1)[-1]}")
        else:
            self._error(mark, path, f"unsupported YAML tag {tag!r}")
        return None
