"""Optuna's study plots, drawn with matplotlib (Agg) into PNG bytes."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

# (file stem, title, function name in optuna.visualization.matplotlib)
PLOTS = (
    ("optimization-history", "Tuning: optimization history", "plot_optimization_history"),
    ("param-importances", "Tuning: parameter importances", "plot_param_importances"),
    ("parallel-coordinate", "Tuning: parallel coordinates", "plot_parallel_coordinate"),
    ("intermediate-values", "Tuning: intermediate values (pruning)", "plot_intermediate_values"),
)


def render(study, note: Callable[[str], None], metric: str = "Objective Value") -> list[tuple[str, str, bytes]]:
    """[(file name, title, png)] for the plots the study has data for; a plot that cannot be drawn is noted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as optuna_plots

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return []
    has_intermediate = any(t.intermediate_values for t in trials)
    drawn = []
    for stem, title, function in PLOTS:
        if stem == "intermediate-values" and not has_intermediate:
            continue
        if stem in ("param-importances", "parallel-coordinate") and len(complete) < 2:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                named = {} if stem == "intermediate-values" else {"target_name": metric}
                axes = getattr(optuna_plots, function)(study, **named)
            figure = axes.flat[0].figure if hasattr(axes, "flat") else axes.figure
            figure.set_size_inches(8, 4.5)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            drawn.append((f"{stem}.png", title, buffer.getvalue()))
        except Exception as exc:  # one plot that cannot be drawn must not cost the others
            note(f"tuning plot {stem} skipped: {exc}")
        finally:
            plt.close("all")
    return drawn
