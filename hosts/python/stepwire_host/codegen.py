"""Generates `stepwire_host/protocol.py` from the repository's JSON Schemas.

    python -m stepwire_host.codegen [--schemas DIR] [--check]

The schemas are themselves generated from the Rust protocol types (`stepwire schema`), so the
Python types follow the Rust ones through this script; `--check` (and a test) fails when the
committed module differs from what the schemas give, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import keyword
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

PACKAGE = Path(__file__).resolve().parent
DEFAULT_SCHEMAS = PACKAGE.parent.parent.parent / "schemas"
OUTPUT = PACKAGE / "protocol.py"
# Files that only repeat other files' definitions as unions of a plane's messages.
SKIPPED = {"agent-plane.json", "environment-plane.json", "protocol.json"}


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("/", "_").replace("-", "_").split("_") if part)


class Generator:
    def __init__(self) -> None:
        self.defs: Dict[str, Dict[str, Any]] = {}
        self.order: List[str] = []
        self.out: List[str] = []
        # Names are written as strings ('AugmentedState'): the module evaluates its annotations
        # (so `Required` is seen) and a type may be named before it is defined.
        self.quote_refs = True

    def add(self, name: str, schema: Dict[str, Any]) -> None:
        if name in self.defs:
            if self.defs[name] != schema:
                raise SystemExit(f"two different schemas are both called {name}")
            return
        self.defs[name] = schema
        self.order.append(name)

    # -- types ---------------------------------------------------------------------------
    def type_of(self, schema: Any, owner: str) -> str:
        """The Python annotation for a schema (definitions are referenced by name)."""
        if schema is True or schema == {}:
            return "Any"
        if "$ref" in schema:
            target = schema["$ref"].rsplit("/", 1)[-1]
            return repr(target) if self.quote_refs else target
        if "const" in schema:
            return f"Literal[{json.dumps(schema['const'])}]"
        if "enum" in schema:
            return "Literal[" + ", ".join(json.dumps(v) for v in schema["enum"]) + "]"
        for key in ("anyOf", "oneOf"):
            if key in schema:
                members = [self.type_of(s, owner) for s in schema[key]]
                return self._union(members)
        kind = schema.get("type")
        if isinstance(kind, list):
            members = [self.type_of({**schema, "type": k}, owner) for k in kind]
            return self._union(members)
        if kind == "string":
            return "str"
        if kind == "integer":
            return "int"
        if kind == "number":
            return "float"
        if kind == "boolean":
            return "bool"
        if kind == "null":
            return "None"
        if kind == "array":
            return f"List[{self.type_of(schema.get('items', True), owner)}]"
        if kind == "object":
            if "properties" in schema:
                raise SystemExit(f"an inline object with properties inside {owner}: name it in $defs")
            extra = schema.get("additionalProperties", True)
            return f"Dict[str, {self.type_of(extra, owner)}]"
        return "Any"

    @staticmethod
    def _union(members: List[str]) -> str:
        unique = list(dict.fromkeys(members))
        if len(unique) == 1:
            return unique[0]
        if "None" in unique and len(unique) == 2:
            return f"Optional[{[m for m in unique if m != 'None'][0]}]"
        return "Union[" + ", ".join(unique) + "]"

    # -- emitting ------------------------------------------------------------------------
    def emit_all(self) -> None:
        for name in self.order:
            self.emit(name, self.defs[name])

    def emit(self, name: str, schema: Dict[str, Any]) -> None:
        doc = (schema.get("description") or "").strip()
        if "properties" in schema and "oneOf" in schema:
            self._emit_variants(name, schema, doc)
        elif "properties" in schema:
            self._emit_typeddict(name, schema, doc, base="TypedDict")
        elif "oneOf" in schema and all(isinstance(v, dict) and "$ref" in v and "properties" in v for v in schema["oneOf"]):
            self._emit_tagged_refs(name, schema, doc)
        elif "oneOf" in schema and all(isinstance(v, dict) and "properties" in v for v in schema["oneOf"]):
            variants = []
            for v in schema["oneOf"]:
                tag = next(k for k, p in v["properties"].items() if "const" in p)
                vname = name + _pascal(v["properties"][tag]["const"])
                self._emit_typeddict(vname, v, v.get("description", ""), base="TypedDict")
                variants.append(vname)
            self._alias(name, "Union[" + ", ".join(repr(v) for v in variants) + "]", doc)
        else:
            self._alias(name, self.type_of(schema, name), doc)

    def _alias(self, name: str, annotation: str, doc: str) -> None:
        self.out.append(f"{name} = {annotation}")
        if doc:
            self.out.append(_docstring(doc, indent=""))
        self.out.append("")

    def _fields(self, schema: Dict[str, Any], owner: str) -> List[str]:
        required = set(schema.get("required", []))
        lines = []
        for prop, sub in schema["properties"].items():
            annotation = self.type_of(sub, owner)
            annotation = f"Required[{annotation}]" if prop in required else f"NotRequired[{annotation}]"
            if not prop.isidentifier() or keyword.iskeyword(prop):
                raise SystemExit(f"{owner}.{prop} is not a Python identifier")
            lines.append(f"    {prop}: {annotation}")
            desc = sub.get("description") if isinstance(sub, dict) else None
            if desc:
                lines.append(_docstring(desc, indent="    "))
        return lines

    def _emit_typeddict(self, name: str, schema: Dict[str, Any], doc: str, base: str) -> None:
        self.out.append(f"class {name}({base}, total=False):" if base == "TypedDict" else f"class {name}({base}):")
        if doc:
            self.out.append(_docstring(doc, indent="    "))
        fields = self._fields(schema, name)
        self.out.extend(fields or ["    pass"])
        self.out.extend(["", ""])

    def _emit_variants(self, name: str, schema: Dict[str, Any], doc: str) -> None:
        """An object with common properties and a `oneOf` of tagged variants: a base class of the
        common fields, one subclass per variant, and the union under the schema's name."""
        base = f"{name}Common"
        self._emit_typeddict(base, {"properties": schema["properties"], "required": schema.get("required", [])},
                             doc, base="TypedDict")
        variants = []
        for v in schema["oneOf"]:
            tag = next(k for k, p in v["properties"].items() if "const" in p)
            vname = name + _pascal(v["properties"][tag]["const"])
            self._emit_typeddict(vname, v, v.get("description", ""), base=f"{base}, total=False")
            variants.append(vname)
        self._alias(name, "Union[" + ", ".join(repr(v) for v in variants) + "]", doc)

    def _emit_tagged_refs(self, name: str, schema: Dict[str, Any], doc: str) -> None:
        """`{"$ref": X, properties: {kind: const}}` variants (a record line): the referenced
        type with its tag added."""
        variants = []
        for v in schema["oneOf"]:
            target = v["$ref"].rsplit("/", 1)[-1]
            tag = next(k for k, p in v["properties"].items() if "const" in p)
            const = v["properties"][tag]["const"]
            vname = f"{_pascal(const)}Line"
            target_schema = self.defs.get(target, {})
            if "oneOf" in target_schema and "properties" in target_schema:
                # Each variant of the target gets the tag.
                for tv in target_schema["oneOf"]:
                    ttag = next(k for k, p in tv["properties"].items() if "const" in p)
                    sub = target + _pascal(tv["properties"][ttag]["const"])
                    lname = f"{_pascal(const)}{_pascal(tv['properties'][ttag]['const'])}Line"
                    self.out.append(f"class {lname}({sub}, total=False):")
                    self.out.append(f"    {tag}: Required[Literal[{json.dumps(const)}]]")
                    self.out.extend(["", ""])
                    variants.append(lname)
            else:
                self.out.append(f"class {vname}({target}, total=False):")
                self.out.append(f"    {tag}: Required[Literal[{json.dumps(const)}]]")
                self.out.extend(["", ""])
                variants.append(vname)
        self._alias(name, "Union[" + ", ".join(repr(v) for v in variants) + "]", doc)


