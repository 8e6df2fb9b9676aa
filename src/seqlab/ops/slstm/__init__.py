"""The sLSTM scalar-memory recurrence (Beck et al. 2024): a naive step loop and a fused fast path."""

from seqlab.ops.slstm.fused import slstm_fused
from seqlab.ops.slstm.naive import SLSTMCellState, fresh_stabiliser, slstm_naive, slstm_step, zero_state

__all__ = ["SLSTMCellState", "fresh_stabiliser", "slstm_fused", "slstm_naive", "slstm_step", "zero_state"]
