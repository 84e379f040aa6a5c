"""docs/deploy: the manifest parses, and the tests run exactly its command and arguments."""

from __future__ import annotations

from pathlib import Path

from ._server import REPO, manifest_command, manifest_container


def test_manifest_is_an_inference_service_running_seg_serve():
    import yaml

    doc = yaml.safe_load((REPO / "docs" / "deploy" / "inferenceservice.yaml").read_text(encoding="utf-8"))
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    c = manifest_container()
    assert c["command"] == ["seg-serve"]
    args = [str(a) for a in c["args"]]
    port = str(c["ports"][0]["containerPort"])
    assert args[args.index("--http-port") + 1] == port
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": int(port)}
    assert args[0] == "/mnt/models"  # where KServe's storage initializer puts STORAGE_URI


def test_the_server_fixture_runs_the_manifests_command(server, zoo_export):
    original, replaced = manifest_command(zoo_export["repo"], "127.0.0.1", server.http_port, server.grpc_port)
    # What was launched: the console script + the manifest's args with model/host/ports replaced.
    assert Path(server.command[0]).name in ("seg-serve", Path(original[0]).name) or server.command[1:3] == [
        "-m", "attnseg.cli.serve"]
    launched_args = server.command[-len(original) + 1:]
    assert launched_args == replaced[1:]
    differing = {a for a, b in zip(original[1:], replaced[1:]) if a != b}
    assert differing == {"/mnt/models", "0.0.0.0", "8080", "8081"}


def test_dockerfile_runs_the_same_command_without_torch():
    text = (REPO / "docs" / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert "-c constraints.txt '.[serve]'" in text and "torch" not in text.split("RUN", 1)[1].split("\n")[0]
    import json

    entry = json.loads(next(ln for ln in text.splitlines() if ln.startswith("ENTRYPOINT"))[len("ENTRYPOINT"):])
    cmd = json.loads(next(ln for ln in text.splitlines() if ln.startswith("CMD"))[len("CMD"):])
    c = manifest_container()
    assert entry == c["command"] and cmd == [str(a) for a in c["args"]]