def _docstring(text: str, indent: str) -> str:
    text = text.strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = text.splitlines()
    if len(lines) == 1:
        return f'{indent}"""{lines[0]}"""'
    body = "\n".join((indent + line) if line else "" for line in lines[1:])
    return f'{indent}"""{lines[0]}\n{body}\n{indent}"""'


def _load(schemas: Path) -> Tuple[Dict[str, Any], List[Tuple[str, Dict[str, Any]]]]:
    contract = json.loads((schemas / "protocol.json").read_text())
    files = []
    for path in sorted(schemas.glob("*.json")):
        if path.name in SKIPPED:
            continue
        files.append((path.name, json.loads(path.read_text())))
    return contract, files


def generate(schemas: Path = DEFAULT_SCHEMAS) -> str:
    contract, files = _load(schemas)
    gen = Generator()
    # Definitions first (dependencies), then each file's own type under its title.
    for _, schema in files:
        for name, sub in schema.get("$defs", {}).items():
            gen.add(name, sub)
    for _, schema in files:
        top = {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs", "title")}
        gen.add(schema["title"], top)
    # Records reference each other: emit in an order where bases come before subclasses.
    gen.emit_all()

    head = [
        '"""The stepwire protocol\'s types, error codes and methods, for Python hosts.',
        "",
        "GENERATED by `python -m stepwire_host.codegen` from the repository's `schemas/` (themselves",
        "generated from the Rust protocol types): do not edit; regenerate.",
        '"""',
        "",
        "# fmt: off",
        "from typing import Any, Dict, List, Literal, NotRequired, Optional, Required, TypedDict, Union",
        "",
        "from .errors import ProtocolError",
        "",
        f"PROTOCOL_VERSION = {contract['protocolVersion']}",
        f"SUPPORTED_VERSIONS = {contract['supportedVersions']!r}",
        "",
        "# name -> (kind, plane, summary)",
        "METHODS = {",
    ]
    for m in contract["methods"]:
        head.append(f"    {m['name']!r}: ({m['kind']!r}, {m['plane']!r}, {m['summary']!r}),")
    head += ["}", "", ""]
    errors = []
    for e in contract["errorCodes"]:
        cls = _pascal(e["name"])
        if not cls.endswith("Error"):
            cls += "Error"
        errors.append((e["code"], cls))
        head += [
            f"class {cls}(ProtocolError):",
            _docstring(f"{e['code']} `{e['name']}`: {e['meaning']}.", indent="    "),
            f"    code = {e['code']}",
            f"    name = {e['name']!r}",
            "",
            "",
        ]
    head.append("ERROR_CLASSES = {")
    for code, cls in errors:
        head.append(f"    {code}: {cls},")
    head += ["}", "", ""]
    return "\n".join(head + gen.out).rstrip() + "\n"


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schemas", type=Path, default=DEFAULT_SCHEMAS, help="the schemas folder (default: the checkout's)")
    ap.add_argument("--check", action="store_true", help="only check that protocol.py is current (exit 1 if not)")
    args = ap.parse_args(argv)
    text = generate(args.schemas)
    current = OUTPUT.read_text() if OUTPUT.exists() else ""
    if args.check:
        if current != text:
            print(f"{OUTPUT} is out of date: run `python -m stepwire_host.codegen`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        OUTPUT.write_text(text)
        print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
