"""Evaluation beyond a task's metrics: gradient-flow diagnostics (the vanishing-gradient story)."""

from seqlab.evaluation.gradient_flow import (
    build_preset,
    gradient_flow_study,
    gradient_norms_over_time,
    last_step_loss,
    model_gradient_flow,
    plot_gradient_flow,
    probe_batch,
    recurrent_spectral_radii,
)

__all__ = [
    "build_preset",
    "gradient_flow_study",
    "gradient_norms_over_time",
    "last_step_loss",
    "model_gradient_flow",
    "plot_gradient_flow",
    "probe_batch",
    "recurrent_spectral_radii",
]
