"""
Reading the serve settings: flag > ``RDS_CSI_*`` environment > YAML ``--config`` > default.

Each source gives raw values keyed by option name; the winners are structured into
``Settings`` by the one converter in ``settings.py``, in one pass. A value its hook refuses is
reported with the place it came from (``--rds-port``, ``RDS_CSI_RDS_PORT`` or the file and
key), so the operator knows which of the three to fix.
"""

from __future__ import annotations

import argparse
import os
import pathlib
from collections.abc import Iterator, Mapping

import attrs
import cattrs
import yaml

from rds_csi.entrypoints.converter import converter
from rds_csi.entrypoints.options import OptionSpec, options
from rds_csi.entrypoints.settings import ENV_PREFIX, Settings


__all__ = ["SettingsError", "add_serve_arguments", "resolve_settings", "settings_from"]

CONFIG_ENV = ENV_PREFIX + "CONFIG"


class SettingsError(Exception):
    """A setting is malformed or unknown; the message names the option and its source."""


@attrs.frozen
class _Raw:
    value: object
    source: str


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option as a flag whose absence is None, so the environment and file can speak."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML file of settings (keys as below, with underscores); env {CONFIG_ENV}",
    )
    for opt in options():
        env = ", ".join((opt.env, *opt.also_env))
        allowed = opt.choices()
        choices = f"; one of {', '.join(allowed)}" if allowed else ""
        text = f"{opt.help} [default {opt.shown_default()}{choices}; env {env}]"
        if opt.kind == "bool":
            parser.add_argument(
                opt.flag, dest=opt.name, action=argparse.BooleanOptionalAction, help=text
            )
        elif opt.kind == "list":
            parser.add_argument(
                opt.flag, dest=opt.name, action="append", metavar="KEY=VALUE", help=text
            )
        else:
            parser.add_argument(opt.flag, dest=opt.name, metavar=opt.name.upper(), help=text)


def _from_file(path: str, known: Mapping[str, OptionSpec]) -> dict[str, _Raw]:
    try:
        data = yaml.safe_load(pathlib.Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"--config {path}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"--config {path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SettingsError(f"--config {path}: expected a mapping of settings at the top")
    unknown = sorted(str(key) for key in data if str(key) not in known)
    if unknown:
        raise SettingsError(
            f"--config {path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    return {str(key): _Raw(value, f"--config {path}: {key}") for key, value in data.items()}


def _from_env(environ: Mapping[str, str], known: Mapping[str, OptionSpec]) -> dict[str, _Raw]:
    found: dict[str, _Raw] = {}
    for opt in known.values():
        var = next((v for v in (opt.env, *opt.also_env) if v in environ), None)
        if var is not None:
            found[opt.name] = _Raw(environ[var], var)
    return found


def _from_flags(args: argparse.Namespace, known: Mapping[str, OptionSpec]) -> dict[str, _Raw]:
    given = {name: getattr(args, name, None) for name in known}
    return {
        name: _Raw(value, known[name].flag) for name, value in given.items() if value is not None
    }


def _nest(chosen: Mapping[str, _Raw], known: Mapping[str, OptionSpec]) -> dict[str, object]:
    nested: dict[str, object] = {}
    for name, raw in chosen.items():
        *section, field = known[name].path
        target = nested
        for part in section:
            inner = target.setdefault(part, {})
            assert isinstance(inner, dict)  # noqa: S101 - built just above
            target = inner
        target[field] = raw.value
    return nested


def _problems(exc: BaseException, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """cattrs' nested validation errors as (path in Settings, reason)."""
    if isinstance(exc, cattrs.ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            yield from _problems(inner, (*path, str(note.name)))
        for inner in without:
            yield from _problems(inner, path)
    else:
        yield path, str(exc)


def resolve_settings(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> Settings:
    """
    The settings the flags, environment and file give, checked.

    Raises:
        SettingsError: an unreadable file, an unknown key, a malformed value.
    """
    env = os.environ if environ is None else environ
    known = {opt.name: opt for opt in options()}
    chosen: dict[str, _Raw] = {}
    config_path = getattr(args, "config", None) or env.get(CONFIG_ENV)
    if config_path:
        chosen.update(_from_file(config_path, known))
    chosen.update(_from_env(env, known))
    chosen.update(_from_flags(args, known))
    return _structure(chosen, known)


def settings_from(values: Mapping[str, object]) -> Settings:
    """Settings from option names and values (embedding, tests); errors name the option."""
    known = {opt.name: opt for opt in options()}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SettingsError(f"unknown setting {unknown[0]!r}")
    return _structure({name: _Raw(value, name) for name, value in values.items()}, known)


def _structure(chosen: Mapping[str, _Raw], known: Mapping[str, OptionSpec]) -> Settings:
    try:
        return converter.structure(_nest(chosen, known), Settings)
    except cattrs.ClassValidationError as exc:
        by_path = {opt.path: opt.name for opt in known.values()}
        messages = []
        for path, reason in _problems(exc, ()):
            name = by_path.get(path, ".".join(path))
            source = chosen[name].source if name in chosen else name
            messages.append(f"{source}: {reason}")
        raise SettingsError("; ".join(messages)) from None
