"""Form and degeneration checks of a generated sentence: cheap, deterministic, no model.

Embedding scores cannot see a loop, a fragment or a worked example copied into the output (their
cosine to the anchor stays high), so these rules from data-curation practice run beside them:

- repetition (Dolma's repetition tagger, Gopher's duplicate n-gram fractions, cut to one sentence):
  a word 3-gram said twice, or a content word said three times, more often than the anchor says it;
- degeneration (Whisper re-decodes above a zlib compression ratio of 2.4): the text compresses like a loop;
- fragment: the sentence ends on an article, a preposition or a conjunction ("has been named the"),
  or has fewer than three words (a search query, action `query`, is exempt from the word count);
- example leak: the output reuses distinctive words of the prompt's worked example that the anchor does
  not have (the single example's "sandcastle at the beach" leaked into a quarter of the negatives).

Each returns a `Problem` whose kind names the check; the gate refuses on any of them.
"""

import re
import zlib
from collections import Counter

from streams.generate.validation import Problem

FUNCTION_WORDS = frozenset("""
a an the is are was were be been being am of to in on at by for with from and or but as that this these those
it its his her their our your my he she they we you i him them us me there here which who whom what when where
why how while into onto over under up down out off than then so very just also not no do does did has have had
having will would can could should may might must shall some any all each every other another such own same
more most few
""".split())  # also what token alignment (`streams.quality.alignment`) treats as carrying no content
# Word counts here also pass over "one", "two" and the pieces of contractions ("s", "t"): saying them twice is no
# loop. Alignment keeps the numerals as content: a changed count is a changed meaning.
STOPWORDS = FUNCTION_WORDS | {"one", "two", "s", "t"}
DANGLING = frozenset("a an the of to in on at by for with from and or but as that into onto than his her their its "
                     "my our your this these those".split())
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
MAX_COMPRESSION = 2.4


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS and len(w) > 2}


def repetition(text: str, anchor: str) -> Problem | None:
    ws, base = words(text), Counter(words(anchor))
    grams = Counter(zip(ws, ws[1:], ws[2:]))
    anchor_ws = words(anchor)
    anchor_grams = Counter(zip(anchor_ws, anchor_ws[1:], anchor_ws[2:]))
    for gram, n in grams.items():
        if n >= 2 and n > anchor_grams[gram]:
            return Problem("repetition", f"it says \"{' '.join(gram)}\" {n} times; say each thing once")
    for word, n in Counter(w for w in ws if w not in STOPWORDS).items():
        if n >= 3 and n > base[word]:
            return Problem("repetition", f"it says \"{word}\" {n} times; say each thing once")
    return None


def compression_ratio(text: str) -> float:
    raw = text.encode()
    return len(raw) / max(1, len(zlib.compress(raw)))


def degenerate(text: str) -> Problem | None:
    ratio = compression_ratio(text)
    if ratio > MAX_COMPRESSION:
        return Problem("degenerate", f"it loops (compression ratio {ratio:.1f}); write one plain sentence")
    return None


def fragment(text: str, *, query: bool = False) -> Problem | None:
    ws = words(text)
    if not ws or ws[-1] in DANGLING:
        return Problem("fragment", "it stops mid-sentence; write a complete sentence")
    if len(ws) < 3 and not query:
        return Problem("fragment", "it is not a sentence; write a complete sentence")
    return None


def example_leak(text: str, anchor: str, example_words: frozenset[str]) -> Problem | None:
    leaked = sorted((content_words(text) & example_words) - content_words(anchor))
    if leaked:
        return Problem("example_leak", f"it reuses the example's words ({', '.join(leaked)}), not the anchor's; "
                                       "write about the anchor only")
    return None


def form_problems(anchor: str, positive: str, negative: str | None, *, query: bool = False,
                  example_words: frozenset[str] = frozenset()) -> list[Problem]:
    """Every form problem of the positive and the negative, each kind once, the positive's first."""
    found: dict[str, Problem] = {}
    for role, text in (("positive", positive), ("negative", negative)):
        if text is None:
            continue
        for problem in (repetition(text, anchor), degenerate(text),
                        fragment(text, query=query and role == "positive"),
                        example_leak(text, anchor, example_words)):
            if problem is not None and problem.kind not in found:
                found[problem.kind] = Problem(problem.kind, f"the {role}: {problem.message}")
    return list(found.values())
