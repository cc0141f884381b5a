"""`mlci retrain decide` and `mlci retrain conclude`: the two ends of a retraining pipeline.

decide: drift verdict + champion age + force -> retrain-decision.json, retrain.env and
        retrain-pipeline.yml (the child pipeline the parent triggers).
conclude: the gate's verdict -> register / promote / merge request, or blocked, or skipped;
        always retrain-summary.json and a line in the job log.
"""

from __future__ import annotations

import argparse

DEFAULT_DATA_JOB = "mlci-retrain-fetch-data"


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    decide = sub.add_parser(
        "decide",
        help="decide whether to retrain and write the child pipeline (retrain-pipeline.yml)",
        description="Retrain when drift was detected (MLCI_DRIFT), the champion is older than "
        "retrain.max-model-age, there is no champion, or MLCI_FORCE_RETRAIN=true. Writes "
        "retrain-decision.json, retrain.env (MLCI_RETRAIN, MLCI_RETRAIN_REASON) and retrain-pipeline.yml.",
    )
    decide.add_argument("--image", default="", help="image of the training job (must contain mlci)")
    decide.add_argument("--train-tags", action="append", default=[], metavar="TAGS",
                        help="runner tags of the training job, comma-separated or repeated (e.g. gpu)")
    decide.add_argument("--train-timeout", default="", metavar="DURATION", help="training job timeout, e.g. 3h")
    decide.add_argument("--train-command", default="", metavar="CMD",
                        help="shell command for `mlci train -- CMD`; default: the train section of mlci.yml")
    decide.add_argument("--light-image", default=None, metavar="IMG",
                        help="image of the gate/conclude jobs (default: this job's image, $CI_JOB_IMAGE)")
    decide.add_argument("--light-tags", action="append", default=[], metavar="TAGS",
                        help="runner tags of the gate/conclude jobs")
    decide.add_argument("--setup-command", action="append", default=[], metavar="CMD",
                        help="before_script line for every child job (repeatable); default in a template job "
                        "($MLCI_INSTALL set): mlci's install step, with the extra of each child job's command")
    decide.add_argument("--data-job", default=DEFAULT_DATA_JOB, metavar="JOB",
                        help=f"parent job whose artifacts the training job downloads (default {DEFAULT_DATA_JOB}; "
                        "'none' for none)")
    decide.add_argument("--train-retry", type=int, default=2, choices=range(0, 3), metavar="{0,1,2}",
                        help="retries of the training job after runner/infrastructure failures (default 2)")
    decide.add_argument("--force", action="store_true", help="retrain regardless (same as MLCI_FORCE_RETRAIN=true)")
    decide.add_argument("--drift", choices=["true", "false"], default=None,
                        help="override the drift verdict (default: $MLCI_DRIFT from the drift job)")
    decide.add_argument("--now", default=None, help=argparse.SUPPRESS)  # reproducible decisions in tests
    decide.add_argument("train_argv", nargs=argparse.REMAINDER, metavar="-- CMD",
                        help="training command as argv (quoted safely); alternative to --train-command")

    conclude = sub.add_parser(
        "conclude",
        help="act on the gate verdict of a retrained model, or record a skipped retraining",
        description="Reads MLCI_GATE, MLCI_MODEL_NAME, MLCI_MODEL_VERSION (the gate's dotenv) and "
        "retrain.on-pass. Writes retrain-summary.json. Exit 0 skipped/registered/promoted/merge-request, "
        "1 blocked by the gate.",
    )
    conclude.add_argument("--skipped", action="store_true",
                          help="record that no retraining was needed (reason from $MLCI_RETRAIN_REASON)")


def run(args, ctx) -> int:
    from mlci.errors import UsageError

    if args.action == "decide":
        from mlci.retrain.workflow import run_decide

        return run_decide(args, ctx)
    if args.action == "conclude":
        from mlci.retrain.workflow import run_conclude

        return run_conclude(args, ctx)
    raise UsageError("usage: mlci retrain {decide,conclude} ...")
