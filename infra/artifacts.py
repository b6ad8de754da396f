"""Check and size what ``sam build`` produced (``make deploy-check`` runs it after the build).

    python -m infra.artifacts [--build-dir .aws-sam/build] [--smoke]

- prints every artifact's unzipped and zipped size and each function's total with its layers, against Lambda's
  limits (250 MB unzipped per function including layers; 50 MB zipped for a direct upload), and fails above
  :data:`BUDGET` of them;
- checks the contents: the layer carries ``qbsync`` and its runtime dependencies as CPython 3.12 arm64 binaries and
  no boto3/botocore (the runtime's) and no development tool; the API function carries ``app.py`` and Chalice's
  runtime module only; the workers only their ``app.py``;
- ``--smoke`` builds the same layer for this machine (same ``deploy/Makefile``, host wheels) next to a stand-in for
  the runtime (boto3 alone), then imports every built handler in an isolated interpreter that sees nothing else,
  and calls the API handler with the sample ``GET /health``, ``GET /openapi.json`` and ``GET /console/login`` events
  (the console page proves its templates and Jinja2 are in the layer).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infra.template import ROOT, load_template

MB = 1024 * 1024
UNZIPPED_LIMIT = 250 * MB  # function code plus all its layers
ZIPPED_LIMIT = 50 * MB  # one .zip uploaded directly
BUDGET = 0.5  # "far below": fail at half of either limit
LAMBDA_PYTHON_TAG = "cpython-312"
EM_AARCH64 = 183
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
DEVELOPMENT_ONLY = ("moto", "pytest", "_pytest", "ruff", "mypy", "zeep", "cfnlint", "samcli", "click", "inquirer",
                    "yaml", "chalice")  # fmt: skip
LAYER_IMPORTS = ("qbsync", "aws_lambda_powertools", "aws_xray_sdk", "pydantic", "pydantic_core", "lxml", "intuitlib",
                 "requests", "jwt", "cryptography")  # fmt: skip


class ArtifactError(RuntimeError):
    pass


@dataclass(frozen=True)
class Artifact:
    name: str
    path: Path
    files: int
    unzipped: int
    zipped: int


def measure(name: str, path: Path) -> Artifact:
    files = [p for p in sorted(path.rglob("*")) if p.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.write(file, file.relative_to(path).as_posix())
    return Artifact(name, path, len(files), sum(f.stat().st_size for f in files), len(buffer.getvalue()))


def elf_machine(path: Path) -> int | None:
    with open(path, "rb") as handle:
        header = handle.read(20)
    if header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def built_resources(build_dir: Path) -> tuple[dict[str, list[str]], list[str]]:
    """({function: [its layers]}, [layers]) from the built template."""
    template = load_template(build_dir / "template.yaml")
    resources = template["Resources"]
    layers = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::LayerVersion"]
    global_layers = [ref.get("Ref") for ref in template.get("Globals", {}).get("Function", {}).get("Layers", [])]
    functions = {
        name: [ref.get("Ref") for ref in r["Properties"].get("Layers", [])] or list(global_layers)
        for name, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function"
    }
    return functions, layers


def check_layer(path: Path) -> list[str]:
    problems: list[str] = []
    site = path / "python"
    top = {p.name.split("-")[0].split(".")[0] for p in site.iterdir()} if site.is_dir() else set()
    for name in LAYER_IMPORTS:
        if name not in top:
            problems.append(f"layer lacks {name}")
    for name in (*RUNTIME_PROVIDED, *DEVELOPMENT_ONLY):
        if name in top:
            problems.append(f"layer carries {name} (runtime-provided or a development tool)")
    for binary in site.rglob("*.so*"):
        machine = elf_machine(binary)
        if machine is not None and machine != EM_AARCH64:
            problems.append(f"{binary.relative_to(path)} is not an arm64 binary (ELF machine {machine})")
        if ".cpython-" in binary.name and LAMBDA_PYTHON_TAG not in binary.name:
            problems.append(f"{binary.relative_to(path)} is not built for {LAMBDA_PYTHON_TAG}")
    if list(site.rglob("__pycache__")) or list(site.glob("*.egg-info")):
        problems.append("layer carries __pycache__ or egg-info")
    return problems


def check_function(name: str, path: Path) -> list[str]:
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    expected = ["app.py"]
    if name == "ApiFunction":
        expected = ["app.py", "chalice/__init__.py", "chalice/app.py"]  # the runtime module, not the CLI
    return [] if files == expected else [f"{name} carries {files}, expected {expected}"]


def report(build_dir: Path) -> list[str]:
    functions, layers = built_resources(build_dir)
    sizes = {name: measure(name, build_dir / name) for name in [*functions, *layers]}
    print(f"{'artifact':<26}{'files':>7}{'unzipped':>12}{'zipped':>10}")
    for artifact in sizes.values():
        print(f"{artifact.name:<26}{artifact.files:>7}{artifact.unzipped / MB:>10.2f}MB{artifact.zipped / MB:>8.2f}MB")
    problems: list[str] = []
    print(f"\nper function, code + layers (limit {UNZIPPED_LIMIT // MB} MB unzipped; {ZIPPED_LIMIT // MB} MB a zip):")
    for name, function_layers in functions.items():
        total = sizes[name].unzipped + sum(sizes[layer].unzipped for layer in function_layers)
        share = total / UNZIPPED_LIMIT
        print(f"  {name:<24}{total / MB:>8.2f} MB unzipped = {share:.0%} of the limit")
        if share > BUDGET:
            problems.append(f"{name}: {total / MB:.1f} MB unzipped is over {BUDGET:.0%} of Lambda's limit")
    for artifact in sizes.values():
        if artifact.zipped > BUDGET * ZIPPED_LIMIT:
            problems.append(f"{artifact.name}: {artifact.zipped / MB:.1f} MB zipped is over {BUDGET:.0%} of 50 MB")
    for layer in layers:
        problems += check_layer(build_dir / layer)
    for name in functions:
        problems += check_function(name, build_dir / name)
    return problems


SMOKE_SCRIPT = r"""
import importlib.util, json, sys
function_dir, handler_name, events = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
spec = importlib.util.spec_from_file_location("app", function_dir + "/app.py")
module = importlib.util.module_from_spec(spec)
sys.path.insert(0, function_dir)
spec.loader.exec_module(module)
handler = getattr(module, handler_name)
assert callable(handler), handler_name
for path in events:
    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "smoke", 512, "smoke-request"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:smoke"
        def get_remaining_time_in_millis(self): return 29000
    response = handler(json.load(open(path)), Context())
    assert response["statusCode"] == 200, (path, response)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("moto", "pytest", "click", "infra"))
