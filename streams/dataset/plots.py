"""The report's pictures (matplotlib, no screen): score histograms, margin distributions, rows over time,
negatives per record. Each is a PNG in DIR/report/."""

from pathlib import Path

from streams.dataset.report import Report

INSTALL_HINT = "pip install matplotlib (or pairstream[local])"


def draw(report: Report, out: Path) -> list[Path]:
    """Write the plots; returns their paths. Raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    def stacked(series, title: str, xlabel: str, xlim, name: str, zero_line: bool = False) -> None:
        """One panel per series, sharing the x axis: counts of very different sizes stay readable."""
        series = [(values, label, colour) for values, label, colour in series if values]
        if not series:
            return
        fig, axes = plt.subplots(len(series), 1, figsize=(8, 1.2 + 1.9 * len(series)), sharex=True, squeeze=False)
        for ax, (values, label, colour) in zip(axes[:, 0], series):
            ax.hist(values, bins=[i / 50 - 1 for i in range(101)], color=colour, alpha=0.8)
            median = sorted(values)[len(values) // 2]
            ax.axvline(median, color="black", linestyle=":", linewidth=1)
            ax.set_ylabel("count")
            ax.set_title(f"{label}: n={len(values)}, median {median:.2f}", fontsize=9, loc="left")
            if zero_line:
                ax.axvspan(xlim[0], 0, color="tab:red", alpha=0.08)
                ax.axvline(0, color="tab:red", linewidth=1)
        axes[-1, 0].set(xlabel=xlabel, xlim=xlim)
        fig.suptitle(title)
        save(fig, name)

    stacked([(report.scores["anchor_positive"], "anchor-positive", "tab:green"),
             (report.scores["anchor_negative"], "anchor-negative (the LLM's)", "tab:red"),
             (report.scores["mined"], "anchor-mined negative", "tab:blue")],
            "Cosine similarity to the anchor", "cosine", (-0.3, 1.0), "scores.png")
    stacked([(report.margins["llm"], "positive minus the LLM's negative", "tab:red"),
             (report.margins["mined"], "positive minus a mined negative", "tab:blue")],
            "Margins (shaded: inverted, the negative closer than the positive)", "margin (cosine)", (-0.5, 1.0),
            "margins.png", zero_line=True)

    if report.times:
        times = sorted(report.times)
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.plot(times, range(1, len(times) + 1), color="tab:green")
        ax.set(xlabel="generated at (UTC)", ylabel="records", title="Rows over time (cumulative)")
        fig.autofmt_xdate()
        save(fig, "rows_over_time.png")

    tally = report.tally
    counts = sorted({int(k) for k in (*tally.mined, *tally.negatives)})
    if counts:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        width = 0.4
        mined = ax.bar([c - width / 2 for c in counts], [tally.mined.get(str(c), 0) for c in counts], width,
                       label="mined", color="tab:blue")
        every = ax.bar([c + width / 2 for c in counts], [tally.negatives.get(str(c), 0) for c in counts], width,
                       label="all (the LLM's + mined)", color="tab:gray")
        for bars in (mined, every):
            ax.bar_label(bars, fontsize=8)
        ax.set(xlabel="negatives per record", ylabel="records", title="Negatives per record", xticks=counts)
        ax.legend()
        save(fig, "negatives_per_record.png")
    return written
