"""Side effects of an experiment: checkpoints, metric logs, progress, plots.

The transforms in `rlcore` are pure; this package holds what the experiment runner
does between jitted chunks (docs/design.md, "Layers"). Heavy dependencies (orbax,
tensorboardX, matplotlib, tqdm) are imported only when used.

* `Checkpointer`: orbax checkpoints of pytrees (typed PRNG keys included), durable
  and crash-safe, with JSON metadata.
* `MetricsWriter`, `read_jsonl`: append-only JSONL metrics, torn-line tolerant,
  truncatable on resume; optional TensorBoard scalars.
* `progress_bar`: a tqdm bar, terminal- and log-friendly.
* `learning_curves_png`, `learning_curve_png`: mean-and-band learning curves as PNG,
  one panel per quantity.
* `write_json_atomic`, `read_json`, `atomic_open`, `to_jsonable`: atomic durable
  files and JSON conversion of numpy/JAX values (NaN -> null).
"""

from rlcore.io.atomic import atomic_open, read_json, to_jsonable, write_json_atomic
from rlcore.io.checkpoint import Checkpointer, CorruptCheckpointError
from rlcore.io.metrics import MetricsWriter, read_jsonl
from rlcore.io.plots import learning_curve_png, learning_curves_png
from rlcore.io.progress import progress_bar

__all__ = [
    "Checkpointer", "CorruptCheckpointError", "MetricsWriter", "atomic_open",
    "learning_curve_png", "learning_curves_png", "progress_bar", "read_json", "read_jsonl",
    "to_jsonable", "write_json_atomic",
]
