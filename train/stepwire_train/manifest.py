"""Policy manifests: the role templates that are the one source of prompts for training and
serving. Parsing mirrors runtime/onnx/src/manifest.rs and template.rs (same placeholders, same
brace escapes, same defaults), so a template that trains here loads there."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .util import UserError, file_in

# The placeholders each role may use (runtime/onnx/src/manifest.rs `role_fields`).
ROLE_FIELDS = {
    "high": ("task", "completed_subtasks", "last_progress", "observation"),
    "low": ("subtask", "progress", "observation"),
    "progress": ("subtask", "progress", "previous_progress", "action", "observation"),
}
RUNTIME_ROLES = ("high", "low", "progress")
# Who picks subtasks and who writes progress (runtime/onnx/src/manifest.rs `PlannerSource`,
# `ProgressSource`): the model, or one of the SDK's deterministic policies (sdk/src/rules.rs).
PLANNERS = ("model", "whole-task")
TRACKERS = ("model", "rules", "none", "history")


class Template:
    """`{field}` placeholders, `{{`/`}}` for literal braces (runtime/onnx/src/template.rs)."""

    def __init__(self, text: str):
        self.text = text
        self.segments: list[tuple[str, str]] = []  # ("text", s) or ("field", name)
        lit: list[str] = []
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c == "{" and i + 1 < n and text[i + 1] == "{":
                lit.append("{")
                i += 2
            elif c == "}" and i + 1 < n and text[i + 1] == "}":
                lit.append("}")
                i += 2
            elif c == "{":
                j = i + 1
                name = []
                while True:
                    if j >= n:
                        raise ValueError(f"unclosed placeholder {{{''.join(name)}")
                    ch = text[j]
                    if ch == "}":
                        break
                    if not (ch.isalnum() or ch == "_"):
                        raise ValueError(f"invalid character {ch!r} in placeholder "
                                         f"{{{''.join(name)}...}} (use {{{{ for a literal brace)")
                    name.append(ch)
                    j += 1
                if not name:
                    raise ValueError("empty placeholder {}")
                if lit:
                    self.segments.append(("text", "".join(lit)))
                    lit = []
                self.segments.append(("field", "".join(name)))
                i = j + 1
            elif c == "}":
                raise ValueError("single '}' (write }} for a literal brace)")
            else:
                lit.append(c)
                i += 1
        if lit:
            self.segments.append(("text", "".join(lit)))

    def fields(self) -> list[str]:
        return [v for k, v in self.segments if k == "field"]

    def prefix(self) -> str:
        """The literal text before the first placeholder: the runtime's cacheable prefix."""
        if len(self.segments) > 1 and self.segments[0][0] == "text":
            return self.segments[0][1]
        return ""

    def render(self, values: dict[str, str], missing: str) -> str:
        return "".join(v if k == "text" else values.get(v, missing) for k, v in self.segments)


@dataclass
class Manifest:
    path: Path
    templates: dict[str, Template]
    max_new_tokens: dict[str, int] = field(default_factory=dict)
    stop: list[str] = field(default_factory=list)
    empty_field: str = "none"
    list_separator: str = "; "
    done_separator: str = " ||| "
    done_token: str = "done"
    continue_token: str = "continue"
    admissible: bool = True  # [low] admissible: the low level picks among admissible actions
    planner: str = "model"  # [high] planner
    tracker: str = "model"  # [progress] tracker
    raw: dict = field(default_factory=dict)

    def model_roles(self) -> tuple[str, ...]:
        """The roles the model itself must serve: those no deterministic policy replaces."""
        return tuple(r for r in RUNTIME_ROLES
                     if not (r == "high" and self.planner != "model")
                     and not (r == "progress" and self.tracker != "model"))

    def template(self, role: str) -> Template:
        if role not in self.templates:
            raise UserError(f"{self.path}: templates.{role}: missing; this manifest has templates "
                            f"for {', '.join(sorted(self.templates)) or 'no role'}")
        return self.templates[role]

    def low_output(self, action: str, subtask_done: bool) -> str:
        flag = self.done_token if subtask_done else self.continue_token
        return f"{action}{self.done_separator}{flag}"


def load_manifest(path: str | Path, roles=None) -> Manifest:
    """Loads a manifest file (or a policy directory's stepwire.toml). `roles`: the roles that must
    have a template (default: every runtime role)."""
    p = file_in(path, "stepwire.toml", "manifest not found (pass --manifest FILE, e.g. "
                "train/manifests/compact.toml)")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{p}: invalid TOML: {e}") from None
    return parse_manifest(raw, p, roles)


