"""The vidhook plugin SDK for Python: the bindings componentize-py generates from ``wit/``
(``wit_world``) and what the Rust SDK offers — speaking-time estimates, fitting a script to the
video model's audio limit, rendering editor templates with a JSON context, settings and logging —
with the same rules, so a plugin plans the same whatever language it is written in.

A plugin's ``app.py`` defines the world's class, its methods wrapped in ``exported`` so an
uncaught exception's traceback reaches the render's logs::

    import wit_world
    from vidhook_sdk import exported, skip

    class WitWorld(wit_world.WitWorld):
        @exported
        def plan(self, content, draft):
            return skip(f"not yet: {content.title}")
"""

import functools
import json
import re
import traceback

from componentize_py_types import Err
from wit_world.imports import host, types
from wit_world.imports.types import (  # noqa: F401 (re-exported for plugins)
    Content,
    Decision_Generate,
    Decision_Skip,
    Resolution,
    Speech,
    TooLong,
    VideoPlan,
)

from . import locale, text  # noqa: F401 (re-exported for plugins)


def invalid_content(message: str) -> Err:
    """The content cannot be turned into a video (e.g. an empty body): ``raise`` it."""
    return Err(types.PluginError_InvalidContent(message))


def template_error(message: str) -> Err:
    """An editor template failed to render: ``raise`` it."""
    return Err(types.PluginError_Template(message))


def config_error(message: str) -> Err:
    """The plugin's configuration is missing or wrong: ``raise`` it."""
    return Err(types.PluginError_Config(message))


def internal_error(message: str) -> Err:
    """Anything else: ``raise`` it."""
    return Err(types.PluginError_Internal(message))


def skip(reason: str) -> Decision_Skip:
    """Make no video; the reason is shown to people."""
    return Decision_Skip(reason)


def generate(plans: list) -> Decision_Generate:
    """Make these videos."""
    return Decision_Generate(plans)


def exported(method):
    """Wraps one of the world's methods: a raised ``Err`` is the run's typed error; any other
    exception is logged with its traceback (so it reaches the render's logs under the plugin's
    name@version) and fails the run."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Err:
            raise
        except BaseException as e:
            host.log(
                host.Level.ERROR,
                f"uncaught exception in {method.__name__}: {e!r}\n{traceback.format_exc()}",
            )
            raise

    return wrapper


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SPECIAL = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)


def _parse_number(raw: str) -> float | None:
    """A number as Rust's ``f64`` parser reads it (no underscores); None when it does not."""
    s = text.trim(raw)
    if _NUMBER.fullmatch(s) or _SPECIAL.fullmatch(s):
        return float(s)
    return None


def max_audio_seconds(resolution: Resolution) -> float:
    """The longest narration, in seconds, the source's video hosts accept at a resolution: what
    the host says (the reserved settings ``vidhook.max_audio_seconds.720p`` and ``….1080p``),
    else OmniHuman v1.5's documented limits (60 s at 720p, 30 s at 1080p)."""
    key, documented = (
        ("vidhook.max_audio_seconds.720p", 60.0)
        if resolution == Resolution.P720
        else ("vidhook.max_audio_seconds.1080p", 30.0)
    )
    value = host.config(key)
    seconds = _parse_number(value) if value is not None else None
    return seconds if seconds is not None and seconds > 0 else documented


def parse_resolution(value: str) -> Resolution:
    """Parses "720p" / "1080p" as written in configuration."""
    trimmed = text.trim(value)
    if trimmed == "720p":
        return Resolution.P720
    if trimmed == "1080p":
        return Resolution.P1080
    raise config_error(f'resolution must be "720p" or "1080p", not {json.dumps(value, ensure_ascii=False)}')


def render(template: str, context) -> str:
    """Renders an editor template with a context (serialised as JSON)."""
    return render_json(template, json.dumps(context, ensure_ascii=False))


def render_json(template: str, context_json: str) -> str:
    """Renders an editor template with a context already serialised as JSON."""
    try:
        return host.render(template, context_json)
    except Err as e:
        raise template_error(f"template {json.dumps(template, ensure_ascii=False)}: {e.value}") from None


def fields_json(content: Content) -> str:
    """The CMS's fields as JSON text to splice into a context unchanged, or ``null``."""
    try:
        json.loads(content.fields_json)
        return content.fields_json
    except ValueError:
        return "null"


def config(key: str) -> str | None:
    """A raw setting (the manifest's ``[config]``, overridden by the source's)."""
    return host.config(key)


def config_or(key: str, default: str) -> str:
    """A setting from the plugin's configuration, or ``default`` when it is not set."""
    value = host.config(key)
    return default if value is None else value


def config_number(key: str, default: float) -> float:
    """A numeric setting; a value that does not parse is a configuration error, not a default."""
    raw = host.config(key)
    if raw is None:
        return default
    value = _parse_number(raw)
    if value is None:
        raise config_error(f"{key} must be a number, not {json.dumps(raw, ensure_ascii=False)}")
    return value


def log(level: host.Level, message: str) -> None:
    """Logs a line at a level (stored with the render, shown by ``vidhook plugin test``)."""
    host.log(level, message)


def info(message: str) -> None:
    """Logs at info level."""
    host.log(host.Level.INFO, message)
