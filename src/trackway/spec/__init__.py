"""The event model: message types, limits, validation, normalization and errors."""