def parse_manifest(raw: dict, path: Path, roles=None) -> Manifest:
    def err(msg: str) -> UserError:
        return UserError(f"{path}: {msg}")

    known = {"model", "generation", "templates", "low", "roles", "high", "progress"}
    for k in raw:
        if k not in known:
            raise err(f"unknown table [{k}] (expected {', '.join(sorted(known))})")
    raw_t = raw.get("templates")
    if not raw_t:
        raise err("no [templates] table: training renders every prompt with the manifest's role "
                  "templates (see train/manifests/compact.toml for one)")
    templates = {}
    for role, text in raw_t.items():
        if role not in ROLE_FIELDS:
            raise err(f"templates.{role}: unknown role (expected {', '.join(ROLE_FIELDS)})")
        if not isinstance(text, str):
            raise err(f"templates.{role}: must be a string")
        try:
            t = Template(text)
        except ValueError as e:
            raise err(f"templates.{role}: {e}") from None
        bad = [f for f in t.fields() if f not in ROLE_FIELDS[role]]
        if bad:
            raise err(f"templates.{role}: unknown placeholder {{{bad[0]}}} (the {role} role fills "
                      f"{', '.join(ROLE_FIELDS[role])})")
        templates[role] = t
    wanted = RUNTIME_ROLES if roles is None else tuple(roles)
    for role in wanted:
        if role not in templates:
            raise err(f"templates.{role}: missing (needed for the {role} role)")

    gen = raw.get("generation", {})
    mnt = gen.get("max_new_tokens", {})
    max_new = ({r: int(mnt) for r in RUNTIME_ROLES} if isinstance(mnt, int)
               else {r: int(v) for r, v in mnt.items()})
    low = raw.get("low", {})
    m = Manifest(
        path=path, templates=templates, max_new_tokens=max_new,
        stop=list(gen.get("stop", [])),
        empty_field=gen.get("empty_field", "none"),
        list_separator=gen.get("list_separator", "; "),
        done_separator=low.get("done_separator", " ||| "),
        done_token=low.get("done_token", "done"),
        continue_token=low.get("continue_token", "continue"),
        admissible=low.get("admissible", True),
        raw=raw,
    )
    if not isinstance(m.admissible, bool):
        raise err("low.admissible: must be true or false")
    if not m.done_separator.strip():
        raise err("low.done_separator: must contain a non-space character")
    if not m.done_token.strip() or not m.continue_token.strip() or m.done_token == m.continue_token:
        raise err("low.done_token / low.continue_token: must be two different non-empty words")
    m.planner = str(raw.get("high", {}).get("planner", "model"))
    if m.planner not in PLANNERS:
        raise err(f"high.planner: {m.planner!r} is not one of {', '.join(PLANNERS)}")
    m.tracker = str(raw.get("progress", {}).get("tracker", "model"))
    if m.tracker not in TRACKERS:
        raise err(f"progress.tracker: {m.tracker!r} is not one of {', '.join(TRACKERS)}")
    return m


def toml_string(s: str, multiline: bool = False) -> str:
    """A TOML string for `s`: with `multiline`, a multi-line literal when it can hold it
    (readable templates), else a basic string (JSON escapes are valid TOML escapes)."""
    import json

    if multiline and "\n" in s and "'''" not in s and not s.endswith("'"):
        return "'''\n" + s + "'''"
    return json.dumps(s, ensure_ascii=False)


def runtime_tables(m: Manifest, tracker: str | None = None, temperature: float | None = None) -> str:
    """[generation], [templates], [low], [high] and [progress] as TOML text, for a policy's
    stepwire.toml (`tracker` overrides the manifest's; `temperature` is the policy's default
    decoding)."""
    gen = m.raw.get("generation", {})
    lines = ["[generation]"]
    if temperature is not None:
        lines.append(f"temperature = {float(temperature)}")
    mnt = gen.get("max_new_tokens")
    if isinstance(mnt, int):
        lines.append(f"max_new_tokens = {mnt}")
    elif mnt:
        lines.append("max_new_tokens = { " + ", ".join(f"{k} = {int(v)}" for k, v in mnt.items())
                     + " }")
    if "stop" in gen:
        lines.append("stop = [" + ", ".join(toml_string(s) for s in gen["stop"]) + "]")
    for k in ("empty_field", "list_separator"):
        if k in gen:
            lines.append(f"{k} = {toml_string(gen[k])}")
    lines += ["", "[templates]"]
    for role in RUNTIME_ROLES:
        if role in m.templates:
            lines.append(f"{role} = {toml_string(m.templates[role].text, multiline=True)}")
    lines += ["", "[low]",
              f"done_separator = {toml_string(m.done_separator)}",
              f"done_token = {toml_string(m.done_token)}",
              f"continue_token = {toml_string(m.continue_token)}"]
    if not m.admissible:
        lines.append("admissible = false")
    lines.append("")
    if m.planner != "model":
        lines += ["[high]", f"planner = {toml_string(m.planner)}", ""]
    tracker = tracker or m.tracker
    if tracker != "model":
        lines += ["[progress]", f"tracker = {toml_string(tracker)}", ""]
    return "\n".join(lines)
