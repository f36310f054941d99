"""Side effects of an experiment: checkpoints, metric logs, progress, plots.

The transforms in `rlcore` are pure; this package holds what the experiment runner
does between jitted chunks (DESIGN.md §2, §5). Heavy dependencies (orbax,
tensorboardX, matplotlib) are imported only when used.

* `Checkpointer`: orbax checkpoints of pytrees (typed PRNG keys included), durable
  and crash-safe, with JSON metadata.
* `MetricsWriter`, `read_jsonl`: append-only JSONL metrics, torn-line tolerant,
  truncatable on resume; optional TensorBoard scalars.
* `ProgressBar`: terminal / log-friendly progress.
* `learning_curve_png`: mean-and-band learning curves as PNG.
* `write_json_atomic`, `read_json`, `atomic_open`, `to_jsonable`: atomic durable
  files and JSON conversion of numpy/JAX values (NaN -> null).
"""

from rlcore.io.atomic import atomic_open, read_json, to_jsonable, write_json_atomic
from rlcore.io.checkpoint import Checkpointer
from rlcore.io.metrics import MetricsWriter, read_jsonl
from rlcore.io.plots import learning_curve_png
from rlcore.io.progress import ProgressBar

__all__ = [
    "Checkpointer", "MetricsWriter", "ProgressBar", "atomic_open", "learning_curve_png",
    "read_json", "read_jsonl", "to_jsonable", "write_json_atomic",
]
