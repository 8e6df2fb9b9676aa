"""Pure tensor functions (no parameters). Every fast op has a naive reference it is tested against."""
