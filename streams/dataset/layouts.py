"""How one record becomes rows: the dataset's layouts, each a Hugging Face config of its own.

Sentence-transformers treats every column other than `label`/`score` as an input, in order, so a
training config holds only input columns: `anchor`, `positive`, `negative` (the LLM's negative)
and `negative_1` ... `negative_k` (the k-th negative mined from the stream, hardest first), in the
order asked. Ids, metadata and scores live in the `records` config (the full record).

A row that lacks some of its layout's negatives (no LLM negative asked, or fewer mined while the
worker's index warms up) is never padded: it goes to a family of its own width, with its negatives
renamed `negative_1` ... `negative_m` in order, so every shard of a family has the same columns and
loads as an n-tuple: `pairs` (m = 0: anchor, positive; MultipleNegativesRankingLoss takes it),
`negatives-m` (for `--columns`) or `mined-negatives-m` (for that view).
"""

import re
from dataclasses import dataclass
from typing import Any

NEGATIVE_N = re.compile(r"negative_([1-9][0-9]*)")
INPUT_COLUMNS = ("anchor", "positive", "negative")
MAIN = "triplets"  # the family at the top of DIR: full records, or the --columns layout
VIEWS = ("triplet", "mined-negatives")  # what `--views` may ask for besides the full records


def is_negative(column: str) -> bool:
    return column == "negative" or NEGATIVE_N.fullmatch(column) is not None


def check_columns(columns: tuple[str, ...]) -> None:
    """`anchor`, `positive`, `negative`, `negative_N`, `id`, each once; raises ValueError."""
    bad = [c for c in columns if c not in INPUT_COLUMNS + ("id",) and not NEGATIVE_N.fullmatch(c)]
    if bad or not columns or len(set(columns)) != len(columns):
        raise ValueError(f"choose from anchor, positive, negative, negative_1 ... negative_K, id, each once "
                         f"(got {', '.join(columns) or 'nothing'})")


def value_of(record: dict[str, Any], column: str) -> Any:
    """`negative_N` is the N-th mined negative's text (None if the record has fewer); others are fields."""
    m = NEGATIVE_N.fullmatch(column)
    if m is None:
        return record.get(column)
    mined = record.get("mined_negatives") or []
    n = int(m.group(1))
    return mined[n - 1]["text"] if len(mined) >= n else None


@dataclass(frozen=True)
class Layout:
    family: str  # shards are DIR/<family>/<family>-NNNNNN.<fmt> (the main family at the top of DIR)
    columns: tuple[str, ...] | None  # None: the whole record
    short: str  # prefix of the families of rows with fewer negatives

    def place(self, record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(family, row) for `record`."""
        if self.columns is None:
            return self.family, record
        values = {c: value_of(record, c) for c in self.columns}
        negatives = [c for c in self.columns if is_negative(c)]
        present = [c for c in negatives if values[c] is not None]
        if len(present) == len(negatives):
            return self.family, values
        row, n = {}, 0
        for c in self.columns:
            if not is_negative(c):
                row[c] = values[c]
            elif values[c] is not None:
                n += 1
                row[f"negative_{n}"] = values[c]
        return ("pairs" if n == 0 else f"{self.short}-{n}"), row


def layouts_for(columns: tuple[str, ...] | None, views: tuple[str, ...], negatives: int) -> list[Layout]:
    """The main layout (full records, or `columns`), then each view (only beside full records)."""
    found = [Layout(MAIN, columns, "negatives")]
    for view in views:
        if view == "triplet":
            found.append(Layout("triplet", INPUT_COLUMNS, "triplet"))
        elif view == "mined-negatives":
            mined = tuple(f"negative_{i}" for i in range(1, negatives + 1))
            found.append(Layout("mined-negatives", ("anchor", "positive") + mined, "mined-negatives"))
        else:
            raise ValueError(f"unknown view {view!r}: choose from {', '.join(VIEWS)}")
    return found


def config_name(family: str, full_records: bool) -> str:
    """The Hugging Face config a family is: `records` for the full records, else the family's own name."""
    if family == MAIN:
        return "records" if full_records else "default"
    return family.replace("_", "-")
