"""Shared machinery of the Hydra subcommands: finding conf/, checking overrides before any work,
turning errors into one paragraph, unique run dirs, and the closing table of a sweep.

No torch here: `gan train --help` and config errors answer without loading it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf
from rich.logging import RichHandler

from gancli.core.errors import GanError
from gancli.core.registry import did_you_mean
from gancli.core.rules import check_values, rules_text

SUMMARY_FILE = "summary.json"  # one per run dir: the sweep table reads them

# Keys a command once had, and what replaced them: a one-paragraph answer instead of "unknown key".
REPLACED_KEYS = {
    "train": {
        "trainer.tensorboard": (
            "trainer.tensorboard was replaced by the logger config group: logger=tensorboard (the default: "
            "TensorBoard when installed), logger=none (metrics.jsonl only, as trainer.tensorboard=false was), "
            "logger=csv, logger=mlflow, logger=wandb, or several: logger=[tensorboard,csv]."
        )
    }
}


def conf_dir() -> Path:
    """conf/ ships inside the package in a wheel and sits at the repo top in a checkout."""
    pkg = Path(__file__).resolve().parents[1]
    for candidate in (pkg / "conf", pkg.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise GanError(
        f"gancli's conf/ folder is missing (looked in {pkg / 'conf'} and {pkg.parent / 'conf'}); reinstall gancli."
    )


_UID = secrets.token_hex(3)


def register_resolvers() -> None:
    """`${gan_uid:}`: a per-process random suffix, so two runs started in the same second never share a dir."""
    if not OmegaConf.has_resolver("gan_uid"):
        OmegaConf.register_new_resolver("gan_uid", lambda: _UID)
    if not OmegaConf.has_resolver("gan_groups"):  # the user-facing config groups, for --help
        OmegaConf.register_new_resolver("gan_groups", config_groups_text)
    if not OmegaConf.has_resolver("floordiv"):  # e.g. a budget of D updates shared out over n_critic
        OmegaConf.register_new_resolver("floordiv", lambda a, b: int(a) // max(1, int(b)))
    if not OmegaConf.has_resolver("gan_rules"):  # the value rules, for --help
        OmegaConf.register_new_resolver("gan_rules", command_rules_text)
    if not OmegaConf.has_resolver("gan_plugin_conf"):  # installed plugins' conf/ folders on the search path
        from gancli.core.plugins import plugin_conf_dirs

        OmegaConf.register_new_resolver("gan_plugin_conf", plugin_conf_dirs)
    from gancli.cli import schema

    schema.register()


def check_command_values(cfg: dict, config_name: str) -> None:
    """A command's value rules; `gan train`'s come from the chosen family, networks and dataset too (an
    import of the families, so torch, only when a train config is checked)."""
    if config_name == "train":
        from gancli.algorithms.config_rules import check_train_config
        from gancli.training.loggers import check_loggers

        check_train_config(cfg)
        check_loggers(cfg)
    else:
        check_values(cfg, config_name)


def command_rules_text(config_name: str) -> str:
    if config_name == "train":
        from gancli.algorithms.config_rules import train_rules_text
        from gancli.training.loggers import logger_rules_text

        return f"{train_rules_text()}\n{logger_rules_text()}"
    return rules_text(config_name)


def config_groups_text() -> str:
    """Each config group and its options, gancli's and the installed plugins' (a `_name.yaml` is a part the
    options include, not an option)."""
    from gancli.core.plugins import plugin_conf_dirs

    roots = [conf_dir(), *(Path(d.removeprefix("file://")) for d in plugin_conf_dirs())]
    options: dict[str, set[str]] = {}
    for root in roots:
        for g in root.iterdir():
            if g.is_dir() and g.name != "hydra" and not g.name.startswith("_"):
                options.setdefault(g.name, set()).update(
                    p.stem for p in g.glob("*.yaml") if not p.stem.startswith("_")
                )  # shared parts
    return "\n".join(f"{name}: {', '.join(sorted(opts))}" for name, opts in sorted(options.items()))


def print_error(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}")


class ConsoleHandler(RichHandler):
    """Log lines that share the console with the live progress bar."""

    def __init__(self, **kwargs):
        kwargs.setdefault("show_path", False)
        kwargs.setdefault("markup", False)
        kwargs.setdefault("rich_tracebacks", False)
        super().__init__(**kwargs)


# ----------------------------------------------------------------------------------------- validation


def _split_args(argv: list[str]):
    from hydra._internal.utils import get_args_parser

    return get_args_parser().parse_args(argv)


def _override_variants(overrides: list[str]) -> Iterable[list[str]]:
    """Every value of every sweep once (not the product): enough to check each key and choice."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    base, sweeps = [], []
    for i, o in enumerate(parsed):
        if o.is_sweep_override():
            try:
                values = list(o.sweep_string_iterator())
            except Exception:  # range/interval sweeps for optimising sweepers: left to the sweeper
                base.append(None)
                continue
            prefix = overrides[i].split("=", 1)[0]
            base.append(f"{prefix}={values[0]}")
            sweeps.append((i, prefix, values[1:]))
        else:
            base.append(overrides[i])
    yield [b for b in base if b is not None]
    for i, prefix, values in sweeps:
        for v in values:
            variant = list(base)
            variant[i] = f"{prefix}={v}"
            yield [b for b in variant if b is not None]


