"""Weights from other implementations: the official ``xlstm`` package's layers and blocks."""
