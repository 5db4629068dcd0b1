"""Text helpers that run inside the sandbox: sentence splitting, speaking-time estimates, fitting
a narration to a time limit without cutting a sentence in half, and the narrator's reading of a
body. Each function is the Rust SDK's (``plugins/sdk/src/text.rs``) rule for rule, so a plugin
plans the same in every language (the parity test in tests/languages.rs runs all three)."""

import math
import re
import unicodedata
from collections.abc import Iterator

# Unicode White_Space, as Rust's ``char::is_whitespace`` (Python's ``str.split`` adds \x1c-\x1f).
_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WS_RUN = re.compile(f"[{_WS}]+")
_WS_SPLIT = re.compile(f"([{_WS}]+)")
_IS_WS = re.compile(f"[{_WS}]")
# The same characters spelled out, for ``str.strip`` (which runs in C, not per character here).
_WS_CHARS = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"


def trim(text: str) -> str:
    """Trims Unicode white space at both ends (as Rust's ``str::trim``)."""
    return text.strip(_WS_CHARS)


def words(text: str) -> list[str]:
    """The whitespace-separated words of ``text``."""
    return [w for w in _WS_RUN.split(text) if w]


def word_count(text: str) -> int:
    """Number of words (whitespace-separated runs)."""
    return len(words(text))


def speaking_seconds(text: str, words_per_minute: float) -> float:
    """Estimated speaking time in seconds at ``words_per_minute``."""
    return word_count(text) * 60.0 / words_per_minute


def _is_alphanumeric(c: str) -> bool:
    """Rust's ``char::is_alphanumeric``: a letter (or a mark that is part of one) or a number."""
    if c.isalnum():
        return True
    if c.isascii():
        return False
    category = unicodedata.category(c)
    return category[0] in "LN" or (category in ("Mn", "Mc") and unicodedata.combining(c) == 0)


_PICTOGRAPHS = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2190-\u21FF\uFE0E\uFE0F\u200D\u20E3]")
_DELIMITER = re.compile("[.!?\n]")


def sentences(text: str) -> list[str]:
    """Splits text into sentences at ``.``, ``!``, ``?`` (and their run) followed by whitespace,
    and at blank lines. Sentences keep their punctuation and are trimmed."""
    return list(_each_sentence(text))


def _each_sentence(text: str) -> Iterator[str]:
    """The sentences of ``text`` one at a time, as ``sentences`` cuts them: fitting a long
    article to a short limit cuts only the sentences it keeps."""
    stops = ".!?"
    # Only the delimiters are looked at (the regex engine finds them), not every character.
    start = 0
    n = len(text)
    found = _DELIMITER.search(text)
    while found:
        i = found.start()
        c = text[i]
        j = i + 1
        while j < n and (text[j] in stops or text[j] in "\"')"):
            j += 1
        at_boundary = j >= n or text[j] in " \t\n\x0c\r"
        if at_boundary and (c != "\n" or (j < n and text[j] == "\n")):
            piece = trim(text[start:j])
            if piece:
                yield piece
            start = j
        found = _DELIMITER.search(text, j)
    piece = trim(text[start:])
    if piece:
        yield piece


def _paragraphs_of(text: str) -> list[str]:
    return [p for p in (trim(p) for p in text.split("\n\n")) if p]


def _is_heading_like(paragraph: list[str]) -> bool:
    return len(paragraph) == 1 and word_count(paragraph[0]) <= 6


def fit_to_seconds(text: str, seconds: float, words_per_minute: float) -> str:
    """The longest prefix of ``text`` estimated to be spoken within ``seconds``: whole sentences
    while they fit, paragraphs kept apart by a blank line; if not even the first sentence fits,
    its leading words with an ellipsis."""
    limit = seconds * words_per_minute / 60.0
    if math.isnan(limit) or limit <= 0:
        max_words = 0
    elif math.isinf(limit):
        max_words = 2**63
    else:
        max_words = math.floor(limit)
    paragraphs: list[list[str]] = []
    count = 0
    done = False
    for paragraph in _paragraphs_of(text):
        kept: list[str] = []
        for sentence in _each_sentence(paragraph):
            n = word_count(sentence)
            if count + n > max_words:
                if kept:
                    paragraphs.append(kept)
                elif paragraphs and _is_heading_like(paragraphs[-1]):
                    # A heading whose section is cut away is not said on its own.
                    paragraphs.pop()
                done = True
                break
            count += n
            kept.append(sentence)
        if done:
            break
        if kept:
            paragraphs.append(kept)
    if not paragraphs and max_words > 0:
        return " ".join(words(text)[:max_words]) + "…"
    return "\n\n".join(" ".join(p) for p in paragraphs)


