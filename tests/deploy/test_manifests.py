"""The plain manifests: valid for every supported Kubernetes, complete, and wired together."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.deploy_support import (
    EXAMPLE_ONLY,
    MANIFESTS,
    NAMESPACE,
    by_kind,
    config_files,
    containers,
    driver_container,
    example_objects,
    kubernetes_versions,
    kustomization,
    load_docs,
    manifest_files,
    manifest_objects,
    one,
    schema_errors,
)


CLUSTER_SCOPED = {"Namespace", "CSIDriver", "StorageClass", "ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize("version", kubernetes_versions())
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    objects = [obj for path in manifest_files() for obj in load_docs(path.read_text())]
    assert len(objects) > 15
    assert schema_errors(objects, version) == []


def test_the_schema_check_rejects_what_kubernetes_would() -> None:
    # Guards the guard: an unknown field and a wrong type must both be caught.
    version = kubernetes_versions()[0]
    daemonset = one(manifest_objects(), "DaemonSet")
    misspelt = {**daemonset, "spec": {**daemonset["spec"], "updateStrategey": {}}}
    driver = one(manifest_objects(), "CSIDriver")
    wrong_type = {**driver, "spec": {**driver["spec"], "attachRequired": "no"}}
    assert len(schema_errors([misspelt, wrong_type], version)) == 2


def test_the_kustomization_applies_every_manifest_but_the_examples() -> None:
    listed = set(kustomization()["resources"])
    files = {p.name for p in manifest_files()}
    assert listed == files - EXAMPLE_ONLY
    assert kustomization()["namespace"] == NAMESPACE


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl to run kustomize")
def test_kustomize_builds_the_same_objects() -> None:
    done = subprocess.run(
        ["kubectl", "kustomize", str(MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    built = {(o["kind"], o["metadata"]["name"]): o for o in load_docs(done.stdout)}
    ours = {(o["kind"], o["metadata"]["name"]): o for o in manifest_objects()}
    assert built == ours


def test_namespaced_objects_live_in_the_drivers_namespace() -> None:
    for obj in manifest_objects() + example_objects():
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, obj["metadata"]["name"]
        else:
            assert namespace == NAMESPACE, f"{obj['kind']}/{obj['metadata']['name']}"


def test_the_namespace_admits_the_privileged_node_plugin() -> None:
    labels = one(manifest_objects(), "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"


def test_workloads_reference_objects_that_exist() -> None:
    objects = manifest_objects() + example_objects()
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for workload in by_kind(objects, "Deployment") + by_kind(objects, "DaemonSet"):
        pod = workload["spec"]["template"]["spec"]
        assert ("ServiceAccount", pod["serviceAccountName"]) in names
        for volume in pod["volumes"]:
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names
            if "secret" in volume:
                assert ("Secret", volume["secret"]["secretName"]) in names
        mounted = {m["name"] for c in containers(workload).values() for m in c["volumeMounts"]}
        assert mounted == {v["name"] for v in pod["volumes"]}, workload["metadata"]["name"]
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()


def test_role_bindings_bind_roles_and_accounts_that_exist() -> None:
    objects = manifest_objects()
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    bindings = by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding")
    assert len(bindings) >= 4
    for binding in bindings:
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in names
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount"
            assert subject["namespace"] == NAMESPACE
            assert ("ServiceAccount", subject["name"]) in names


def test_no_role_grants_wildcards_or_secrets() -> None:
    # Least privilege: the SSH key is mounted, never read through the API.
    for role in by_kind(manifest_objects(), "ClusterRole") + by_kind(manifest_objects(), "Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            assert "secrets" not in rule["resources"], role["metadata"]["name"]


def test_services_select_pods_and_ports_that_exist() -> None:
    objects = manifest_objects()
    workloads = by_kind(objects, "Deployment") + by_kind(objects, "DaemonSet")
    for service in by_kind(objects, "Service"):
        selected = [
            w
            for w in workloads
            if service["spec"]["selector"].items()
            <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, service["metadata"]["name"]
        ports = {p["name"] for p in driver_container(selected[0])["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


@pytest.mark.parametrize("kind", ["Deployment", "DaemonSet"])
def test_probe_and_metrics_ports_match_the_processes_behind_them(kind: str) -> None:
    workload = one(manifest_objects(), kind)
    driver = driver_container(workload)
    ports = {p["name"]: p["containerPort"] for p in driver["ports"]}
    assert f"--metrics-address=:{ports['metrics']}" in driver["args"]
    probe = containers(workload)["liveness-probe"]
    assert f"--health-port={ports['healthz']}" in probe["args"]
    assert driver["livenessProbe"]["httpGet"]["port"] == "healthz"


def test_controller_runs_unprivileged_with_the_ssh_key_unreadable_to_others() -> None:
    deployment = one(manifest_objects(), "Deployment")
    assert deployment["spec"]["replicas"] == 2  # HA: a leader and a standby
    # One at a time: a rollout always leaves a replica whose sidecars can take the lead.
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    sidecars = [c for c in containers(deployment).values() if c["name"].startswith("csi-")]
    assert {"csi-provisioner", "csi-attacher", "csi-resizer"} <= {c["name"] for c in sidecars}
    for sidecar in sidecars:
        assert "--leader-election" in sidecar["args"], sidecar["name"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert not context.get("privileged", False)
    ssh = next(v for v in pod["volumes"] if "secret" in v)
    assert ssh["secret"]["defaultMode"] in {0o400, 0o600}
    driver = driver_container(deployment)
    mount = next(m for m in driver["volumeMounts"] if m["name"] == ssh["name"])
    assert f"--rds-ssh-key={mount['mountPath']}/ssh-privatekey" in driver["args"]
    assert f"--rds-known-hosts={mount['mountPath']}/known_hosts" in driver["args"]
    secret = one(example_objects(), "Secret", "-ssh")
    assert secret["type"] == "kubernetes.io/ssh-auth"
    assert set(secret["stringData"]) == {"ssh-privatekey", "known_hosts"}


def test_node_plugin_reaches_the_hosts_devices_and_kubelet() -> None:
    daemonset = one(manifest_objects(), "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    driver = driver_container(daemonset)
    assert driver["securityContext"]["privileged"] is True
    assert driver["securityContext"]["runAsUser"] == 0
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    mounts = {m["mountPath"]: m for m in driver["volumeMounts"]}
    for path in ("/dev", "/sys", "/etc/nvme", "/var/lib/kubelet"):
        assert host_paths[mounts[path]["name"]] == path
    assert mounts["/var/lib/kubelet"]["mountPropagation"] == "Bidirectional"
    assert "--node-id=$(NODE_ID)" in driver["args"]
    node_id = next(e for e in driver["env"] if e["name"] == "NODE_ID")
    assert node_id["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_the_registrar_tells_kubelet_where_the_socket_is_on_the_host() -> None:
    objects = manifest_objects()
    daemonset = one(objects, "DaemonSet")
    driver_name = one(objects, "CSIDriver")["metadata"]["name"]
    pod = daemonset["spec"]["template"]["spec"]
    plugin_dir = next(v for v in pod["volumes"] if v["name"] == "plugin-dir")["hostPath"]["path"]
    assert plugin_dir == f"/var/lib/kubelet/plugins/{driver_name}"
    registrar = containers(daemonset)["node-driver-registrar"]
    assert f"--kubelet-registration-path={plugin_dir}/csi.sock" in registrar["args"]
    assert "--endpoint=unix:///csi/csi.sock" in driver_container(daemonset)["args"]
    mounts = {m["name"]: m["mountPath"] for m in registrar["volumeMounts"]}
    assert mounts["plugin-dir"] == "/csi"
    registration = next(v for v in pod["volumes"] if v["name"] == "registration-dir")
    assert registration["hostPath"]["path"] == "/var/lib/kubelet/plugins_registry"
    assert mounts["registration-dir"] == "/registration"


def test_both_roles_read_their_own_settings_file() -> None:
    objects = manifest_objects()
    files = config_files(objects)
    for kind, role in (("Deployment", "controller"), ("DaemonSet", "node")):
        driver = driver_container(one(objects, kind))
        assert driver["args"][0] == role
        assert f"--config=/etc/rds-csi/{role}.yaml" in driver["args"]
        assert files[f"{role}.yaml"]["driver_name"] == one(objects, "CSIDriver")["metadata"]["name"]
    assert files["controller.yaml"]["backend"] == "ssh"
    assert files["node.yaml"]["initiator"] == "nvme"


def test_images_are_pinned() -> None:
    for workload in by_kind(manifest_objects(), "Deployment") + by_kind(
        manifest_objects(), "DaemonSet"
    ):
        for container in containers(workload).values():
            image: str = container["image"]
            assert ":" in image.rsplit("/", 1)[-1], image
            assert not image.endswith(":latest"), image
