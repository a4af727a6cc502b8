#!/usr/bin/env python3
"""Checks Kubernetes manifests offline against the Kubernetes API's own models.

kubectl's client-side dry run cannot do it without a cluster: it needs an API server for
discovery and for the OpenAPI schema (measured: `kubectl apply --dry-run=client` fails
with no server, with or without --validate). The official Python client (`kubernetes`,
from PyPI) generates one pydantic model per API type from that schema, strict: unknown
fields are refused (`extra = "forbid"`), every value must have its declared type, required
fields must be there. Each document is validated against the model of its kind.

    scripts/check-kubernetes.py dist/kubernetes/leakwatch.yaml     # exit 1 on any error
"""
import sys

import kubernetes.client as k8s
import pydantic
import yaml

# apiVersion/kind -> the client's model class name.
KINDS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "Service"): "V1Service",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
    ("apps/v1", "Deployment"): "V1Deployment",
}


def main(paths):
    failed = False
    for path in paths:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        for doc in docs:
            kind = (doc.get("apiVersion"), doc.get("kind"))
            name = doc.get("metadata", {}).get("name", "?")
            model = KINDS.get(kind)
            if model is None:
                print(f"{path}: {kind}: not a kind this checker knows", file=sys.stderr)
                failed = True
                continue
            try:
                getattr(k8s, model).model_validate(doc)
            except pydantic.ValidationError as error:
                for e in error.errors():
                    where = ".".join(str(p) for p in e["loc"])
                    print(f"{path}: {kind[1]}/{name}: {where}: {e['msg']}", file=sys.stderr)
                failed = True
                continue
            print(f"{path}: {kind[1]} {name}: ok ({model})")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
