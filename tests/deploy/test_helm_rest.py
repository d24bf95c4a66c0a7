"""
The chart with the REST control plane (``rds.controlPlane: rest``): a REST-only deployment
renders valid objects, mounts the REST Secret instead of the SSH one, and configures the
controller with ``--backend rest``; an SSH-only deployment (the default) is unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy_support import (
    ChartRenderError,
    Obj,
    by_kind,
    driver_container,
    example_objects,
    kubernetes_versions,
    one,
    render_chart,
    schema_errors,
    values_like_the_manifests,
)


CA = "-----BEGIN CERTIFICATE-----\nnot-a-certificate\n-----END CERTIFICATE-----"


def rest_values(**rest: Any) -> Obj:
    values = values_like_the_manifests()
    values["rds"] = {
        **values["rds"],
        "controlPlane": "rest",
        "rest": {
            "url": "https://192.0.2.10:8443",
            "secret": {"create": True, "password": "not-a-password", "caCert": CA},
            **rest,
        },
    }
    return values


def _controller(objects: list[Obj]) -> tuple[list[str], dict[str, Any], list[Obj]]:
    deployment = one(objects, "Deployment")
    args = driver_container(deployment)["args"]
    config = yaml.safe_load(one(objects, "ConfigMap")["data"]["controller.yaml"])
    return args, config, deployment["spec"]["template"]["spec"]["volumes"]


@pytest.mark.parametrize("version", kubernetes_versions())
def test_a_rest_only_deployment_validates(version: str) -> None:
    objects = [o for o in render_chart(rest_values()) if o["kind"] != "ServiceMonitor"]
    assert schema_errors(objects, version) == []


def test_rest_mounts_its_secret_and_selects_the_rest_backend() -> None:
    objects = render_chart(rest_values())
    args, config, volumes = _controller(objects)
    assert config["backend"] == "rest"
    assert config["rds_rest_url"] == "https://192.0.2.10:8443"
    assert "--rds-rest-password-file=/etc/rds-csi/rest/password" in args
    assert "--rds-ca-file=/etc/rds-csi/rest/ca.crt" in args
    assert not [a for a in args if a.startswith(("--rds-ssh-key", "--rds-known-hosts"))]
    (secret,) = by_kind(objects, "Secret")
    assert set(secret["stringData"]) == {"password", "ca.crt"}
    names = {v["name"]: v for v in volumes}
    assert "ssh" not in names
    assert names["rest"]["secret"]["secretName"] == secret["metadata"]["name"]


def test_skipping_verification_drops_the_ca_everywhere() -> None:
    values = rest_values(insecureSkipVerify=True)
    values["rds"]["rest"]["secret"].pop("caCert")
    args, config, _ = _controller(render_chart(values))
    assert config["rds_insecure_skip_verify"] is True
    assert not [a for a in args if a.startswith("--rds-ca-file")]


def test_an_ssh_only_deployment_has_no_rest_parts() -> None:
    args, config, volumes = _controller(render_chart(values_like_the_manifests()))
    assert config["backend"] == "ssh"
    assert not [k for k in config if k.startswith("rds_rest")]
    assert not [a for a in args if "rest" in a]
    assert "rest" not in {v["name"] for v in volumes}


def test_a_created_rest_secret_needs_its_password() -> None:
    values = rest_values()
    values["rds"]["rest"]["secret"] = {"create": True}
    with pytest.raises(ChartRenderError, match=r"password is required"):
        render_chart(values)


def test_an_unknown_control_plane_is_refused() -> None:
    values = values_like_the_manifests()
    values["rds"]["controlPlane"] = "telnet"
    with pytest.raises(ChartRenderError, match=r"controlPlane must be ssh or rest"):
        render_chart(values)


def test_the_rest_secret_example_holds_what_the_chart_mounts() -> None:
    secret = one(example_objects(), "Secret", "-rest")
    assert set(secret["stringData"]) == {"password", "ca.crt"}
    (rendered,) = by_kind(render_chart(rest_values()), "Secret")
    assert set(rendered["stringData"]) == set(secret["stringData"])
