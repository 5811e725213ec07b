"""Run a module in training mode without moving its BatchNorm running statistics.

Cross-type self-supervision runs head d on images of the OTHER datasets. Head d's running mean and
variance describe its own dataset's features (the main keypoint pass normalises each head over its
own samples), and they are what evaluation normalises with; letting the CSS pass update them
would mix hand statistics into the human head and so on, a train/test mismatch. Inside
`batch_statistics_only` a training-mode BN still normalises with the batch's statistics (and
back-propagates through them) but leaves running_mean, running_var and num_batches_tracked as
they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def batch_statistics_only(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every BatchNorm in `module` that tracks running statistics normalises
    with batch statistics and updates nothing; restored on exit (also after an exception)."""
    norms = [m for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    # A BN with track_running_stats False passes no running buffers to F.batch_norm in training
    # mode (batch statistics, no update); in eval mode it still reads its buffers, as before.
    for norm in norms:
        norm.track_running_stats = False
    try:
        yield module
    finally:
        for norm in norms:
            norm.track_running_stats = True
