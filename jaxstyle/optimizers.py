"""The optimizers of the image, in one table: a new optimizer is one step function plus one entry
in :data:`OPTIMIZERS`. Settings, the CLI's choices and the app's options all read the table.

Each step function takes the Optax transformation its entry makes, the loss of the pyramid levels
(``value_and_terms(levels) -> (total, terms)``), the levels and the optimizer's state, and returns
the new levels, state, image and the terms *before* the step. It also owns how its iterates stay
in the [0, 1] box. This module imports JAX only inside its functions, so that the settings can
read the table without loading JAX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

# Adam's step size starts at this fraction of the learning rate and rises linearly to all of it
# over the warm-up (see step_schedule).
WARMUP_START = 0.12


class StepSize(NamedTuple):
    """The step-size settings, as traced values (changing them never recompiles)."""

    learning_rate: Any
    warmup_iterations: Any
    decay_power: Any


def step_schedule(step_size: StepSize) -> Callable[[Any], Any]:
    """Adam's step size at each iteration of a scale: a linear ramp from WARMUP_START × the learning
    rate to the whole of it over ``warmup_iterations``, then a decay as
    ``(warmup_iterations / iteration) ** decay_power`` (0: constant; 0.5: inverse square root). The
    step at an iteration does not depend on how many iterations the run has, so a run of 100
    iterations is the first 100 of a run of 500, and the live preview shows the very images a
    shorter run would end with.

    Differs from the usual constant step: Adam's first steps are about the learning rate on every
    pixel whatever the gradient, and at a full step they overshoot, tearing up the content and
    adding noise that takes a long tail of iterations to smooth out again (hence the warm-up). And
    a constant step never settles: Adam's normalized step stays near the learning rate while the
    gradients shrink, and as its second-moment estimate forgets the large gradients of the first
    iterations, the steps grow relative to the gradients and the loss climbs back up (README,
    "Quality"). The decay keeps the early speed and lets the image settle.
    """
    import jax.numpy as jnp

    learning_rate, warmup_iterations, decay_power = step_size

    def schedule(count):
        warmup = jnp.maximum(warmup_iterations, 1.0)
        ramp = jnp.where(warmup_iterations > 0, jnp.minimum(1.0, count / warmup), 1.0)
        decay = jnp.minimum(1.0, warmup / jnp.maximum(count, 1.0)) ** decay_power
        return learning_rate * (WARMUP_START + (1.0 - WARMUP_START) * ramp) * decay

    return schedule


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """One entry of the table.

    Attributes:
        label: the name people see.
        uses_step_size: whether learning_rate, warmup_iterations and decay_power apply (the app
            greys them out otherwise).
        clips_in_loss: whether the loss is taken of the image clipped to the box (for optimizers
            whose iterates must not be moved between steps) instead of projecting the iterates.
        make: the Optax transformation, from the step-size settings.
        step: one iteration (see the module docstring).
    """

    label: str
    uses_step_size: bool
    clips_in_loss: bool
    make: Callable[[StepSize], Any]
    step: Callable[..., tuple[Any, Any, Any, Any]]


def _adam(step_size: StepSize):
    import optax

    return optax.adam(step_schedule(step_size))


def _adam_step(transformation, value_and_terms, levels, opt_state):
    import jax
    import optax

    from jaxstyle.pyramid import project_into_box

    (_, terms), grad = jax.value_and_grad(value_and_terms, has_aux=True)(levels)
    updates, opt_state = transformation.update(grad, opt_state, levels)
    levels, image = project_into_box(optax.apply_updates(levels, updates))
    return levels, opt_state, image, terms


def _lbfgs(step_size: StepSize):
    import optax

    del step_size  # the line search chooses the step
    return optax.lbfgs()


def _lbfgs_step(transformation, value_and_terms, levels, opt_state):
    import optax

    from jaxstyle.pyramid import compose

    def total(levels):
        return value_and_terms(levels)[0]

    # The line search ended the previous step with the value and gradient at this very point;
    # reuse them (only the first step of a scale computes them). It keeps the total only, so the
    # terms for the history take one forward pass, a third of what a second value_and_grad costs.
    value, grad = optax.value_and_grad_from_state(total)(levels, state=opt_state)
    terms = value_and_terms(levels)[1]
    updates, opt_state = transformation.update(grad, opt_state, levels, value=value, grad=grad, value_fn=total)
    levels = optax.apply_updates(levels, updates)  # may leave the box: the loss clips (clips_in_loss)
    return levels, opt_state, compose(levels), terms


OPTIMIZERS: dict[str, Optimizer] = {
    "adam": Optimizer("Adam", uses_step_size=True, clips_in_loss=False, make=_adam, step=_adam_step),
    # L-BFGS minimizes the loss of the clipped image instead of projecting its iterates into the
    # box: a projection would move the point away from where the line search left its value and
    # gradient (which the next step reuses) and hand the curvature memory pairs that are not the
    # function's.
    "lbfgs": Optimizer("L-BFGS", uses_step_size=False, clips_in_loss=True, make=_lbfgs, step=_lbfgs_step),
}
