#!/usr/bin/env python3
"""The validators amiaudit's consumers use, for tests/it/consumers.rs.

  validate.py json SCHEMA FILE        one JSON document
  validate.py jsonl SCHEMA FILE       every line of a JSON Lines file
  validate.py xsd SCHEMA FILE         an XML document (xmlschema)

Prints `valid: N document(s)` and exits 0, or prints each error (at most
20) as `line N: path: message` and exits 1. JSON Schema formats (date,
date-time) are checked, and so are the OCSF rules an OCSF fixture carries
beside its schema (tests/fixtures/ocsf-schema.py): no nulls, the profiles
declared, each enum's sibling string its caption.
"""


def ocsf_rules(schema: dict, event) -> list:
    """What OCSF requires of `event` beyond its JSON Schema (only for a
    schema that carries the OCSF rules)."""
    problems = []
    if "x-amiaudit-profiles" not in schema:
        return problems

    def nulls(value, path):
        if value is None:
            problems.append(f"{path}: null (OCSF has no nulls: leave the attribute out)")
        elif isinstance(value, dict):
            for k, v in value.items():
                nulls(v, f"{path}/{k}" if path else k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                nulls(v, f"{path}/{i}")

    nulls(event, "")
    declared = event.get("metadata", {}).get("profiles", [])
    for profile in schema.get("x-amiaudit-profiles", []):
        if profile not in declared:
            problems.append(f"metadata/profiles: does not declare `{profile}`, whose attributes the event uses")

    def at(path):
        value = event
        for key in path.split("."):
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    for id_path, (sibling, captions) in schema.get("x-amiaudit-sibling-captions", {}).items():
        id_value = at(id_path)
        if id_value is None or str(id_value) == "99":
            continue
        caption = captions.get(str(id_value))
        if caption is not None and at(sibling) != caption:
            problems.append(f"{sibling}: {at(sibling)!r}, but {id_path} {id_value} is {caption!r}")
    return problems
import json
import sys


def main() -> int:
    kind, schema_path, path = sys.argv[1:4]
    errors = []
    documents = 0
    if kind == "xsd":
        import xmlschema

        schema = xmlschema.XMLSchema(schema_path)
        for e in schema.iter_errors(path):
            errors.append(f"{e.path}: {e.reason}")
        documents = 1
    else:
        from jsonschema import Draft202012Validator, FormatChecker

        with open(schema_path) as f:
            validator = Draft202012Validator(json.load(f), format_checker=FormatChecker())
        with open(path) as f:
            texts = [(1, f.read())] if kind == "json" else list(enumerate(f, 1))
        for line, text in texts:
            if not text.strip():
                continue
            documents += 1
            document = json.loads(text)
            for e in validator.iter_errors(document):
                where = "/".join(str(p) for p in e.absolute_path) or "(root)"
                errors.append(f"line {line}: {where}: {e.message[:300]}")
            for problem in ocsf_rules(validator.schema, document):
                errors.append(f"line {line}: {problem}")
    for e in errors[:20]:
        print(e)
    if errors:
        print(f"invalid: {len(errors)} error(s) in {documents} document(s)")
        return 1
    print(f"valid: {documents} document(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
