"""Field values and prompts of each role, byte-identical to the runtime's rendering
(runtime/onnx/src/prompt.rs, template.rs; sdk/src/protocol/observation.rs `render`)."""

from __future__ import annotations

from .manifest import Manifest

# Rust's `str::trim` strips Unicode White_Space; Python's `str.strip()` also strips U+001C..U+001F,
# which Rust keeps. Strip exactly Rust's set so both sides see the same bytes.
_RUST_WS = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
            "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def rtrim(s: str) -> str:
    """Rust `str::trim`."""
    return s.strip(_RUST_WS)


def render_observation(obs: dict) -> str:
    """Observation text, then each part in key order as `\\n[name] value`."""
    out = rtrim(obs.get("text", ""))
    for name in sorted((obs.get("parts") or {})):
        out += f"\n[{name}] {rtrim(obs['parts'][name])}"
    return out


def _value(m: Manifest, s: str) -> str:
    s = rtrim(s)
    return s if s else m.empty_field


def high_fields(m: Manifest, st: dict) -> dict[str, str]:
    done = [rtrim(s) for s in st.get("completedSubtasks", [])]
    return {
        "task": _value(m, st["task"]),
        "completed_subtasks": _value(m, m.list_separator.join(s for s in done if s)),
        "last_progress": _value(m, st["lastProgress"]),
        "observation": _value(m, render_observation(st["observation"])),
    }


def low_fields(m: Manifest, st: dict) -> dict[str, str]:
    return {
        "subtask": _value(m, st["subtask"]),
        "progress": _value(m, st["progress"]),
        "observation": _value(m, render_observation(st["observation"])),
    }


def progress_fields(m: Manifest, st: dict) -> dict[str, str]:
    # The runtime fills both names with the previous progress.
    prev = _value(m, st["previousProgress"])
    return {
        "subtask": _value(m, st["subtask"]),
        "progress": prev,
        "previous_progress": prev,
        "action": _value(m, st["action"]),
        "observation": _value(m, render_observation(st["observation"])),
    }


FIELDS = {"high": high_fields, "low": low_fields, "progress": progress_fields}


def render_state(m: Manifest, role: str, state: dict) -> str:
    """The prompt the runtime builds for `role` from a recorded state."""
    return m.template(role).render(FIELDS[role](m, state), m.empty_field)


def target_text(prompt: str, output: str) -> str:
    """What the model must generate after `prompt`: the runtime decodes with a leading space
    when the prompt does not end in whitespace (runtime/onnx/src/policy.rs)."""
    lead = "" if prompt and prompt[-1] in _RUST_WS else " "
    return lead + output
