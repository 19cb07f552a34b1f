"""Helpers shared by the network tests: build policy sets and inventories from inline YAML."""

from __future__ import annotations

import yaml

from garrison.network.evaluator import Evaluator
from garrison.network.inventory import Inventory, inventory_from_objects
from garrison.network.ir import PolicySet
from garrison.network.loader import load_objects

INVENTORY = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {env: prod, team: web}}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops, labels: {env: prod, team: ops}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: api, namespace: shop, labels: {tier: backend}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.1.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  serviceAccountName: api
  containers: [{name: api, image: api, ports: [{name: grpc, containerPort: 9090}, {name: dns, containerPort: 53, protocol: UDP}]}]
status: {podIP: 10.1.0.11}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: pg, image: postgres, ports: [{name: pg, containerPort: 5432}]}]}
status: {podIP: 10.1.0.12}
---
apiVersion: v1
kind: Pod
metadata: {name: monitor, namespace: ops, labels: {app: monitor}}
spec: {containers: [{name: m, image: prom}]}
status: {podIP: 10.2.0.5}
"""


def objects(text: str, source: str = "test.yaml") -> list[tuple[str, int, dict]]:
    return [(source, i, d) for i, d in enumerate(yaml.safe_load_all(text)) if d]


def pset_of(text: str, strict: bool = True) -> PolicySet:
    return load_objects(objects(text), strict=strict)


def inventory() -> Inventory:
    return inventory_from_objects(objects(INVENTORY, "inventory.yaml"))


def evaluator(policies: str) -> Evaluator:
    return Evaluator(pset_of(policies), inventory())
