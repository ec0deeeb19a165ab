"""Recipe command lines: YAML configs checked key by key, and bad input reported in one line, never a traceback.

Every recipe parses with :func:`parse_args` (``trl.TrlParser`` underneath: YAML via ``--config``, then command-line
overrides) and runs its ``main`` through :func:`run`. A misspelt YAML key is an error naming the file, the line and
the closest known key. Errors in the options end the process with ``<script>: configuration error: <one line>`` and
exit status 2 (as argparse does for unknown options); errors in the user's data or files found while running
(``ValueError``, ``OSError``) with ``<script>: error: <one line>`` and status 1. Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger(__name__)

# Keys TrlParser itself reads from a YAML config besides dataclass fields.
_PARSER_KEYS = ("env",)


class ConfigError(ValueError):
    """A recipe's YAML config cannot be used; the message names the file (and the line when known)."""


def _yaml_keys(path: str) -> dict[str, int]:
    """Top-level keys of a YAML mapping and their (1-based) lines; a ConfigError for anything else."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            node = yaml.compose(f, Loader=yaml.SafeLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({err.problem or err.context})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}: a recipe config must be a mapping of option: value")
    keys: dict[str, int] = {}
    for key_node, _ in node.value:
        key = key_node.value
        if key in keys:
            raise ConfigError(f"{path}, line {key_node.start_mark.line + 1}: key {key!r} appears twice")
        keys[key] = key_node.start_mark.line + 1
    return keys


def check_config_keys(path: str, dataclass_types: Sequence[type]) -> None:
    """Fail on the first key of the YAML file at ``path`` that no dataclass in ``dataclass_types`` has."""
    known = {f.name for t in dataclass_types for f in dataclasses.fields(t)} | set(_PARSER_KEYS)
    for key, line in _yaml_keys(path).items():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}, line {line}: unknown key {key!r}{hint}")


def _config_path(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def parse_args(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple[Any, ...]:
    """``TrlParser(dataclass_types).parse_args_and_config`` after checking the ``--config`` file's keys.

    Abbreviated options are refused (``--learning_rat`` is an error, not a silent prefix match).
    """
    from trl import TrlParser

    argv = list(sys.argv[1:] if argv is None else argv)
    path = _config_path(argv)
    if path is not None:
        check_config_keys(path, dataclass_types)
    if any(a.startswith("--config=") for a in argv):  # TrlParser only understands "--config PATH"
        argv = [x for a in argv for x in (["--config", a.split("=", 1)[1]] if a.startswith("--config=") else [a])]
    return tuple(TrlParser(tuple(dataclass_types), allow_abbrev=False).parse_args_and_config(args=argv))


def one_line(error: BaseException) -> str:
    """The error's message on one line (its own lines joined)."""
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename and error.strerror:  # FileNotFoundError & co.
        text = f"{error.filename}: {error.strerror}"
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def run(prog: str, main: Callable[..., Any], dataclass_types: Sequence[type], argv: Sequence[str] | None = None):
    """Parse the options and call ``main(*parsed)``; user errors end the process with one line (see module doc)."""
    prog = os.path.basename(prog)
    try:
        parsed = parse_args(dataclass_types, argv)
    except (ValueError, OSError) as error:  # unknown keys, invalid values, a missing config file
        print(f"{prog}: configuration error: {one_line(error)}", file=sys.stderr)
        sys.exit(2)
    try:
        return main(*parsed)
    except (ValueError, OSError) as error:  # bad data files or rows, missing models: the message says which
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        sys.exit(1)