def _is_cjk(c: str) -> bool:
    n = ord(c)
    return 0x3040 <= n <= 0x30FF or 0x3400 <= n <= 0x4DBF or 0x4E00 <= n <= 0x9FFF or 0xF900 <= n <= 0xFAFF


def _ends_a_sentence(c: str) -> bool:
    return c in ".!?…:;。！？؟۔।\"'”’»)]）」』"


def _without_pictographs(text: str) -> str:
    if not _PICTOGRAPHS.search(text):
        return text
    kept = _PICTOGRAPHS.sub("", text)
    return " ".join(w for w in kept.split(" ") if w)


def site_of(word: str) -> str | None:
    """``(https://www.example.com/path).`` → ``(example.com).``; None for a word that is not an
    address."""
    start = word.find("http://")
    if start < 0:
        start = word.find("https://")
    if start < 0:
        start = word.find("www.")
    if start < 0:
        return None
    before, address = word[:start], word[start:]
    trail = len(address)
    while trail > 0 and address[trail - 1] in ".,;:!?)]}\"'”’»":
        trail -= 1
    address, after = address[:trail], address[trail:]
    for prefix in ("https://", "http://", "www."):
        while address.startswith(prefix):
            address = address[len(prefix):]
    host = re.split(r"[/?#]", address)[0].split(":")[0]
    return f"{before}{host}{after}" if host else None


def _sites_for_addresses(text: str) -> str:
    if "http://" not in text and "https://" not in text and "www." not in text:
        return text
    pieces = _WS_SPLIT.split(text)
    return "".join(p if i % 2 else (site_of(p) or p) for i, p in enumerate(pieces))


def _key(text: str) -> str:
    return "".join(c.lower() for c in text if _is_alphanumeric(c))


def _key_is(text: str, expected: str) -> bool:
    """Whether ``_key(text)`` is ``expected``, stopping at the first letter that differs: a long
    first paragraph is not read whole to learn that it is not the title."""
    at = 0
    for c in text:
        if _is_alphanumeric(c):
            lower = c.lower()
            if not expected.startswith(lower, at):
                return False
            at += len(lower)
    return at == len(expected)


def narration_body(title: str, body: str) -> str:
    """A body as a narrator reads it after its title (the rules every SDK applies the same way):
    a first paragraph repeating the title is dropped; a paragraph without a closing stop gets one
    (``。`` after CJK text); a bare web address is read as its site; emoji are not read, and a
    paragraph left with no letter or digit is dropped."""
    title_key = _key(title)
    out: list[str] = []
    for i, paragraph in enumerate(_paragraphs_of(body)):
        if i == 0 and title_key and _key_is(paragraph, title_key):
            continue
        spoken = _sites_for_addresses(_without_pictographs(paragraph))
        if not any(_is_alphanumeric(c) for c in spoken):
            continue
        last = spoken[-1]
        if not _ends_a_sentence(last):
            spoken += "。" if _is_cjk(last) else "."
        out.append(spoken)
    return "\n\n".join(out)


def tidy_stops(script: str) -> str:
    """A rendered script's stops made right where a template wrote ``{{title}}.`` after a title
    that ends in its own stop: ``Why Ghost?.`` → ``Why Ghost?``; a ``.`` after CJK text → ``。``."""
    out: list[str] = []
    previous = None
    n = len(script)
    for i, c in enumerate(script):
        ends = i + 1 >= n or bool(_IS_WS.fullmatch(script[i + 1]))
        if c == "." and previous is not None and ends and previous in "!?。！？…":
            continue
        if c == "." and previous is not None and ends and _is_cjk(previous):
            out.append("。")
        else:
            out.append(c)
        previous = c
    return "".join(out)
