"""`pairstream report DIR`: the dataset's figures, from the shards themselves, and plots of them.

It reads the full records (the top-level shards, when the directory keeps them) and the dead letters
(with `consume --dead-letters`), builds the same `Tally` the sink keeps for the card, and adds what a
tally cannot hold: each record's time, for rows over time. `streams.dataset.plots` draws it.
"""

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import orjson

from streams.dataset.layouts import MAIN
from streams.dataset.store import DatasetError, records_of
from streams.dataset.tally import Tally


class ReportError(DatasetError):
    """DIR is not a pairstream dataset, or holds no full records to report on."""


@dataclass
class Report:
    dir: Path
    tally: Tally = field(default_factory=Tally)
    rows: dict[str, int] = field(default_factory=dict)  # per family, from the manifest
    times: list[datetime] = field(default_factory=list)  # generated_at of every record
    mining_ratio: float = 0.95  # the workers' positive-aware rule, as the manifest records it
    under_rule: int = 0  # mined negatives with score < cos(a, p) - |cos(a, p)| * (1 - mining_ratio)
    margins: dict[str, list[float]] = field(default_factory=lambda: {"llm": [], "mined": []})
    scores: dict[str, list[float]] = field(default_factory=lambda: {"anchor_positive": [], "anchor_negative": [],
                                                                    "mined": []})

    def add(self, record: dict[str, Any]) -> None:
        self.tally.add(record)
        if record.get("generated_at"):
            when = record["generated_at"]
            self.times.append(when if isinstance(when, datetime) else
                              datetime.fromisoformat(str(when).replace("Z", "+00:00")))
        quality = record.get("quality") or {}
        ap, an = quality.get("anchor_positive"), quality.get("anchor_negative")
        for name, value in (("anchor_positive", ap), ("anchor_negative", an)):
            if value is not None:
                self.scores[name].append(value)
        if ap is not None and an is not None:
            self.margins["llm"].append(ap - an)
        for m in record.get("mined_negatives") or []:
            self.scores["mined"].append(m["score"])
            if ap is not None:
                self.margins["mined"].append(ap - m["score"])
                self.under_rule += m["score"] < ap - abs(ap) * (1 - self.mining_ratio)


def read_dataset(out_dir: Path, purpose: str) -> tuple[dict[str, Any], Iterator[tuple[str, dict[str, Any]]]]:
    """The manifest of DIR, and (family, row) for every full record and every dead letter not superseded by one
    of them, in its complete shards. Raises ReportError when DIR is not a dataset or keeps no full records (`purpose` says who needs them)."""
    manifest_path = out_dir / "manifest.json"
    if not manifest_path.is_file():
        raise ReportError(f"{out_dir} is not a pairstream dataset (no manifest.json)")
    manifest = orjson.loads(manifest_path.read_bytes())
    if manifest.get("columns") != "all":
        raise ReportError(f"{out_dir} keeps only the columns {manifest.get('columns')}: {purpose} needs the full "
                          "records (consume without --columns)")
    return manifest, records_of([(s["family"], out_dir / s["path"]) for s in manifest.get("shards", [])])


def build_report(out_dir: Path) -> Report:
    manifest, rows = read_dataset(out_dir, "the report")
    report = Report(out_dir, rows=manifest.get("rows", {}), mining_ratio=manifest.get("mining_negative_ratio", 0.95))
    for family, row in rows:
        if family == MAIN:
            report.add(row)
        else:
            report.tally.add(row, dead_letter=True)
    report.tally.superseded = manifest.get("superseded_dead_letters", 0)
    report.tally.dead_letters_kept = bool(manifest.get("dead_letters_kept")) or "dead_letters" in report.rows
    if not report.tally.triplets:
        raise ReportError(f"{out_dir} holds no records yet")
    return report


def share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def summary_lines(report: Report) -> list[str]:
    t = report.tally
    lines = [f"dataset      {report.dir}",
             "rows         " + ", ".join(f"{family} {n}" for family, n in sorted(report.rows.items())),
             f"records      {t.triplets}",
             f"dead letters {t.dead_letters if t.dead_letters_kept else 'not kept (consume with --dead-letters)'}",
             f"yield        {share(t.triplets, t.triplets + t.dead_letters) if t.dead_letters_kept else 'unknown'}",
             "models       " + ", ".join(f"{m} ({n})" for m, n in t.models.most_common()),
             "", "score                       n      p5   p25  median  p75   p95"]
    for name, label in (("anchor_positive", "anchor-positive"), ("anchor_negative", "anchor-negative (LLM)"),
                        ("margin", "margin (LLM negative)"), ("mined", "anchor-mined negative")):
        if t.count(name):
            qs = "  ".join(f"{t.quantile(name, q):5.2f}" for q in (0.05, 0.25, 0.5, 0.75, 0.95))
            lines.append(f"{label:<24}{t.count(name):>6}  {qs}")
    if report.margins["llm"]:  # of the records with an LLM negative, as the card counts them
        inverted, n = sum(m < 0 for m in report.margins["llm"]), len(report.margins["llm"])
        lines.append(f"inverted (LLM negative closer than the positive): {inverted} of {n} ({share(inverted, n)})")
    if report.margins["mined"]:
        n = len(report.margins["mined"])
        lines.append(f"mined negatives below the positive: {sum(m > 0 for m in report.margins['mined'])} of {n}; "
                     f"under the positive-aware {report.mining_ratio:g} rule: {report.under_rule} of {n}")
    if t.superseded:
        lines.append(f"dead letters superseded by a later triplet (counted as triplets): {t.superseded}")
    lines += ["", "negatives per record   mined    all (the LLM's + mined)"]
    for n in sorted({int(k) for k in (*t.mined, *t.negatives)}):
        lines.append(f"{n:>20}   {share(t.mined.get(str(n), 0), t.triplets):>6}   "
                     f"{share(t.negatives.get(str(n), 0), t.triplets):>6}")
    if t.rejections:
        lines += ["", "dead letters by reason"] + [f"  {k}: {v}" for k, v in t.rejections.most_common()]
    if t.problems:
        lines += ["", "flagged problems"] + [f"  {k}: {v}" for k, v in t.problems.most_common()]
    lines += ["", "rows over time"] + [f"  {when}  {n}" for when, n in rows_over_time(report.times)]
    return lines


def rows_over_time(times: list[datetime]) -> list[tuple[str, int]]:
    """Records per minute for a run under two hours, per hour under three days, else per day."""
    if not times:
        return []
    span = (max(times) - min(times)).total_seconds()
    cut = 16 if span < 7200 else 13 if span < 3 * 86400 else 10  # isoformat: minute, hour, day
    counts: dict[str, int] = {}
    for when in sorted(times):
        key = when.isoformat()[:cut]
        counts[key] = counts.get(key, 0) + 1
    return list(counts.items())


def run_report(out_dir: Path, plots: bool) -> list[str]:
    """`pairstream report`: the figures as lines, and the plots drawn (skipped, with a line, without matplotlib)."""
    report = build_report(out_dir)
    lines = summary_lines(report)
    if plots:
        from streams.dataset.plots import INSTALL_HINT, draw

        try:
            lines.append("plots        " + ", ".join(str(p) for p in draw(report, out_dir / "report")))
        except ImportError:
            lines.append(f"plots        skipped: they need matplotlib ({INSTALL_HINT})")
    return lines
