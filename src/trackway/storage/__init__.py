"""Storage: the interfaces the rest of Trackway uses, and one package per backend."""
