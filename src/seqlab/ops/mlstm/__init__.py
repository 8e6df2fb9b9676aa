"""The mLSTM matrix-memory recurrence (Beck et al. 2024) in three equivalent forms.

``recurrent`` (a step loop, the reference), ``chunkwise`` (linear in T) and ``parallel``
(the quadratic D-matrix form, which is ``chunkwise`` with one chunk).
"""

from seqlab.ops.mlstm.chunkwise import mlstm_chunkwise, mlstm_parallel
from seqlab.ops.mlstm.recurrent import MLSTMCellState, mlstm_recurrent, mlstm_step, zero_state

__all__ = [
    "MLSTMCellState",
    "mlstm_chunkwise",
    "mlstm_parallel",
    "mlstm_recurrent",
    "mlstm_step",
    "zero_state",
]
