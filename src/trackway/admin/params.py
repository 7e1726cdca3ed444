"""Checking the admin API's query parameters: a bad one is a ValueError, which the API
answers with 400 `invalid_parameter`."""


def int_param(value: str, name: str, low: int, high: int) -> int:
    """A whole number from `low` to `high`."""
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return number
