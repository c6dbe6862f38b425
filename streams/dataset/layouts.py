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


def is_column(name: str) -> bool:
    """One of the columns `--columns` may ask for."""
    return name in INPUT_COLUMNS + ("id",) or NEGATIVE_N.fullmatch(name) is not None


def check_columns(columns: tuple[str, ...]) -> None:
    """`anchor`, `positive`, `negative`, `negative_N`, `id`, each once; raises ValueError."""
    bad = [c for c in columns if not is_column(c)]
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


def canonical_views(views) -> tuple[str, ...]:
    """The views in one order (theirs in VIEWS), so that two spellings of one set compare equal."""
    return tuple(v for v in VIEWS if v in views)


def views_written(views: tuple[str, ...], negatives: int, kinds) -> dict[str, set[tuple[str, ...]]]:
    """The view families, each with the columns of its rows, that `views` write for records of these kinds:
    (has an LLM negative, number of mined negatives). What a rebuilt index compares the shards on disk with."""
    written: dict[str, set[tuple[str, ...]]] = {}
    for has_negative, mined in kinds:
        record = {"anchor": "", "positive": "", "negative": "" if has_negative else None,
                  "mined_negatives": [{"text": ""}] * mined}
        for layout in layouts_for(None, views, negatives)[1:]:
            family, row = layout.place(record)
            written.setdefault(family, set()).add(tuple(row))
    return written


def settings_of(fmt: str, columns: tuple[str, ...] | None, views, negatives: int | str) -> dict[str, str]:
    """A layout as the index records it. A rebuilt index records what its shards allow where they cannot tell
    more: `views` may be alternatives ("triplet|mined-negatives"), `negatives` (the mined-negatives view's
    width) a lower bound (">=4"); the first run that fits then settles them (`settled`)."""
    return {"format": fmt, "columns": ",".join(columns) if columns else "all",
            "views": views if isinstance(views, str) else ",".join(canonical_views(views)) or "none",
            "negatives": str(negatives)}


def settled(value: str | None) -> bool:
    return value is not None and "|" not in value and not value.startswith(">=")


def layout_mismatch(held: dict[str, str | None], asked: dict[str, str]) -> str | None:
    """What a directory holds (`held`, from its index; None: not recorded) against what a run asks (`settings_of`),
    with the flags that fix it; None if they agree. The width counts only with the mined-negatives view."""
    choices = [",".join(canonical_views(v.split(","))) or "none" for v in (held["views"] or asked["views"]).split("|")]
    views = asked["views"] if asked["views"] in choices else choices[0]  # the views the run goes on with

    def fits(key: str, have: str) -> bool:
        if key == "views":
            return asked["views"] in choices
        return int(asked[key]) >= int(have[2:]) if have.startswith(">=") else have == asked[key]

    wrong = [key for key, have in held.items() if have is not None and not fits(key, have)
             and (key != "negatives" or "mined-negatives" in views.split(","))]
    if not wrong:
        return None
    shown = {key: " or ".join(map(repr, choices)) if key == "views" else
             repr(f"{held[key][2:]} or more" if held[key].startswith(">=") else held[key]) for key in wrong}
    fixes = [f"--{key} {choices[0] if key == 'views' else held[key].removeprefix('>=')}" for key in wrong
             if key != "columns" or held[key] != "all"]
    fixes += ["without --columns"] if "columns" in wrong and held["columns"] == "all" else []
    return (f"{', '.join(f'{key} {shown[key]}' for key in wrong)}; asked for "
            f"{', '.join(f'{key} {asked[key]!r}' for key in wrong)}: consume it with {' '.join(fixes)}, "
            f"or choose another directory")
