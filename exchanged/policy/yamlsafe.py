"""Reading a policy file's YAML safely, keeping the line of every value.

Files are read with ``yaml.safe_load``; ``yaml.compose`` (on the safe loader)
gives the line numbers for error messages. Before either, the file's events are
checked: YAML anchors and aliases are refused (a recursive alias, or a "billion
laughs" of aliases of aliases, would make loading never end) and so is nesting
deeper than any policy needs (the composer recurses once a level). Whatever
the bytes, reading them gives a :class:`~exchanged.policy.schema.Source` or
raises :class:`~exchanged.errors.PolicyError`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from exchanged.errors import PolicyError
from exchanged.policy.schema import Path_, Source

TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _node_lines(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            _node_lines(value_node, path + (key,), out)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, path + (i,), out)


def _bad_date_line(node: yaml.Node | None) -> int | None:
    """The line of the first date scalar that is not a real date."""
    if node is None:
        return None
    if isinstance(node, yaml.ScalarNode):
        if node.tag == TIMESTAMP_TAG:
            try:
                yaml.SafeLoader("").construct_yaml_timestamp(node)
            except ValueError:
                return node.start_mark.line + 1
        return None
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            children += [k, v]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    for child in children:
        line = _bad_date_line(child)
        if line is not None:
            return line
    return None


#: deeper than any policy file needs (its deepest values are under ten levels down)
MAX_DEPTH = 64


def _check_events(name: str, text: str) -> None:
    """Refuse what ``safe_load`` would choke on, reading the parser's events only as far
    as the first one (they come one at a time, without recursion): an anchor or an alias,
    or a collection nested more than :data:`MAX_DEPTH` levels deep."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise PolicyError("uses a YAML anchor or alias (&name or *name); policy files "
                              "must write every value out in full", name, line)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise PolicyError(f"is nested more than {MAX_DEPTH} levels deep", name, line)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def parse_source(name: str, raw: bytes) -> Source:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("is not UTF-8 text", name) from None
    node: yaml.Node | None = None
    try:
        _check_events(name, text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except RecursionError:
        # not expected past _check_events; never a traceback for a policy file
        raise PolicyError(f"is nested too deeply to be read (at most {MAX_DEPTH} levels)",
                          name) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or "malformed YAML"
        raise PolicyError(
            f"is not valid YAML: {problem}", name, mark.line + 1 if mark else None
        ) from None
    except ValueError:
        # PyYAML turns YYYY-MM-DD into a date and fails on an impossible one
        raise PolicyError("holds an impossible date (YYYY-MM-DD)", name,
                          _bad_date_line(node)) from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _node_lines(node, (), lines)
    return Source(name, data, lines, hashlib.sha256(raw).hexdigest())


def read_source(path: Path) -> Source:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PolicyError(f"cannot be read ({e.strerror})", path.name) from None
    return parse_source(path.name, raw)