def _keys_under(config_name: str, parent: str, overrides: list[str] = ()) -> list[str]:
    """The keys under `parent` in the config the user's group choices compose (model=progan has other model
    keys than the default preset)."""
    from hydra import compose

    choices = [o for o in overrides if "=" in o and not o.startswith(("+", "~")) and "." not in o.split("=", 1)[0]]
    try:
        cfg = compose(config_name=config_name, overrides=choices)
    except Exception:  # a choice is itself the bad key (a top-level typo): the defaults' keys, then
        cfg = compose(config_name=config_name, overrides=[])
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return sorted(str(k) for k in node.keys()) if OmegaConf.is_dict(node) else []


def _group_options(group: str) -> list[str]:
    """The options of a config group (Hydra names them for `group=x`, not for `group=[a,x]`)."""
    from hydra.core.global_hydra import GlobalHydra

    try:
        return list(GlobalHydra.instance().config_loader().get_group_options(group))
    except Exception:  # no Hydra context: the message goes without them
        return []


def _explain(exc: Exception, config_name: str, overrides: list[str]) -> str:
    """Hydra's composition errors, rewritten to name the key or choice and what is valid."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    if isinstance(exc, MissingConfigException):
        missing = str(exc.missing_cfg_file or "")
        group, _, choice = missing.rpartition("/")
        options = sorted(o for o in (exc.options or _group_options(group)) if not o.startswith("_"))
        if group and options:
            return f"unknown {group} '{choice}'; choose one of: {', '.join(options)}." + did_you_mean(choice, options)
        return str(exc).splitlines()[0]
    if isinstance(exc, ValueError) and "Config group override" in str(exc):  # group=null
        group = next((o.split("=", 1)[0] for o in overrides if o.endswith("=null") and "." not in o), "the group")
        options = ", ".join(sorted(o for o in _group_options(group) if not o.startswith("_")))
        return (
            f"{group}=null: {group} is a config group; choose one of its options ({options}) or a list of "
            f"them: {group}=[a,b]."
        )
    if isinstance(exc, OverrideParseException):
        return f"could not parse the override: {exc}. Overrides look like key=value (e.g. trainer.steps=100)."
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and getattr(cause, "full_key", None):
        full_key = cause.full_key
        parent, _, leaf = full_key.rpartition(".")
        try:
            keys = _keys_under(config_name, parent, overrides)
        except Exception:
            keys = []
        where = f"under '{parent}'" if parent else "at the top level"
        valid = f" Keys {where}: {', '.join(keys)}." if keys else ""
        hint = did_you_mean(leaf, keys).replace("'", f"'{parent}." if parent else "'", 1) if keys else ""
        return (
            f"unknown config key '{full_key}'.{valid}{hint} "
            f"(To add a new key on purpose, prefix it with '+': +{full_key}=...)"
        )
    if isinstance(cause, ValidationError):
        key = getattr(cause, "full_key", "") or "?"
        first = str(cause).splitlines()[0]
        return f"bad value for '{key}': {first}."
    text = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in text if line.strip() and not line.startswith("Set the environment"))


def resolved(cfg) -> dict:
    """The config as plain data with its interpolations resolved; a broken interpolation is a GanError."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:  # omegaconf raises several kinds, each naming the key
        raise GanError(f"the config does not resolve: {str(exc).splitlines()[0]}") from None


