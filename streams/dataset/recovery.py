"""Crash recovery of a dataset directory, and the rebuilding of an index that is missing.

Recovery deletes only what pairstream itself recorded as its own unfinished work: temp files in
DIR/.pairstream/ and shards the index lists as pending (renamed into place by a checkpoint that
crashed before indexing them). Any other file, named like a shard or not, is never touched: a
directory holding shards but no index (copied with `cp -r ds/* new/`, downloaded without its
hidden folder, or `.pairstream/` deleted to reset it) gets its index rebuilt from the shards,
with one warning; one without full records (a --columns layout) has no ids to rebuild from and
is refused with what to do. The rebuilt index records the layout the shards were written with
(format; views and mined-negatives width: the ones that write exactly these view folders and
columns for these records), never the flags of the run that rebuilds it, so a run asking for
another layout is refused as it would be by an intact index, before it writes anything.
"""

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from streams.dataset.layouts import MAIN, VIEWS, canonical_views, is_column, settings_of, views_written
from streams.dataset.shard import read_rows
from streams.dataset.tally import dead_letter_reason

if TYPE_CHECKING:
    from streams.dataset.store import Dataset

log = logging.getLogger("pairstream.dataset")
RECORD_FAMILIES = ("dead_letters", "rejects")  # always JSONL, in their own folders
SHARD_NUMBER = "-[0-9][0-9][0-9][0-9][0-9][0-9].*"  # after the family's name
SEQ = re.compile(r"-(\d{6})\.(jsonl|parquet)$")


class DatasetError(Exception):
    """DIR cannot be used as asked (for example: it holds shards of another format)."""


def folder(family: str) -> str:
    """Where a family's shards live, relative to DIR: triplets at the top, the others in a folder of their own."""
    return "" if family == MAIN else family


def family_of(path: Path, root: Path) -> str:
    return MAIN if path.parent == root else path.parent.name


def seq_of(path: Path) -> int:
    return int(SEQ.search(path.name)[1])


def shard_files(root: Path, state_dir: Path) -> list[Path]:
    """Every file named like one of pairstream's shards: DIR/triplets-NNNNNN.* and DIR/<family>/<family>-NNNNNN.*
    (a user's own files, in DIR or in a folder of it, are not among them)."""
    families = [MAIN] + [d.name for d in root.iterdir() if d.is_dir() and d != state_dir]
    return [f for family in families for f in sorted((root / folder(family)).glob(f"{family}{SHARD_NUMBER}"))
            if f.suffix in (".jsonl", ".parquet") and f.is_file()]


def recover(ds: "Dataset") -> int:
    """Delete what a crash left (temp files, and renamed shards the index recorded as pending but never
    completed), and nothing else; rebuild a missing index from the shards found. Returns the first shard
    number above every shard-named file on disk (new shards never take a stranger's name)."""
    for tmp in ds.state_dir.glob("*.tmp"):
        tmp.unlink()
    known = {s["name"] for s in ds.index.shards()}
    for relative in ds.index.pending():
        if Path(relative).name not in known:
            (ds.dir / relative).unlink(missing_ok=True)
    ds.index.clear_pending()
    on_disk = shard_files(ds.dir, ds.state_dir)
    free = max(map(seq_of, on_disk), default=0) + 1
    strays = [f for f in on_disk if f.name not in known]
    if strays and not known:
        rebuild_index(ds, strays, free)
    elif strays:
        log.warning("%d file(s) in %s are named like shards but are not in its index, so not part of the dataset; "
                    "left as they are: %s", len(strays), ds.dir,
                    ", ".join(str(f.relative_to(ds.dir)) for f in strays[:5]))
    if ds.index.needs_dead_ids:  # an index from before dead-letter ids were kept apart
        dead = [(row.get("id"), dead_letter_reason(row)) for s in ds.index.shards() if s["family"] == "dead_letters"
                for row in read_rows(ds.dir / "dead_letters" / s["name"])]
        ds.index.move_to_dead([(rid, reason) for rid, reason in dead if rid])
    return free + len(strays)  # numbers given to adopted shards of a clashing number come from here too


