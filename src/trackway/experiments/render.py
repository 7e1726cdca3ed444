"""The readable table of `trackway experiments results`."""

from trackway.experiments.results import MetricResult, Results


def render(results: Results) -> str:
    total = sum(results.units.values())
    lines = [f"Experiment '{results.experiment}' as of {results.as_of}: {total} units"]
    if results.srm.flagged:
        lines.append(
            f"WARNING: sample ratio mismatch (p = {results.srm.p_value:.2g} < 0.001): the split"
            " of units does not match the expected one; do not trust these results."
        )
    if results.multiple_exposures:
        lines.append(
            f"{results.multiple_exposures} unit(s) saw more than one variation and are excluded."
        )
    for metric in results.metrics:
        lines += ["", *_metric(metric)]
    return "\n".join(lines)


def _metric(metric: MetricResult) -> list[str]:
    bayesian = any(v.chance_to_win is not None for v in metric.variations)
    total = {"conversion": "conversions", "count": "events"}.get(metric.type, "sum")
    rate = "rate" if metric.type == "conversion" else "mean"
    head = ["variation", "units", total, rate, "uplift [interval]"]
    head += ["chance to win", "risk"] if bayesian else ["p-value"]
    rows = [head]
    for result, sum_ in zip(metric.variations, metric.sums, strict=True):
        row = [result.variation, str(result.units), f"{sum_:g}", _rate(result.mean, metric.type)]
        if result is metric.variations[0]:
            row += ["(control)", "", ""] if bayesian else ["(control)", ""]
        elif result.error is not None:
            row += [f"({result.error})", "", ""] if bayesian else [f"({result.error})", ""]
        else:
            low, high = result.ci
            row.append(f"{result.expected:+.1%} [{low:+.1%}, {high:+.1%}]")
            if bayesian and result.risk is not None:
                row += [f"{result.chance_to_win:.1%}", f"{result.risk[1]:.4f}"]
            else:
                row.append(f"{result.p_value:.4f}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    table = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return [f"{metric.role} '{metric.name}' ({metric.type})", *table]


def _rate(mean: float, kind: str) -> str:
    return f"{mean:.2%}" if kind == "conversion" else f"{mean:.4g}"
