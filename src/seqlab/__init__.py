"""seqlab: implement, train, evaluate and compare sequence models, from RNNs to Transformers."""

__version__ = "0.1.0"