def rebuild_index(ds: "Dataset", shards: list[Path], free: int) -> None:
    """A new index over existing shards: adopt them all, index the ids of their full records, and record the layout
    they were written with (`layout_of`), not the one this run asks for: the caller checks the two agree."""
    how = f"restore {ds.state_dir} from where the dataset came from, or move its shards to another directory"
    entries, ids, dead, seen = [], [], [], set()
    kinds: set[tuple[bool, int]] = set()  # (has an LLM negative, mined negatives) of the full records
    columns: dict[str, set[tuple[str, ...]]] = {}  # of each other family's shards
    for path in sorted(shards, key=seq_of):
        family, rows = family_of(path, ds.dir), 0
        try:
            for row in read_rows(path):
                rows += 1
                if family == "dead_letters":
                    dead.append((row.get("id"), dead_letter_reason(row)))
                elif family == MAIN and all(map(is_column, row)):
                    raise DatasetError(f"{ds.dir} holds shards but no index ({ds.state_dir}), and a --columns "
                                       f"layout has no record ids to rebuild it from: {how}")
                elif family in (MAIN, "rejects"):
                    if not row.get("id"):
                        raise DatasetError(f"{path} holds rows without an id, so the index of {ds.dir} cannot be "
                                           f"rebuilt: {how}")
                    ids.append(row["id"])
                    if family == MAIN:
                        kinds.add((row.get("negative") is not None, len(row.get("mined_negatives") or [])))
                elif rows == 1:
                    columns.setdefault(family, set()).add(tuple(row))
        except (ValueError, OSError) as exc:  # orjson and pyarrow errors are ValueErrors
            raise DatasetError(f"{path} cannot be read ({exc}), so the index of {ds.dir} cannot be rebuilt: "
                               f"{how}") from None
        seq = seq_of(path)
        if seq in seen:  # two families' files of one number (directories merged): a fresh number
            seq, free = free, free + 1
        seen.add(seq)
        entries.append((seq, path.name, family, rows))
    layout = layout_of(ds, shards, kinds, columns, how)
    ds.index.add_shards(entries, ids, layout, dead)
    log.warning("%s had shards but no index: rebuilt it from its %d shards (%d record ids, %d dead letters), "
                "with their layout (%s); redelivered records stay duplicates", ds.dir, len(entries), len(ids),
                len(dead), ", ".join(f"{key} {value}" for key, value in layout.items()))


def layout_of(ds: "Dataset", shards: list[Path], kinds: set[tuple[bool, int]],
              columns: dict[str, set[tuple[str, ...]]], how: str) -> dict[str, str]:
    """The layout of these shards: their format; full records (a --columns layout was refused before); and the
    views and width whose families and columns for these records are exactly the ones on disk. What the shards
    cannot tell (a view no record so far would have written apart, a width no row has reached yet) is taken from
    this run's flags where the shards allow them, so a run whose flags fit is not refused."""
    formats = {f.suffix[1:] for f in shards if family_of(f, ds.dir) not in RECORD_FAMILIES}
    if len(formats) > 1:
        raise DatasetError(f"{ds.dir} holds both jsonl and parquet shards but no index: {how}")
    found = {family: cols for family, cols in columns.items()
             if family in ("triplet", "pairs", "mined-negatives") or family.startswith("mined-negatives-")}
    if not kinds:  # no full record: nothing to tell a layout by, unless training rows are there without them
        if found or any(family.startswith("negatives-") for family in columns):
            raise DatasetError(f"{ds.dir} holds training rows but no full records, and no index ({ds.state_dir}) "
                               f"to know them by: {how}")
        return settings_of(formats.pop() if formats else ds.fmt, ds.columns, ds.views, ds.negatives)
    widest = max((len(c) for cols in found.values() for c in cols), default=0)
    fits = [(views, k) for views in ((), ("triplet",), ("mined-negatives",), VIEWS)
            for k in (range(1, max(33, widest, ds.negatives + 1)) if "mined-negatives" in views else (ds.negatives,))
            if views_written(views, k, kinds) == found]
    if not fits:
        mixed = [f"{family}/" for family, cols in sorted(found.items()) if len(cols) > 1]
        why = f"{' and '.join(mixed)} holds rows of different widths" if mixed else "view folders missing or added?"
        raise DatasetError(f"{ds.dir} holds shards but no index, and its training views are not what one layout "
                           f"writes for its records ({why}), so the layout to go on with cannot be told: {how}")
    asked = canonical_views(ds.views)
    fits.sort(key=lambda fit: (len(set(fit[0]) ^ set(asked)), abs(fit[1] - ds.negatives)))  # the flags' first
    views = "|".join(dict.fromkeys(",".join(v) or "none" for v, _ in fits))
    widths = sorted({k for v, k in fits if "mined-negatives" in v}) or [ds.negatives]
    return settings_of(formats.pop(), None, views, widths[0] if len(widths) == 1 else f">={widths[0]}")


def records_of(paths: list[tuple[str, Path]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(family, row) of every full record, then of every dead letter whose anchor did not later become one of
    those records (a triplet supersedes a dead letter of its id), from these (family, shard path)."""
    ids: set[str] = set()
    for family, path in paths:
        if family == MAIN:
            for row in read_rows(path):
                ids.add(row.get("id"))
                yield family, row
    for family, path in paths:
        if family == "dead_letters":
            for row in read_rows(path):
                if not row.get("id") or row["id"] not in ids:
                    yield family, row