assert not leaked, leaked
print("ok", function_dir.rsplit("/", 1)[-1], len(events), "events")
"""


def smoke(build_dir: Path) -> list[str]:
    """Import every built handler against a host-platform build of the same layer, with nothing else on the path."""
    functions, _ = built_resources(build_dir)
    template = load_template(build_dir / "template.yaml")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="qbsync-smoke-") as tmp:
        layer_dir, runtime_dir = Path(tmp) / "layer", Path(tmp) / "runtime"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        machine = os.uname().machine
        make = ["make", "--no-print-directory", "-f", str(ROOT / "deploy" / "Makefile"), "build-SharedLayer"]
        subprocess.run(
            [*make, f"ARTIFACTS_DIR={layer_dir}", f"LAMBDA_PYTHON={version}", f"PYTHON={sys.executable}",
             f"PLATFORMS=manylinux2014_{machine} manylinux_2_28_{machine}"],
            cwd=ROOT / "shared", check=True, timeout=600,
        )  # fmt: skip
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"]
        subprocess.run([*pip, str(runtime_dir), "boto3"], check=True, timeout=600)  # what the Lambda runtime has
        paths = [str(layer_dir / "python"), str(runtime_dir)]
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join(paths),
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "smoke",
            "AWS_SECRET_ACCESS_KEY": "smoke",
            "QBSYNC_STAGE": "smoke",
            "QBSYNC_TABLE": "qbsync-smoke",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "qbsync",
            "POWERTOOLS_SERVICE_NAME": "qbsync",
        }
        for name in functions:
            _, handler = str(template["Resources"][name]["Properties"]["Handler"]).split(".")
            events = (
                [
                    str(ROOT / "events" / "api" / e)
                    for e in ("get_health.json", "get_openapi.json", "get_console_login.json")
                ]
                if name == "ApiFunction"
                else []
            )
            # -S: no site-packages, so nothing from this virtualenv leaks in; PYTHONPATH is all it sees.
            result = subprocess.run(
                [sys.executable, "-S", "-c", SMOKE_SCRIPT, str(build_dir / name), handler, json.dumps(events)],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            if result.returncode != 0:
                problems.append(f"{name}: import smoke failed\n{result.stderr[-2000:]}")
            else:
                print(" ", result.stdout.strip())
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.artifacts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build")
    parser.add_argument("--smoke", action="store_true", help="import every handler from a host build of the layer")
    args = parser.parse_args(argv)
    if not (args.build_dir / "template.yaml").exists():
        print(f"no build at {args.build_dir}: run `sam build` first", file=sys.stderr)
        return 2
    problems = report(args.build_dir)
    if args.smoke and not problems:
        print("\nimport smoke (host build of the same layer, isolated interpreter):")
        problems += smoke(args.build_dir)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if not problems:
        print("\nartifacts ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
