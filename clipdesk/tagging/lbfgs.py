"""Limited-memory BFGS for small smooth convex problems (numpy only: the run side has no scipy)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def minimize(objective: Objective, start: np.ndarray, *, max_iterations: int = 200, memory: int = 10,
             tolerance: float = 1e-9) -> tuple[np.ndarray, int]:
    """(argmin, iterations) of `objective(x) -> (value, gradient)` from `start`, with backtracking
    (Armijo) line search; stops when an iteration improves the value by less than `tolerance` relative."""
    x = np.array(start, dtype=np.float64)
    value, gradient = objective(x)
    steps: list[np.ndarray] = []
    changes: list[np.ndarray] = []
    for iteration in range(1, max_iterations + 1):
        direction = -_inverse_hessian_times(gradient, steps, changes)
        slope = float(np.vdot(gradient, direction))
        if slope >= 0:  # not a descent direction (curvature pairs went stale): restart from the gradient
            steps.clear(), changes.clear()
            direction, slope = -gradient, -float(np.vdot(gradient, gradient))
        if slope == 0:
            return x, iteration
        length = 1.0
        while True:
            candidate = x + length * direction
            new_value, new_gradient = objective(candidate)
            if new_value <= value + 1e-4 * length * slope or length < 1e-12:
                break
            length *= 0.5
        step, change = candidate - x, new_gradient - gradient
        if float(np.vdot(step, change)) > 1e-12:
            steps.append(step), changes.append(change)
            del steps[:-memory], changes[:-memory]
        converged = abs(value - new_value) <= tolerance * max(1.0, abs(new_value))
        x, value, gradient = candidate, new_value, new_gradient
        if converged:
            return x, iteration
    return x, max_iterations


def _inverse_hessian_times(gradient: np.ndarray, steps: list[np.ndarray], changes: list[np.ndarray]) -> np.ndarray:
    """The two-loop recursion: the L-BFGS estimate of H^-1 @ gradient."""
    q = gradient.copy()
    alphas = []
    for step, change in zip(reversed(steps), reversed(changes)):
        alpha = float(np.vdot(step, q)) / float(np.vdot(change, step))
        alphas.append(alpha)
        q -= alpha * change
    if steps:
        q *= float(np.vdot(steps[-1], changes[-1])) / float(np.vdot(changes[-1], changes[-1]))
    else:  # first step: unit length along the gradient
        q /= max(float(np.linalg.norm(q)), 1e-12)
    for (step, change), alpha in zip(zip(steps, changes), reversed(alphas)):
        beta = float(np.vdot(change, q)) / float(np.vdot(change, step))
        q += step * (alpha - beta)
    return q