def probe_output_dir(config_name: str, overrides: list[str], multirun: bool, config_dir: Path | None = None) -> None:
    """The run (or sweep) dir Hydra will create must be creatable: its nearest existing parent a writable
    folder. Checked before any work, so a bad hydra.run.dir is one message, not Hydra's traceback."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir or conf_dir()), version_base="1.3"):
            hc = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True).hydra
            target = Path(str(hc.sweep.dir if multirun else hc.run.dir)).expanduser()
    except Exception:  # composition problems were reported by validate_overrides already
        return
    finally:
        GlobalHydra.instance().clear()
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        target.mkdir(parents=True, exist_ok=True)  # Hydra would create it next anyway
        probe = target / f".gancli-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise GanError(
            f"cannot create or write the run dir {target}: {exc.strerror or exc}. Choose another {key}=<folder>."
        ) from None


def validate_overrides(
    config_name: str, overrides: list[str], require_values: bool = True, config_dir: Path | None = None
) -> list:
    """Compose the config once per sweep value, in-process, so mistakes fail before any work is done.
    Returns the composed configs (one without sweeps), for callers that train in-process."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    user = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    for o in user:
        replaced = REPLACED_KEYS.get(config_name, {}).get(o.split("=", 1)[0].lstrip("+~"))
        if replaced:
            raise GanError(replaced)
    composed = []
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir or conf_dir()), version_base="1.3"):
            try:
                variants = list(_override_variants(user))
            except HydraException as exc:
                raise GanError(_explain(exc, config_name, user)) from None
            for variant in variants:
                try:
                    cfg = compose(config_name=config_name, overrides=variant)
                except (HydraException, ValueError) as exc:
                    raise GanError(_explain(exc, config_name, variant)) from None
                try:
                    missing = sorted(OmegaConf.missing_keys(cfg)) if require_values else []
                except Exception as exc:  # a value an interpolation cannot take (${dataset.steps} = 'abc')
                    raise GanError(f"bad value: {str(exc).splitlines()[0]}.") from None
                if missing:
                    raise GanError(
                        f"missing required value(s): {', '.join(missing)}. Set them on the command line, "
                        f"e.g. {missing[0]}=..."
                    )
                if require_values:
                    check_command_values(resolved(cfg), config_name)
                composed.append(cfg)
    finally:
        GlobalHydra.instance().clear()
    return composed


# ----------------------------------------------------------------------------------------- running


LAUNCHERS = {  # hydra/launcher=<name> → (the module its plugin installs, the pip package)
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
}


def check_launcher(overrides: list[str]) -> None:
    """A launcher whose plugin is not installed is one message naming the extra, not Hydra's traceback."""
    import importlib.util

    for o in overrides:
        key, _, name = o.lstrip("+").partition("=")
        if key != "hydra/launcher" or name == "basic":
            continue
        if name not in LAUNCHERS:
            raise GanError(f"unknown hydra/launcher '{name}'; gancli knows: basic, {', '.join(LAUNCHERS)}.")
        module, package = LAUNCHERS[name]
        if importlib.util.find_spec(module) is None:
            raise GanError(
                f"hydra/launcher={name} needs Hydra's {package} plugin, which is not installed: "
                f"pip install 'gancli[launchers]' (or pip install {package}), then run the sweep again."
            )


class RecordSweepDir(Callback):
    """Remembers the sweep dir in the launching process, for the closing table."""

    sweep_dir: str | None = None

    def on_multirun_start(self, config, **kwargs) -> None:
        RecordSweepDir.sweep_dir = str(config.hydra.sweep.dir)


