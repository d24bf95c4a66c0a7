"""
The Helm chart renders valid objects, and the same ones as deploy/kubernetes.

Rendering needs a Helm engine: a `helm` binary on PATH, or the helm-python-sdk wheel (Helm's
Go SDK behind ctypes, in the dev extra on x86_64 Linux). Without either, the rendering tests
skip with that reason and the static checks below still compare values.yaml with the manifests.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

import rds_csi
from tests.deploy_support import (
    CHART,
    ChartRenderError,
    Obj,
    by_kind,
    chart_metadata,
    chart_values,
    containers,
    driver_container,
    helm_backend,
    kubernetes_versions,
    manifest_objects,
    one,
    render_chart,
    schema_errors,
    values_like_the_manifests,
)


# Labels only Helm adds, and annotations that differ by design (config checksum).
HELM_ONLY_LABELS = {"helm.sh/chart", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"}
PLACEHOLDER_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n-----END OPENSSH PRIVATE KEY-----"
)
# no schema in kubernetes-validate; checked by shape below
CRD_KINDS = {"ServiceMonitor", "VolumeSnapshotClass"}


def everything_on() -> Obj:
    values = values_like_the_manifests()
    values["rds"] |= {
        "sshSecret": {
            "create": True,
            "privateKey": PLACEHOLDER_KEY,
            "knownHosts": "192.0.2.10 ssh-ed25519 AAAA\n",
        },
        "nqnPrefix": "nqn.2024-01.org.example",
    }
    values["metrics"] = {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}
    values["imagePullSecrets"] = [{"name": "registry"}]
    values["controller"] = {
        "tolerations": [
            {
                "key": "node-role.kubernetes.io/control-plane",
                "operator": "Exists",
                "effect": "NoSchedule",
            }
        ]
    }
    values["node"] = {"maxVolumesPerNode": 64, "extraArgs": ["--log-level=debug"]}
    values["kubeletDir"] = "/var/lib/k0s/kubelet/"
    values["snapshotClass"] = {"create": True}
    values["storageClasses"] = [
        {
            "name": "fast",
            "isDefault": True,
            "parameters": {"csi.storage.k8s.io/fstype": "xfs"},
            "mountOptions": ["noatime"],
        },
    ]
    return values


@pytest.mark.parametrize("version", kubernetes_versions())
def test_rendered_chart_validates_against_the_kubernetes_schemas(version: str) -> None:
    # With every option on. The defaults render what deploy/kubernetes holds (compared below),
    # which test_manifests.py validates, so they are not validated twice.
    objects = [o for o in render_chart(everything_on()) if o["kind"] not in CRD_KINDS]
    assert len(objects) > 15
    assert schema_errors(objects, version) == []


def test_the_chart_lints_clean() -> None:
    backend = helm_backend()
    if backend != "helm_python":
        pytest.skip("lint runs through helm-python-sdk; a `helm` binary is covered by rendering")
    import helm_python  # noqa: PLC0415 - optional dependency

    for values in (values_like_the_manifests(), everything_on()):
        report = helm_python.lint(str(CHART), values, strict=True)
        assert report["errors"] == []
        serious = [m for m in report["messages"] if m["severity"] >= 2]  # 2 warning, 3 error
        assert serious == []


def test_the_rds_address_is_required() -> None:
    with pytest.raises(ChartRenderError, match=r"rds\.address is required"):
        render_chart({})


def test_a_created_secret_needs_its_key() -> None:
    values = values_like_the_manifests()
    values["rds"]["sshSecret"] = {"create": True}
    with pytest.raises(ChartRenderError, match=r"privateKey is required"):
        render_chart(values)


def _comparable(obj: Obj) -> Obj:
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    meta["labels"] = {k: v for k, v in meta.get("labels", {}).items() if k not in HELM_ONLY_LABELS}
    if obj["kind"] in {"Deployment", "DaemonSet"}:
        obj["spec"]["template"]["metadata"].pop("annotations", None)
    if obj["kind"] == "ConfigMap":
        import yaml  # noqa: PLC0415

        obj["data"] = {k: yaml.safe_load(v) for k, v in obj["data"].items()}
    return obj


def test_the_chart_renders_what_the_manifests_hold() -> None:
    # Release "rds-csi" in namespace "rds-csi" with the manifests' RDS addresses: the same
    # objects, names, images, args, mounts and RBAC rules; only Helm's own labels differ, and
    # the Namespace (Helm installs into one it does not own).
    rendered = {
        (o["kind"], o["metadata"]["name"]): _comparable(o)
        for o in render_chart(values_like_the_manifests())
    }
    plain = {
        (o["kind"], o["metadata"]["name"]): _comparable(o)
        for o in manifest_objects()
        if o["kind"] != "Namespace"
    }
    assert sorted(rendered) == sorted(plain)
    for key, obj in plain.items():
        assert rendered[key] == obj, key


def test_options_change_what_they_should() -> None:
    objects = render_chart(everything_on())
    daemonset = one(objects, "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert paths["kubelet-dir"] == "/var/lib/k0s/kubelet"
    assert paths["plugin-dir"] == "/var/lib/k0s/kubelet/plugins/rds.csi.srvlab.io"
    assert paths["registration-dir"] == "/var/lib/k0s/kubelet/plugins_registry"
    registrar = containers(daemonset)["node-driver-registrar"]
    assert (
        "--kubelet-registration-path=/var/lib/k0s/kubelet/plugins/rds.csi.srvlab.io/csi.sock"
        in registrar["args"]
    )
    mounts = {m["name"]: m for m in driver_container(daemonset)["volumeMounts"]}
    assert mounts["kubelet-dir"]["mountPath"] == "/var/lib/k0s/kubelet"
    assert driver_container(daemonset)["args"][-1] == "--log-level=debug"
    secret = one(objects, "Secret")
    assert set(secret["stringData"]) == {"ssh-privatekey", "known_hosts"}
    assert (
        one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"][2]["secret"]["secretName"]
        == secret["metadata"]["name"]
    )
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "interval": "30s"}]
    (storage_class,) = by_kind(objects, "StorageClass")
    assert (
        storage_class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
        == "true"
    )
    assert storage_class["parameters"] == {"csi.storage.k8s.io/fstype": "xfs"}


def test_ignoring_the_host_key_drops_known_hosts_everywhere() -> None:
    values = values_like_the_manifests()
    values["rds"]["insecureIgnoreHostKey"] = True
    objects = render_chart(values)
    args = driver_container(one(objects, "Deployment"))["args"]
    assert not [a for a in args if a.startswith("--rds-known-hosts")]
    import yaml  # noqa: PLC0415

    controller = yaml.safe_load(one(objects, "ConfigMap")["data"]["controller.yaml"])
    assert controller["rds_insecure_ignore_host_key"] is True


# --- static: no Helm engine needed ---------------------------------------------------------------


def _manifest_images() -> dict[str, str]:
    """Container name -> image, over both workloads (sidecars share names across them)."""
    images: dict[str, str] = {}
    for workload in by_kind(manifest_objects(), "Deployment") + by_kind(
        manifest_objects(), "DaemonSet"
    ):
        for name, container in containers(workload).items():
            images.setdefault(name, container["image"])
            assert images[name] == container["image"], name
    return images


def test_values_pin_the_same_sidecar_images_as_the_manifests() -> None:
    sidecars = chart_values()["sidecars"]
    from_values = {f"{s['image']['repository']}:{s['image']['tag']}" for s in sidecars.values()}
    from_manifests = {image for name, image in _manifest_images().items() if name != "rds-csi"}
    assert from_values == from_manifests


def test_driver_image_chart_and_package_versions_agree() -> None:
    version = rds_csi.__version__
    meta = chart_metadata()
    assert meta["appVersion"] == version
    assert meta["version"] == version
    assert _manifest_images()["rds-csi"] == f"{chart_values()['image']['repository']}:{version}"
    from tests.deploy_support import kustomization  # noqa: PLC0415

    assert kustomization()["images"] == [{"name": "rds-csi", "newTag": version}]


def _value_paths(values: Any, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(values, dict):
        for key, value in values.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            paths |= _value_paths(value, path)
    return paths


def test_templates_only_read_values_that_exist() -> None:
    # A misspelt .Values path renders as empty, silently; this catches it without Helm.
    known = _value_paths(chart_values())
    used: set[str] = set()
    for template in (CHART / "templates").iterdir():
        used |= set(re.findall(r"\.Values\.([A-Za-z0-9_.]+[A-Za-z0-9_])", template.read_text()))
    assert used
    assert used - known == set()


def test_templates_include_only_defined_helpers() -> None:
    templates = list((CHART / "templates").iterdir())
    text = "\n".join(t.read_text() for t in templates)
    defined = set(re.findall(r'define "([^"]+)"', text))
    included = set(re.findall(r'include "([^"]+)"', text))
    assert included
    assert included <= defined


def test_the_volume_snapshot_class_is_opt_in_and_names_the_driver() -> None:
    base = values_like_the_manifests()
    assert by_kind(render_chart(base), "VolumeSnapshotClass") == []  # no CRDs assumed
    objects = render_chart({**base, "snapshotClass": {"create": True, "isDefault": True}})
    snapshot_class = one(objects, "VolumeSnapshotClass")
    assert snapshot_class["driver"] == one(objects, "CSIDriver")["metadata"]["name"]
    assert snapshot_class["deletionPolicy"] == "Delete"
    annotations = snapshot_class["metadata"]["annotations"]
    assert annotations["snapshot.storage.kubernetes.io/is-default-class"] == "true"
    example_file = CHART.parents[1] / "kubernetes" / "snapshot" / "volumesnapshotclass.yaml"
    example = yaml.safe_load(example_file.read_text())
    assert example["driver"] == one(manifest_objects(), "CSIDriver")["metadata"]["name"]
