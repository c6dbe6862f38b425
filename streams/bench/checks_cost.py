"""`pairstream bench --checks`: what the near-copy text check (`streams.quality.checks.char_ratio`) costs per
call, rapidfuzz (what it runs) beside difflib (what it ran before), on its worst cases and a typical pair.

The check runs on the worker's event loop, up to three times per anchor (once per attempt at a pair), so
its worst case stalls every anchor in flight. `difflib.SequenceMatcher(autojunk=False)` finds matching
blocks in O(n x m) or worse: tens of milliseconds for a 4,000-character anchor (the longest
PAIRSTREAM_MAX_ANCHOR_CHARS lets through) against a 400-character positive (PAIRSTREAM_MAX_OUTPUT_CHARS),
hundreds on repeated characters. rapidfuzz computes the Indel similarity with a bit-parallel LCS in C,
O(n x m / 64). Both columns time the whole check (case and punctuation folding included), best of
`rounds` rounds, in this process, one after the other, in CPU time of this thread: what the call costs
the event loop, which a busy machine (a process descheduled in the middle of a round) does not inflate.
"""

import difflib
import random
import time
import timeit
from dataclasses import asdict, dataclass

import orjson

from streams.quality.checks import char_ratio, plain_text

WORDS = ("the a man woman child dog guitar stage music plays is was playing on in with near under over "
         "kitchen dinner market stock fell rose sharply monday river bank city night morning light").split()


def difflib_ratio(a: str, b: str) -> float:
    """The check as it was: difflib's matching-blocks ratio 2 * M / T of the folded texts."""
    return difflib.SequenceMatcher(None, plain_text(a), plain_text(b), autojunk=False).ratio()


def prose(chars: int, seed: int) -> str:
    rng = random.Random(seed)
    text = ""
    while len(text) < chars:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        text += sentence.capitalize() + ". "
    text = text[:chars]
    return text[:-1] + "." if text.endswith(" ") else text


def cases() -> list[tuple[str, str, str]]:
    return [
        ("anchor 4000 vs positive 400", prose(4000, 1), prose(400, 2)),
        ("repeated 4000 vs 400", "a" * 4000, "a" * 400),
        ("STS pair", "A man is playing a guitar on the stage.", "Someone performs guitar music for an audience."),
    ]


@dataclass
class CheckCost:
    case: str
    chars: str  # "anchor / positive"
    rapidfuzz_calls: int  # per round
    difflib_calls: int
    rounds: int
    rapidfuzz_us: float
    difflib_us: float
    folding_us: float  # of either figure: `plain_text` of both texts (the regex), not the ratio
    rapidfuzz_ratio: float
    difflib_ratio: float


def _fold(a: str, b: str) -> tuple[str, str]:
    return plain_text(a), plain_text(b)


def per_call_us(fn, a: str, b: str, calls: int, rounds: int) -> float:
    """CPU microseconds of this thread per `fn(a, b)`, best of `rounds` rounds of `calls` calls."""
    timer = timeit.Timer(lambda: fn(a, b), timer=time.thread_time)  # gc off while timing, as timeit does
    return min(timer.repeat(repeat=rounds, number=calls)) / calls * 1e6


def _calls_for(fn, a: str, b: str, budget_s: float) -> int:
    """Calls per round so that the slower implementation's round takes about `budget_s` (at least one)."""
    one = timeit.Timer(lambda: fn(a, b), timer=time.thread_time).timeit(1)
    return max(1, min(100_000, int(budget_s / max(one, 1e-9))))


def run_checks_cost(rounds: int = 3, budget_s: float = 0.05) -> list[CheckCost]:
    out = []
    for name, a, b in cases():
        calls = _calls_for(difflib_ratio, a, b, budget_s)
        fast_calls = max(calls, _calls_for(char_ratio, a, b, budget_s))  # more calls: a steadier fast figure
        out.append(CheckCost(
            case=name, chars=f"{len(a)} / {len(b)}", rapidfuzz_calls=fast_calls, difflib_calls=calls, rounds=rounds,
            rapidfuzz_us=round(per_call_us(char_ratio, a, b, fast_calls, rounds), 2),
            difflib_us=round(per_call_us(difflib_ratio, a, b, calls, rounds), 2),
            folding_us=round(per_call_us(_fold, a, b, fast_calls, rounds), 2),
            rapidfuzz_ratio=round(char_ratio(a, b), 4), difflib_ratio=round(difflib_ratio(a, b), 4)))
    return out


def format_checks_cost(rows: list[CheckCost]) -> str:
    lines = ["The near-copy text check (char_ratio, folding included), CPU microseconds per call, best of "
             f"{rows[0].rounds if rows else 0} rounds:",
             f"{'case':<29} {'chars':>12} {'rapidfuzz':>11} {'difflib':>11} {'difflib/rf':>10} {'folding':>9}"
             "   ratio rf / difflib"]
    for r in rows:
        lines.append(f"{r.case:<29} {r.chars:>12} {r.rapidfuzz_us:>11.1f} {r.difflib_us:>11.1f} "
                     f"{r.difflib_us / max(r.rapidfuzz_us, 1e-9):>9.0f}x {r.folding_us:>9.1f}   "
                     f"{r.rapidfuzz_ratio:.4f} / {r.difflib_ratio:.4f}")
    lines.append("rapidfuzz: Indel similarity 2 * LCS / T (what the check computes now); difflib: matching blocks "
                 "2 * M / T, M <= LCS (before);\nfolding: case and punctuation folding of both texts, part of both "
                 "figures.")
    return "\n".join(lines)


def checks_output(as_json: bool) -> str:
    """What `pairstream bench --checks [--json]` prints."""
    rows = run_checks_cost()
    return orjson.dumps([asdict(r) for r in rows]).decode() if as_json else format_checks_cost(rows)
