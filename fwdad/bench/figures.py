"""Figures as files: matplotlib with the Agg backend, and one way to lay out and save a figure
(shared by the benchmarks and the paper's experiments in fwdad.reproduce)."""
import math
import os


def pyplot():
    """matplotlib with the non-interactive Agg backend (figures are files)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(figure, out, name, legend_handles=None, legend_columns=4):
    """Write the figure; a legend, when given, goes below the axes (never over the data)."""
    path = os.path.join(out, name)
    bottom = 0.0
    if legend_handles:
        handles, labels = legend_handles
        rows = math.ceil(len(labels) / legend_columns)
        bottom = min(0.25, (0.2 + 0.25 * rows) / figure.get_size_inches()[1])
        figure.legend(handles, labels, loc="lower center", ncol=legend_columns, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, bottom, 1, 0.96))
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return name