def write_summary(run_dir: str | os.PathLike, summary: dict) -> None:
    path = Path(run_dir) / SUMMARY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    os.replace(tmp, path)


def job_context() -> tuple[str, bool, list[str]]:
    """(output dir, is this a multirun job, the job's overrides)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    return hc.runtime.output_dir, hc.mode == RunMode.MULTIRUN, list(hc.overrides.task)


def as_user_error(exc: Exception) -> GanError | None:
    """The failures a user can cause or fix, as one paragraph; None for anything else (a bug)."""
    if isinstance(exc, GanError):
        return exc
    if isinstance(exc, OSError):  # a full disk, a permission, a vanished folder: say which file
        where = f" ({exc.filename})" if exc.filename else ""
        return GanError(f"{exc.strerror or exc}{where}. Checkpoints written before are intact.")
    if type(exc).__name__ == "OutOfMemoryError":  # torch's, named so that this module need not import torch
        return GanError(
            f"out of device memory ({str(exc).splitlines()[0]}). Lower trainer.batch_size, or set "
            f"trainer.amp=true; checkpoints written before are intact."
        )
    return None


def guarded(task: Callable[[object], dict | None]) -> Callable[[object], dict | None]:
    """Wrap a task: GanError → one paragraph, exit 2 (single run) or a failed job recorded (sweep)."""

    def wrapper(cfg):
        run_dir, multirun, overrides = job_context()
        try:
            return task(cfg)
        except KeyboardInterrupt:  # a second Ctrl-C while the first one was being handled
            print_error("interrupted. The last checkpoint written is intact.")
            raise SystemExit(130) from None
        except Exception as exc:
            error = as_user_error(exc)
            if error is None and not multirun:  # a bug: Hydra prints it in full
                raise
            if error is None:  # a bug inside a sweep: keep its traceback in the job's log, let the sweep go on
                logging.getLogger("gancli").exception("job crashed")
                error = GanError(f"crashed: {type(exc).__name__}: {exc} (traceback in the job's train.log)")
        if multirun:
            write_summary(run_dir, {"status": "failed", "overrides": overrides, "error": str(error)})
            logging.getLogger("gancli").error("job failed: %s", error)
            return None
        print_error(str(error))
        raise SystemExit(error.exit_code)

    wrapper.__name__ = getattr(task, "__name__", "task")
    wrapper.__module__ = getattr(task, "__module__", __name__)
    return wrapper


def run_app(
    name: str,
    config_name: str,
    task: Callable,
    argv: list[str] | None,
    prepare: Callable[[list[str]], list[str]] | None = None,
    sweep_table: Callable[[Path], None] | None = None,
    schemas: Callable[[], None] | None = None,
    config_dir: Path | None = None,
    writes_run_dir: bool = False,
) -> int:
    """Check the overrides, then hand the arguments to a Hydra app (which parses sys.argv itself).
    schemas: registers the command's own structured configs before anything is composed; config_dir:
    where the command's primary config `<config_name>.yaml` lives (gancli's conf/; a plugin's own)."""
    import hydra

    argv = list(sys.argv[1:] if argv is None else argv)
    register_resolvers()
    try:
        if schemas is not None:
            schemas()
        if prepare is not None:
            argv = prepare(argv)
        args = _split_args(argv)
        check_launcher(args.overrides)
        if not (args.help or args.hydra_help or args.info or args.shell_completion):
            validate_overrides(config_name, args.overrides, require_values=args.cfg is None, config_dir=config_dir)
            if writes_run_dir and args.cfg is None:
                probe_output_dir(config_name, next(iter(_override_variants(args.overrides))), args.multirun, config_dir)
    except GanError as exc:
        print_error(str(exc))
        return exc.exit_code

    RecordSweepDir.sweep_dir = None
    sys.argv = [f"gan-{name}", *argv]
    app = hydra.main(version_base="1.3", config_path=str(config_dir or conf_dir()), config_name=config_name)(task)
    code = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    if args.multirun and RecordSweepDir.sweep_dir and sweep_table is not None:
        failed = sweep_table(Path(RecordSweepDir.sweep_dir))
        code = code or (1 if failed else 0)
    return code
