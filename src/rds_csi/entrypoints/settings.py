"""
The serve options: one table, read from flags, the environment and a YAML file.

Each option ``name`` (``rds_port``) is the config key (in the YAML file and in the
container's ``config``), the flag ``--rds-port`` and the variable ``RDS_CSI_RDS_PORT``.
Precedence: flag > environment > file > default. A few options also read a conventional
variable after ours (``CSI_ENDPOINT``, ``NODE_ID``).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, Literal

import attrs
import yaml

from rds_csi.entrypoints.logs import LOG_FORMATS, LOG_LEVELS


__all__ = [
    "ENV_PREFIX",
    "SERVE_OPTIONS",
    "Option",
    "SettingsError",
    "add_serve_arguments",
    "default_settings",
    "resolve_settings",
]

ENV_PREFIX: Final = "RDS_CSI_"
DEFAULT_ENDPOINT: Final = "unix:///csi/csi.sock"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


class SettingsError(Exception):
    """A setting is malformed or unknown; the message names the option and its source."""


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def _non_negative_int(text: str) -> int:
    value = int(text, 10)
    if value < 0:
        raise ValueError(f"{value} is negative")
    return value


def _port(text: str) -> int:
    value = int(text, 10)
    if not 1 <= value <= 65535:  # noqa: PLR2004
        raise ValueError(f"{value} is not a TCP port")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError(f"{value} is negative")
    return value


Kind = Literal["value", "bool", "list"]


@attrs.frozen
class Option:
    """
    One serve option.

    Attributes:
        name: Config key, also the flag (``--`` + dashes) and variable (``RDS_CSI_`` + upper).
        default: The value, or a function computing it when settings are resolved (never at
            import time: the hostname default for ``node_id``).
        parse: Text (flag, environment) -> value; raises ValueError with the reason.
        kind: ``bool`` flags take ``--x/--no-x``; ``list`` flags repeat, and their variable
            holds comma-separated items.
        choices: The allowed values, or a function listing them (the container's selectors).
        also_env: Conventional variables read when ours is unset.
    """

    name: str
    default: object
    help: str
    parse: Callable[[str], object] = str
    kind: Kind = "value"
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    also_env: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def default_value(self) -> object:
        return self.default() if callable(self.default) else self.default

    def allowed(self) -> Sequence[str] | None:
        return self.choices() if callable(self.choices) else self.choices

    def from_text(self, text: str) -> object:
        if self.kind == "list":
            return [item.strip() for item in text.split(",") if item.strip()]
        if self.kind == "bool":
            return _bool(text)
        return self.parse(text)

    def from_file(self, value: object) -> object:
        """A YAML value: native types are taken as they are, text is parsed."""
        if self.kind == "list":
            if isinstance(value, Mapping):
                return [f"{k}={v}" for k, v in value.items()]
            if isinstance(value, list):
                return [str(item) for item in value]
            return self.from_text(str(value))
        if self.kind == "bool" and isinstance(value, bool):
            return value
        if value is None:
            return self.from_text("")
        return self.from_text(str(value))


def _hostname() -> str:
    return socket.gethostname()


def _backends() -> Sequence[str]:
    from rds_csi.entrypoints.container import backend_kinds  # noqa: PLC0415 - no cycle at import

    return backend_kinds()


def _initiators() -> Sequence[str]:
    from rds_csi.entrypoints.container import initiator_kinds  # noqa: PLC0415 - no cycle at import

    return initiator_kinds()


SERVE_OPTIONS: Final[tuple[Option, ...]] = (
    Option(
        "endpoint",
        DEFAULT_ENDPOINT,
        "where to serve CSI: unix:///path/csi.sock (or tcp://host:port for debugging)",
        also_env=("CSI_ENDPOINT",),
    ),
    Option("driver_name", "rds.csi.srvlab.io", "the CSI driver name (the Go driver's default)"),
    Option("log_level", "info", "log level", choices=LOG_LEVELS),
    Option("log_format", "text", "log line format", choices=LOG_FORMATS),
    Option(
        "metrics_address",
        ":9809",
        "host:port of the Prometheus /metrics endpoint; empty disables it",
    ),
    Option("shutdown_grace", 10.0, "seconds in-flight calls get on SIGTERM", parse=_seconds),
    # --- the RDS (controller) -------------------------------------------------------------
    Option(
        "backend",
        "auto",
        "the storage backend: ssh (a real RDS), emulator (embedded), fake (in memory); "
        "auto: emulator for `all`, ssh otherwise",
        choices=_backends,
    ),
    Option(
        "emulator_data_dir",
        "",
        "backend emulator: where its disk table and images live; empty: a temporary directory",
    ),
    Option("emulator_pool_size", "100G", "backend emulator: the size of its storage pool"),
    Option(
        "emulator_data_plane",
        "json",
        "backend emulator: how its exports reach nodes: json (an exports file, for the loop "
        "initiator), nvmet (also the kernel NVMe/TCP target; root), auto (nvmet where the "
        "kernel has it)",
        choices=("json", "nvmet", "auto"),
    ),
    Option(
        "emulator_data_address",
        "",
        "backend emulator: the IP its kernel NVMe/TCP target listens on; empty: nvme_address, "
        "else rds_address",
    ),
    Option("rds_address", "127.0.0.1", "RDS control-plane address (SSH; default rdsAddress)"),
    Option("rds_port", 22, "RDS SSH port", parse=_port),
    Option("rds_user", "admin", "RDS SSH user"),
    Option("rds_ssh_key", "", "path of the SSH private key for the RDS"),
    Option("rds_known_hosts", "", "path of the known_hosts file that pins the RDS host key"),
    Option(
        "rds_insecure_ignore_host_key",
        default=False,
        help="skip host key verification (testing only)",
        kind="bool",
    ),
    Option("volume_path", "/storage-pool/metal-csi", "default base directory of disk files"),
    Option("nqn_prefix", "nqn.2000-02.com.mikrotik", "default NQN prefix of exported disks"),
    Option("nvme_address", "", "default data-plane (NVMe/TCP) address; empty: rds_address"),
    Option("nvme_port", 4420, "default NVMe/TCP port", parse=_port),
    Option(
        "fake_rds_latency",
        0.0,
        "seconds every call to the in-memory RDS sleeps (backend fake; demos and tests)",
        parse=_seconds,
    ),
    # --- the node ---------------------------------------------------------------------------
    Option("node_id", _hostname, "this node's ID (default: the hostname)", also_env=("NODE_ID",)),
    Option(
        "max_volumes_per_node",
        0,
        "attach limit reported to Kubernetes; 0 lets it decide",
        parse=_non_negative_int,
    ),
    Option(
        "initiator",
        "auto",
        "the node's initiator: nvme (nvme-cli), loop (the emulator's images as loop devices), "
        "fake (in memory); auto: loop for `all` on the emulator, fake on backend fake, nvme "
        "otherwise",
        choices=_initiators,
    ),
    Option("nvme_binary", "nvme", "the nvme-cli executable (initiator nvme)"),
    Option("sysfs_root", "/sys", "where sysfs is mounted (initiator nvme reads NVMe state there)"),
    Option(
        "loop_exports_file",
        "",
        "the emulator's <data-dir>/nvme-exports.json (initiator loop; default with the embedded "
        "emulator: its own)",
    ),
    Option(
        "topology",
        [],
        "a topology segment key=value (repeatable); enables VOLUME_ACCESSIBILITY_CONSTRAINTS",
        kind="list",
    ),
)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option as a flag whose absence is None, so the environment and file can speak."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML file of settings (keys as below, with underscores); env {ENV_PREFIX}CONFIG",
    )
    for opt in SERVE_OPTIONS:
        env = ", ".join((opt.env, *opt.also_env))
        allowed = opt.allowed()
        choices = f"; one of {', '.join(allowed)}" if allowed else ""
        default = "computed" if callable(opt.default) else repr(opt.default)
        text = f"{opt.help} [default {default}{choices}; env {env}]"
        if opt.kind == "bool":
            parser.add_argument(
                opt.flag, dest=opt.name, action=argparse.BooleanOptionalAction, help=text
            )
        elif opt.kind == "list":
            parser.add_argument(
                opt.flag, dest=opt.name, action="append", metavar="KEY=VALUE", help=text
            )
        else:
            parser.add_argument(opt.flag, dest=opt.name, type=_argparse_type(opt), help=text)


def _argparse_type(opt: Option) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return opt.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = opt.name  # argparse names the type in its error
    return convert


def default_settings(options: Iterable[Option] = SERVE_OPTIONS) -> dict[str, object]:
    return {opt.name: opt.default_value() for opt in options}


def _load_file(path: str, options: Mapping[str, Option]) -> dict[str, object]:
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
    values: dict[str, object] = {}
    for key, raw in data.items():
        opt = options.get(str(key))
        if opt is None:
            raise SettingsError(
                f"--config {path}: unknown setting {key!r} (known: {', '.join(sorted(options))})"
            )
        try:
            values[opt.name] = opt.from_file(raw)
        except ValueError as exc:
            raise SettingsError(f"--config {path}: {key}: {exc}") from None
    return values


def _from_env(environ: Mapping[str, str], options: Iterable[Option]) -> dict[str, object]:
    values: dict[str, object] = {}
    for opt in options:
        for var in (opt.env, *opt.also_env):
            if var in environ:
                try:
                    values[opt.name] = opt.from_text(environ[var])
                except ValueError as exc:
                    raise SettingsError(f"{var}: {exc}") from None
                break
    return values


def resolve_settings(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    options: Sequence[Option] = SERVE_OPTIONS,
) -> dict[str, object]:
    """
    Merge default < file < environment < flags into one dict keyed by option name.

    Raises:
        SettingsError: an unreadable file, an unknown key, a malformed value, a value
            outside an option's choices.
    """
    env = os.environ if environ is None else environ
    by_name = {opt.name: opt for opt in options}
    settings = default_settings(options)
    config_path = getattr(args, "config", None) or env.get(ENV_PREFIX + "CONFIG")
    if config_path:
        settings.update(_load_file(config_path, by_name))
    settings.update(_from_env(env, options))
    for opt in options:
        value = getattr(args, opt.name, None)
        if value is not None:
            settings[opt.name] = value
    for opt in options:
        allowed = opt.allowed()
        if allowed is not None and settings[opt.name] not in allowed:
            raise SettingsError(
                f"{opt.flag}: {settings[opt.name]!r} is not one of {', '.join(allowed)}"
            )
    return settings
