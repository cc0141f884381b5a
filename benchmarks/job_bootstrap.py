"""Bootstrap cost of every template job: from an empty virtualenv to `mlci --version`, in one run.

Three ways, each from an empty virtualenv with warm local caches (a warm-up
install of each fills them first, untimed):

- pip, full set: `pip install mlci[all]`, i.e. every dependency, as every job installed before the split;
- pip, lean: the templates' install step with MLCI_INSTALL=pip and the job's extra;
- uv, lean: the same step with MLCI_INSTALL=uv (uv from PATH, the templates' first choice).

mlci itself comes from a loopback copy of GitLab's PyPI registry serving the wheel
built from this checkout, as the templates' index URL would; its dependencies from
the machine's normal index. Per job (the extras are read from the rendered templates)
it reports the package count, the installed size and the time until `mlci --version`
answers. Targets:
- the data check's bootstrap (uv, lean) <= 1/50 of the full pip install, and under half its size;
- the core alone installs <= 15 packages;
- the heaviest job <= 1/15 of the full pip install: the largest job extra, and a deploy job that
  also needs the full MLflow stack (mlci[deploy,mlflow], e.g. for a sqlite registry), both with uv.

    python benchmarks/job_bootstrap.py [--repeat 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlci.generate.install import install_step  # noqa: E402
from tests.fakes.pypi_registry import FakePyPIRegistry  # noqa: E402

DATA_CHECK_TIME_RATIO = 1 / 50
DATA_CHECK_SIZE_RATIO = 0.5
HEAVIEST_TIME_RATIO = 1 / 15
CORE_MAX_PACKAGES = 15
FULL_MLFLOW_DEPLOY = "deploy,mlflow"


@dataclass
class Install:
    seconds: float
    packages: int
    megabytes: float


def template_jobs() -> dict[str, str]:
    """job -> the extra it installs, from the rendered templates ('' is the core alone)."""
    jobs: dict[str, str] = {}
    for path in sorted((REPO / "ci_templates").glob("mlci-*.yml")):
        documents = list(yaml.safe_load_all(path.read_text()))
        for name, job in (documents[-1] or {}).items():
            if isinstance(job, dict) and "MLCI_EXTRA" in (job.get("variables") or {}):
                jobs[name] = job["variables"]["MLCI_EXTRA"]
    return jobs


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages"))


def _inventory(venv: Path) -> tuple[set[str], int]:
    site = _site_packages(venv)
    dists = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
    return dists, size


def _new_venv(root: Path, tool: str) -> Path:
    """An empty virtualenv (untimed); the pip one with pip in it, as a python image has."""
    venv = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=root))
    seed = ["--seed"] if tool == "pip" else []
    subprocess.run([os.environ.get("MLCI_BENCH_UV", "uv"), "venv", "-q", "--allow-existing", *seed,
                    "--python", sys.executable, str(venv)], check=True)
    return venv


def measure(root: Path, tool: str, extra: str | None, *, env: dict[str, str], wheel_dir: Path,
            version: str) -> Install:
    """One install into a fresh venv; extra None means the full set with plain pip."""
    venv = _new_venv(root, tool)
    before, size_before = _inventory(venv)
    job_env = {**env, "PATH": f"{venv / 'bin'}:{env['PATH']}", "VIRTUAL_ENV": str(venv)}
    start = time.perf_counter()
    if extra is None:
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--find-links",
                        str(wheel_dir), f"mlci[all]=={version}"], env=job_env, check=True)
        subprocess.run([str(venv / "bin" / "mlci"), "--version"], env=job_env, check=True, stdout=subprocess.DEVNULL)
    else:
        step_env = {**job_env, "MLCI_INSTALL": tool, "MLCI_EXTRA": extra, "MLCI_VERSION": version}
        subprocess.run(["sh", "-c", install_step()], env=step_env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    after, size_after = _inventory(venv)
    shutil.rmtree(venv, ignore_errors=True)
    return Install(seconds, len(after - before), (size_after - size_before) / 1e6)


def real_uv() -> str | None:
    """uv's own binary: a version manager's shim on PATH would add its start-up to every call."""
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="timed installs per case (median)")
    parser.add_argument("--keep", metavar="DIR", help="work here and keep it (default: a temp dir)")
    args = parser.parse_args()
    uv_bin = real_uv()
    if uv_bin is None:
        sys.exit("uv is not installed: pip install uv (the dev extra has it)")
    os.environ["MLCI_BENCH_UV"] = uv_bin

    root = Path(args.keep or tempfile.mkdtemp(prefix="mlci-bootstrap-"))
    root.mkdir(parents=True, exist_ok=True)
    tools = root / "tools"  # what a runner image would have on PATH: uv, nothing else of ours
    tools.mkdir(exist_ok=True)
    (tools / "uv").unlink(missing_ok=True)
    (tools / "uv").symlink_to(uv_bin)
    wheel_dir = root / "dist"
    subprocess.run([uv_bin, "build", "-q", "--wheel", "-o", str(wheel_dir), str(REPO)], check=True)
    (wheel,) = wheel_dir.glob("mlci-*.whl")
    version = wheel.name.split("-")[1]
    jobs = template_jobs()
    extras = sorted(set(jobs.values()) | {""})  # the core alone too, for its package count

    with FakePyPIRegistry(projects={"77": "mlci/mlci"}, public=True) as registry:
        registry.add_file("mlci/mlci", wheel)
        env = {**os.environ, "MLCI_INDEX_URL": registry.simple_url("mlci/mlci"), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
               "PATH": f"{tools}:/usr/local/bin:/usr/bin:/bin"}
        env.pop("VIRTUAL_ENV", None)
        cases = [("pip", None)] + [(tool, extra) for extra in extras for tool in ("pip", "uv")]
        cases.append(("uv", FULL_MLFLOW_DEPLOY))
        # Every extra's packages are part of mlci[all]: one full install per tool fills both caches.
        print("warming the pip and uv caches...", flush=True)
        measure(root, "pip", None, env=env, wheel_dir=wheel_dir, version=version)
        measure(root, "uv", "all", env=env, wheel_dir=wheel_dir, version=version)
        results: dict[tuple[str, str | None], Install] = {}
        for _ in range(args.repeat):  # interleaved, so machine noise hits every case alike
            for tool, extra in cases:
                run = measure(root, tool, extra, env=env, wheel_dir=wheel_dir, version=version)
                results.setdefault((tool, extra), []).append(run)  # type: ignore[arg-type]
    median = {key: Install(statistics.median(r.seconds for r in runs), runs[0].packages, runs[0].megabytes)
              for key, runs in results.items()}
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)

    full = median[("pip", None)]
    print(f"\nmlci {version}; {args.repeat} timed install(s) per case, median; warm pip and uv caches\n")
    print(f"{'case':<34} {'packages':>8} {'MB':>8} {'seconds':>9} {'vs full pip':>12}")
    print(f"{'pip, full set (mlci[all])':<34} {full.packages:>8} {full.megabytes:>8.0f} {full.seconds:>9.2f} "
          f"{1:>12.3f}")
    for tool, extra in cases[1:]:
        run = median[(tool, extra)]
        print(f"{f'{tool}, lean: mlci[{extra}]' if extra else f'{tool}, lean: core':<34} {run.packages:>8} "
              f"{run.megabytes:>8.0f} {run.seconds:>9.2f} {run.seconds / full.seconds:>12.3f}")
    print(f"\n{'template job':<28} {'extra':<8} {'packages':>8} {'MB':>7} {'pip full':>9} {'pip lean':>9} "
          f"{'uv lean':>8} {'uv/full':>8}")
    for job, extra in jobs.items():
        pip_lean, uv_lean = median[("pip", extra)], median[("uv", extra)]
        print(f"{job:<28} {extra or 'core':<8} {uv_lean.packages:>8} {uv_lean.megabytes:>7.0f} "
              f"{full.seconds:>9.2f} {pip_lean.seconds:>9.2f} {uv_lean.seconds:>8.2f} "
              f"{uv_lean.seconds / full.seconds:>8.3f}")

    data, core = median[("uv", "data")], median[("uv", "")]
    heaviest_extra = max(set(jobs.values()), key=lambda e: median[("uv", e)].megabytes)
    heaviest = median[("uv", heaviest_extra)]
    checks = [
        ("data check bootstrap, uv lean / pip full", data.seconds / full.seconds, DATA_CHECK_TIME_RATIO, "<="),
        ("data check installed size / pip full", data.megabytes / full.megabytes, DATA_CHECK_SIZE_RATIO, "<"),
        ("core install, packages (mlci included)", core.packages, CORE_MAX_PACKAGES, "<="),
        (f"heaviest job (mlci[{heaviest_extra}]), uv lean / pip full", heaviest.seconds / full.seconds,
         HEAVIEST_TIME_RATIO, "<="),
        (f"deploy with the full MLflow stack (mlci[{FULL_MLFLOW_DEPLOY}]), uv / pip full",
         median[("uv", FULL_MLFLOW_DEPLOY)].seconds / full.seconds, HEAVIEST_TIME_RATIO, "<="),
    ]
    print()
    missed = 0
    for label, value, target, op in checks:
        ok = value <= target if op == "<=" else value < target
        missed += not ok
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        target_shown = f"{target:.3f}" if isinstance(target, float) else str(target)
        print(f"{label:<52} {shown:>8}  (target {op} {target_shown})  {'OK' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
