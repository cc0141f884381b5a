"""`mlci optimize [--run ID] [--quantize none|dynamic-int8]`: export the candidate to ONNX and prove parity.

Writes optimize.json, optimize.junit.xml, optimize.md and optimize.env
(`MLCI_OPTIMIZE`, `MLCI_OPTIMIZED_MODEL_URI`). Exit 0 when parity passed (the
ONNX model is logged in the candidate run next to the original), or when the
model is unsupported and optimize.on-unsupported is warn; 1 when parity failed
(nothing is logged; the graph is kept as optimize-failed.onnx) or the model is
unsupported.
"""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument(
        "--run", metavar="ID",
        help="candidate MLflow run id (default: $MLCI_RUN_ID from the train job, else the run in train.json)",
    )
    parser.add_argument(
        "--quantize", choices=["none", "dynamic-int8"],
        help="onnxruntime dynamic int8 quantization (optimize.quantize)",
    )


def run(args, ctx) -> int:
    from pathlib import Path

    from mlci.adapters.ci_env import read_ci_env
    from mlci.adapters.mlflow import Registry
    from mlci.commands.gate import _run_of_last_train
    from mlci.errors import CheckFailed, UsageError
    from mlci.optimize import export
    from mlci.optimize.runner import FAILED, PASSED, UNSUPPORTED, Outcome, optimize, record, summary_text
    from mlci.optimize.settings import settings_from_config

    config = ctx.config(flags={("optimize", "quantize"): args.quantize} if args.quantize else None)
    settings = settings_from_config(config)
    run_id = args.run or ctx.env.get("MLCI_RUN_ID", "") or _run_of_last_train(ctx)
    if not run_id:
        raise UsageError(
            f"no candidate run: pass --run ID or set MLCI_RUN_ID (no {ctx.out_path('train.json')} either)",
            hint="in a pipeline, mlci-optimize gets MLCI_RUN_ID from the train job's dotenv report via needs:",
        )
    artifact_path = config.get("model", "artifact-path", default="model")
    registry = Registry.from_config(config, ci=read_ci_env(ctx.env))
    ctx.info(f"optimize: candidate run {run_id}, model {artifact_path!r} -> ONNX {settings.artifact_path!r}"
             f" (quantize: {settings.quantize})")

    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlci-optimize-") as tmp:
        try:
            outcome, _, served = optimize(registry, settings, run_id=run_id, artifact_path=artifact_path,
                                          workdir=Path(tmp), where=config.where, log=ctx.info)
        except export.Unsupported as exc:
            outcome = Outcome(status=UNSUPPORTED, run_id=run_id, quantize=settings.quantize, reason=exc.message)
            record(registry, outcome)
            _write_outputs(ctx, outcome)
            if settings.on_unsupported == "warn":
                ctx.warn(f"{exc.message}; optimize.on-unsupported is warn: continuing with the original model")
                return 0
            raise CheckFailed(f"cannot optimize run {run_id}: {exc.message}", hint=exc.hint) from exc
        if outcome.status == PASSED:
            model, signature, inputs = served
            record(registry, outcome, served_model=model, signature=signature, example=inputs.example)
        else:
            import onnx

            kept = ctx.out_path("optimize-failed.onnx")
            kept.parent.mkdir(parents=True, exist_ok=True)
            onnx.save(served[0], str(kept))
            outcome.failed_model_file = str(kept)
            record(registry, outcome)
    _write_outputs(ctx, outcome)

    for check in outcome.parity.checks:
        ctx.info(f"  {'PASS' if check.status == PASSED else 'FAIL'}  parity {check.name}: {check.message}")
    for note in outcome.notes:
        ctx.info(f"  note: {note}")
    ctx.info(f"optimized vs original: {summary_text(outcome)}")
    if outcome.status == FAILED:
        failed = ", ".join(check.name for check in outcome.parity.failures)
        raise CheckFailed(
            f"parity of the optimized model with run {run_id} failed: {failed}; the ONNX model was not logged",
            hint=f"see {ctx.out_path('optimize.md')}; loosen optimize.parity only if the difference is acceptable",
        )
    ctx.info(f"logged {outcome.model_uri} as {settings.artifact_path!r} in run {run_id}")
    return 0


def _write_outputs(ctx, outcome) -> None:
    from mlci.optimize import render
    from mlci.outputs import write_json
    from mlci.outputs.atomic import atomic_write
    from mlci.outputs.dotenv import write_dotenv
    from mlci.outputs.junit import write_junit

    write_json(ctx.out_path("optimize.json"), render.json_payload(outcome))
    write_junit(ctx.out_path("optimize.junit.xml"), render.junit_suites(outcome))
    atomic_write(ctx.out_path("optimize.md"), render.markdown(outcome))
    write_dotenv(ctx.out_path("optimize.env"), render.dotenv_values(outcome))
