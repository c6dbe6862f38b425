"""Form and degeneration checks of a generated sentence: cheap, deterministic, no model.

Embedding scores cannot see a loop, a fragment or a worked example copied into the output (their
cosine to the anchor stays high), so these rules from data-curation practice run beside them:

- repetition (Dolma's repetition tagger, Gopher's duplicate n-gram fractions, cut to one sentence):
  a word 3-gram said twice, or a content word said three times, more often than the anchor says it;
- degeneration (Whisper re-decodes above a zlib compression ratio of 2.4): the text compresses like a loop;
- fragment: the sentence ends on an article, a possessive determiner, a conjunction or a preposition ("has been
  named the"; a question may end on its preposition: "What is it made of?"), or has fewer than three words (a
  search query, action `query`, is exempt from the word count). Ending on an object pronoun or a particle is
  ordinary English ("The man is hugging her.", "What is this?", "He gave up.") and never a fragment;
- example leak: the output reuses distinctive words of the prompt's worked example that the anchor does
  not have (the single example's "sandcastle at the beach" leaked into a quarter of the negatives).

Each returns a `Problem` whose kind names the check; the gate refuses on any of them.

Words are Unicode words (any script). The word lists here are English, so a check that needs them does not judge
a text written mostly in another script (Cyrillic, CJK, Arabic...): it returns an `Abstention` saying so, and the
pair is left to the other checks, never refused for it. Scripts written without spaces (Chinese, Japanese, Thai...)
have no words to count either. What still runs on every script: the loop (degeneration) check, repeated 3-word
phrases in spaced scripts, an empty text, and (in spaced scripts other than Latin) a single word, which is no
sentence.
"""

import re
import unicodedata
import zlib
from collections import Counter

from streams.generate.validation import Abstention, Problem

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
# What a complete English sentence does not end on. Not here: object pronouns (her, him, it, them, this, that,
# these, those...), which end ordinary sentences, and the prepositions that double as particles (in, on, by:
# "He came in.", "Turn it on.", "A car drove by.").
DETERMINERS = frozenset("a an the my our your their its".split())
CONJUNCTIONS = frozenset("and or but as than".split())
PREPOSITIONS = frozenset("of to at for with from into onto".split())  # a question may end on one
DANGLING = DETERMINERS | CONJUNCTIONS | PREPOSITIONS
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")  # letters and digits of any script; "don't" is one word
MAX_COMPRESSION = 2.4
# Scripts written without spaces between words, by the first word of their letters' Unicode names.
UNSPACED = frozenset({"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "THAI", "LAO", "KHMER", "MYANMAR",
                      "TIBETAN", "YI"})


def words(text: str) -> list[str]:
    return WORD.findall(text.lower().replace("\u2019", "'"))


def script(text: str) -> str | None:
    """The script most of the text's letters are written in, by the first word of their Unicode names (LATIN,
    CYRILLIC, CJK, HIRAGANA, ARABIC, GREEK...); None for a text without letters."""
    if text.isascii():
        return "LATIN" if any(c.isalpha() for c in text) else None
    counts = Counter(unicodedata.name(c, "?").split()[0] for c in unicodedata.normalize("NFKC", text) if c.isalpha())
    return counts.most_common(1)[0][0] if counts else None


def english_readable(written_in: str | None) -> bool:
    """Whether English word lists (and wordpieces) can judge a text in this script: Latin, or no letters at all."""
    return written_in in ("LATIN", None)


def english_lists_apply(text: str) -> bool:
    """Whether the English word lists can judge the text."""
    return english_readable(script(text))


def cannot_read(check: str, text: str, what: str) -> Abstention:
    name = (script(text) or "unknown").lower()
    return Abstention(check, f"{what}; this text is in {name} script, so the check does not judge it")


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS and len(w) > 2}


def repetition(text: str, anchor: str) -> Problem | Abstention | None:
    """A word 3-gram said twice (any spaced script), or a content word said three times (English lists: Latin
    script only), more often than the anchor says it."""
    ws, base = words(text), Counter(words(anchor))
    grams = Counter(zip(ws, ws[1:], ws[2:]))
    anchor_ws = words(anchor)
    anchor_grams = Counter(zip(anchor_ws, anchor_ws[1:], anchor_ws[2:]))
    for gram, n in grams.items():
        if n >= 2 and n > anchor_grams[gram]:
            return Problem("repetition", f"it says \"{' '.join(gram)}\" {n} times; say each thing once")
    if not english_lists_apply(text):
        return cannot_read("repetition", text, "repeated words are counted past an English stopword list (only "
                                               "repeated 3-word phrases were looked for)")
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


def fragment(text: str, *, query: bool = False) -> Problem | Abstention | None:
    ws = words(text)
    if not ws:
        return Problem("fragment", "it has no words; write a complete sentence")
    if not english_lists_apply(text):
        if script(text) not in UNSPACED and len(ws) < 2 and not query:
            return Problem("fragment", "it is a single word, not a sentence; write a complete sentence")
        return cannot_read("fragment", text, "a sentence's last word is judged with English word lists")
    last = ws[-1]
    if last in DETERMINERS or last in CONJUNCTIONS or (last in PREPOSITIONS and not text.rstrip().endswith("?")):
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


def form_review(anchor: str, positive: str, negative: str | None, *, query: bool = False,
                example_words: frozenset[str] = frozenset()) -> tuple[list[Problem], list[Abstention]]:
    """Every form problem of the positive and the negative, each kind once, the positive's first; and the checks
    that could not judge a sentence (its script), each with its reason."""
    found: dict[str, Problem] = {}
    abstained: list[Abstention] = []
    for role, text in (("positive", positive), ("negative", negative)):
        if text is None:
            continue
        for verdict in (repetition(text, anchor), degenerate(text),
                        fragment(text, query=query and role == "positive"),
                        example_leak(text, anchor, example_words)):
            if isinstance(verdict, Abstention):
                abstained.append(Abstention(verdict.check, f"the {role}: {verdict.reason}"))
            elif verdict is not None and verdict.kind not in found:
                found[verdict.kind] = Problem(verdict.kind, f"the {role}: {verdict.message}")
    return list(found.values()), abstained
