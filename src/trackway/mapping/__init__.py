"""Mappings: turn an event into the payload of a destination's action.

A mapping is a JSON object mixing raw values and directives (`{"@path": "$.userId"}`);
`compile_mapping` validates it once and the Mapping it returns applies it to events.
"""

from trackway.mapping.directives import DIRECTIVES, MappingError, UnmappableEvent
from trackway.mapping.engine import Mapping, compile_mapping

__all__ = ["DIRECTIVES", "Mapping", "MappingError", "UnmappableEvent", "compile_mapping"]
