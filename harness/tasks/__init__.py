"""The tasks the drivers (train, evaluate, interpolate, aggregate) are written against: `task_of(run)`."""
from __future__ import annotations

from harness.data.registry import DATASETS
from harness.methods.lookup import get_method, load_plugins
from harness.tasks.base import Task
from harness.tasks.dialogue import DIALOGUE_TASK
from harness.tasks.lm import LM_TASK

TASKS: dict[str, Task] = {task.name: task for task in (LM_TASK, DIALOGUE_TASK)}


def task_of(run) -> Task:
    """The task of the run's method; a clear error when it does not fit the dataset (e.g. a CVAE on PTB)."""
    load_plugins(run.plugins)
    method_task = get_method(run.model.method).task
    dataset_task = DATASETS[run.dataset].kind if run.dataset in DATASETS else method_task
    if method_task != dataset_task:
        raise ValueError(f"model '{run.model.name}' (method {run.model.method}) is a {method_task} method but dataset "
                         f"'{run.dataset}' is a {dataset_task} dataset; restrict the model with `datasets:` in model_defs")
    return TASKS[method_task]
