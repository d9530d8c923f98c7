"""The configuration reference, made from the pydantic models so that it cannot drift from the code: every key's
type, default and description as YAML with comments (`polyir config train|compare`) and as the Markdown page
docs/configuration.md (`polyir config --markdown`, checked by a test to be up to date)."""

from __future__ import annotations

import json
import textwrap
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from polyir.config import CompareConfig, TrainConfig

CONFIGS = {"train": TrainConfig, "compare": CompareConfig}
WIDTH = 119
_BOUNDS = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", "≥"), (annotated_types.Lt, "lt", "<"),
           (annotated_types.Le, "le", "≤"))


@dataclass(frozen=True)
class Key:
    """One configuration key: where it is, what it takes, what it is without the user, and what it means."""

    path: str
    type: str
    default: object  # PydanticUndefined when required
    description: str
    section: type[BaseModel] | None  # the model of a nested section (or of a list's items)
    repeated: bool  # a list of sections


def _section(annotation) -> tuple[type[BaseModel] | None, bool]:
    """The section model inside `X`, `X | None` or `list[X]`, and whether it is a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list:
        inner, _ = _section(args[0])
        return inner, inner is not None
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [_section(arg) for arg in args if arg is not type(None)]
        return found[0] if len(found) == 1 else (None, False)
    return None, False


def _type_name(annotation) -> str:
    if annotation is type(None):
        return "null"
    if annotation is Path:
        return "path"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is typing.Annotated:
        return _type_name(args[0]) + _bounds(args[1:])
    if origin is list:
        return f"list[{_type_name(args[0])}]"
    if origin is dict:
        return f"map[{_type_name(args[0])}, {_type_name(args[1])}]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(metadata) -> str:
    parts = [f"{sign} {getattr(item, attr)}" for item in metadata for kind, attr, sign in _BOUNDS
             if isinstance(item, kind)]
    parts += ["not empty" for item in metadata if isinstance(item, annotated_types.MinLen) and item.min_length]
    return f" ({', '.join(parts)})" if parts else ""


def keys(model: type[BaseModel], prefix: str = "") -> list[Key]:
    """Every key of a configuration model, each section's keys after it; a model's own keys before those it
    inherits (output_dir before the model settings every run shares)."""
    found = []
    own = [name for name in model.model_fields if name in vars(model).get("__annotations__", {})]
    for name in [*own, *(name for name in model.model_fields if name not in own)]:
        info = model.model_fields[name]
        section, repeated = _section(info.annotation)
        found.append(Key(prefix + name, _type_name(info.annotation) + _bounds(info.metadata),
                         info.get_default(call_default_factory=True), info.description or "", section, repeated))
        if section is not None:
            found += keys(section, f"{prefix}{name}{'[]' if repeated else ''}.")
    return found


def _value(value) -> str:
    """A default as YAML reads it back (PyYAML takes `3e-05` for a string, `3.0e-05` for a number)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Path):
        value = str(value)
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6).strip()
    return text.removesuffix("\n...")


def yaml_text(name: str) -> str:
    """The configuration `name` (train or compare) as YAML: every key at its default, its description above it.
    Required keys are left empty; optional sections (absent by default) are shown commented out."""
    model = CONFIGS[name]
    title = f"polyir {name} configuration, every key at its default (generated from polyir.config). {model.__doc__}"
    lines = [indent + ("" if kind == "key" else "# ") + text for kind, indent, text in _section_lines(model, "")]
    return "\n".join([*_wrap(title, ""), *lines]) + "\n"


Line = tuple[str, str, str]  # (kind: note, key or off (a key commented out), indentation, text)


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), WIDTH - len(indent), initial_indent=indent + "# ",
                         subsequent_indent=indent + "# ")


def _section_lines(model: type[BaseModel], indent: str) -> list[Line]:
    lines: list[Line] = []
    for key in keys(model):
        if "." in key.path:
            continue
        lines += [("note", indent, text[len(indent) + 2:]) for text in _wrap(key.description, indent)]
        required = key.default is PydanticUndefined
        note = ", required" if required else ""
        if key.section is None:
            value = "" if required else " " + _value(key.default)
            lines.append(("key", indent, f"{key.path}:{value}  # {key.type}{note}"))
            continue
        inner = _section_lines(key.section, indent + "  ")
        if key.repeated:  # one item of the list, at its defaults
            lines.append(("key", indent, f"{key.path}:  # a list of sections{note}"))
            first = next(i for i, (kind, _, _) in enumerate(inner) if kind != "note")
            inner[first] = (inner[first][0], indent, "- " + inner[first][2])
        elif not required and key.default is None:  # an optional section: shown, commented out
            lines.append(("off", indent, f"{key.path}:  # an optional section, absent by default"))
            inner = [("off" if kind == "key" else kind, level, text) for kind, level, text in inner]
        else:
            lines.append(("key", indent, f"{key.path}:" + ("  # required" if required else "")))
        lines += inner
    return lines


def markdown() -> str:
    """docs/configuration.md: one table per configuration (key, type, default, description)."""
    out = ["# Configuration reference", "",
           "Generated from polyir's pydantic models (`polyir/config.py`) by `polyir config --markdown > "
           "docs/configuration.md`; a test fails when this page and the code disagree. `polyir config train` and "
           "`polyir config compare` print the same as YAML with comments. Unknown keys and wrong values exit 2 "
           "naming the key.", ""]
    for name, model in CONFIGS.items():
        out += [f"## polyir {name}", "", " ".join((model.__doc__ or "").split()), "",
                "| key | type | default | description |", "|---|---|---|---|"]
        for key in keys(model):
            default = ("required" if key.default is PydanticUndefined else "" if key.section is not None
                       else f"`{_value(key.default)}`")
            about = " ".join(key.description.split())
            detail = " ".join((key.section.__doc__ or "").split()) if key.section is not None else ""
            if detail and detail != about:
                about = f"**{about}** {detail}"
            out.append(f"| `{key.path}` | {key.type.replace('|', '&#124;')} | {default} | {about} |")
        out.append("")
    return "\n".join(out)
