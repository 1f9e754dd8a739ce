"""Writes the JSON schemas kubeconform validates sluice's manifests against, in its layouts.

usage: python3 scripts/k8s-schemas.py OUT   (run by scripts/tools.sh in a venv holding the packages)

- Core types, from PyPI kubernetes-validate (its "local-strict" schemas, whose $refs point into a
  shared _definitions.json), of the newest Kubernetes version it knows: each top-level kind becomes one standalone file holding only the
  definitions it reaches, as OUT/v<version>-standalone-strict/<kind>-<group>-<version>.json.
- KEDA and prometheus-operator custom resources, from PyPI cloudcoil-models-* (pydantic models
  generated from the projects' CRDs): each model's JSON Schema (by alias, i.e. camelCase), made
  strict (no unknown fields in any object that lists its fields), as
  OUT/crds/<group>/<kind>_<version>.json.
"""

import json
import pathlib
import re
import sys

import kubernetes_validate


def core(out: pathlib.Path) -> None:
    base = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    versions = sorted(
        (d for d in base.iterdir() if d.name.endswith("-local-strict")),
        key=lambda d: [int(x) for x in re.findall(r"\d+", d.name)],
    )
    for src in versions[-1:]:  # the newest Kubernetes the package knows
        version = src.name.removesuffix("-local-strict")
        dst = out / f"{version}-standalone-strict"
        dst.mkdir(parents=True, exist_ok=True)
        definitions = json.loads((src / "_definitions.json").read_text())["$defs"]
        written = 0
        for f in src.iterdir():
            if f.name.startswith("_") or f.name == "all.json":
                continue
            schema = json.loads(f.read_text())
            if "kind" not in schema.get("properties", {}):
                continue
            needed: dict = {}
            todo = [schema]
            while todo:
                node = todo.pop()
                for ref in re.findall(r'"\$ref": "[^"]*#/\$defs/([^"]+)"', json.dumps(node)):
                    if ref not in needed:
                        needed[ref] = definitions[ref]
                        todo.append(definitions[ref])
            text = re.sub(r'"[^"]*_definitions\.json#/\$defs/', '"#/$defs/',
                          json.dumps({**schema, "$defs": needed}))
            (dst / f.name).write_text(text)
            written += 1
        print(f"{dst.name}: {written} kinds")


def strict(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)
    return node


CRDS = [
    ("keda.sh", "v1alpha1", "cloudcoil.models.keda.v1alpha1",
     ["ScaledObject", "ScaledJob", "TriggerAuthentication", "ClusterTriggerAuthentication"]),
    ("monitoring.coreos.com", "v1", "cloudcoil.models.prometheus_operator.v1",
     ["ServiceMonitor", "PodMonitor", "PrometheusRule"]),
]


def crds(out: pathlib.Path) -> None:
    import importlib

    for group, version, module_name, kinds in CRDS:
        module = importlib.import_module(module_name)
        dst = out / "crds" / group
        dst.mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            schema = strict(getattr(module, kind).model_json_schema(by_alias=True, mode="validation"))
            # apiVersion and kind are given in every manifest: required, not defaulted
            schema.setdefault("required", [])
            schema["required"] = sorted(set(schema["required"]) | {"apiVersion", "kind"})
            (dst / f"{kind.lower()}_{version}.json").write_text(json.dumps(schema))
            print(f"crds/{group}/{kind.lower()}_{version}.json")


if __name__ == "__main__":
    target = pathlib.Path(sys.argv[1])
    core(target)
    crds(target)
