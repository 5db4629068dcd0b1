// Text helpers that run inside the sandbox: sentence splitting, speaking-time estimates, fitting a
// narration to a time limit without cutting a sentence in half, and the narrator's reading of a
// body. Each function is the Rust SDK's (`plugins/sdk/src/text.rs`) rule for rule, so a plugin
// plans the same in every language (the parity test in tests/languages.rs runs all three).

/** Unicode White_Space, as Rust's `char::is_whitespace` (JS's `\s` adds U+FEFF). */
const WS = '\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** White space but the plain space. */
const OTHER_WS = new RegExp(`[${WS.replace(' ', '')}]+`, 'gu');
/** A `.` followed by white space or the end, with the character before it. */
const TIDY = new RegExp(`(?<=(.))\\.(?=[${WS}]|$)`, 'gsu');
/** Rust's `char::is_alphanumeric`: Alphabetic or a number (Nd, Nl, No). */
const ALNUM = /[\p{Alphabetic}\p{Nd}\p{Nl}\p{No}]/u;
const NOT_ALNUM = /[^\p{Alphabetic}\p{Nd}\p{Nl}\p{No}]+/gu;
/** Emoji and pictographs, and the joiners and selectors that build them. */
const PICTOGRAPHS = /[\u{1F000}-\u{1FAFF}\u2600-\u27BF\u2B00-\u2BFF\u2190-\u21FF\uFE0E\uFE0F\u200D\u20E3]/gu;

/** Trims Unicode white space at both ends (as Rust's `str::trim`). */
export function trim(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isWhiteSpace(text.charCodeAt(start))) start += 1;
  while (end > start && isWhiteSpace(text.charCodeAt(end - 1))) end -= 1;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/** Rust's `char::is_whitespace` for one UTF-16 unit (White_Space has no astral characters). */
function isWhiteSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0x85) return false;
  return (
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** The whitespace-separated words of `text`. */
export function words(text: string): string[] {
  return spaced(text)
    .split(' ')
    .filter((w) => w !== '');
}

/** Number of words (whitespace-separated runs). */
export function wordCount(text: string): number {
  // The pieces between spaces, less the empty ones (few: doubled spaces and the ends), found
  // by the engine rather than by a loop over every word.
  const pieces = spaced(text).split(' ');
  let empty = 0;
  for (let at = pieces.indexOf(''); at !== -1; at = pieces.indexOf('', at + 1)) empty += 1;
  return pieces.length - empty;
}

/**
 * `text` with every white space character as a plain space. Splitting at a string runs in the
 * engine's native code; splitting at a pattern runs the engine's own JavaScript once per
 * character (no JIT in the sandbox), a hundred times slower.
 */
function spaced(text: string): string {
  OTHER_WS.lastIndex = 0;
  if (!OTHER_WS.test(text)) return text;
  OTHER_WS.lastIndex = 0;
  return text.replace(OTHER_WS, ' ');
}

/** Estimated speaking time in seconds at `wordsPerMinute`. */
export function speakingSeconds(text: string, wordsPerMinute: number): number {
  return (wordCount(text) * 60.0) / wordsPerMinute;
}

/**
 * Splits text into sentences at `.`, `!`, `?` (and their run, e.g. `?!`) followed by whitespace,
 * and at blank lines. Sentences keep their punctuation and are trimmed.
 */
export function sentences(text: string): string[] {
  const out: string[] = [];
  eachSentence(text, (sentence) => {
    out.push(sentence);
    return true;
  });
  return out;
}

/**
 * Gives `take` the sentences of `text` in order (as `sentences` cuts them) until it returns
 * false: fitting a long article to a short limit cuts only the sentences it keeps.
 */
function eachSentence(text: string, take: (sentence: string) => boolean): void {
  // What ends a sentence: a stop with its run of stops, quotes and brackets before white space
  // or the end; or a line break (with such a run) before another line break. A line break and
  // its run before anything else is matched too, so its stops are passed over, as in Rust.
  const boundary = /\n[.!?"')]*(?=\n)|[.!?][.!?"')]*(?=[ \t\n\f\r]|$)|\n[.!?"')]*/g;
  let start = 0;
  let found: RegExpExecArray | null;
  while ((found = boundary.exec(text)) !== null) {
    const end = found.index + found[0].length;
    if (found[0].charCodeAt(0) === 10 && text.charCodeAt(end) !== 10) continue;
    const piece = trim(text.slice(start, end));
    start = end;
    if (piece !== '' && !take(piece)) return;
  }
  const piece = trim(text.slice(start));
  if (piece !== '') take(piece);
}

/** The paragraphs of `text`: runs separated by a blank line, trimmed, none empty. */
function paragraphsOf(text: string): string[] {
  return text
    .split('\n\n')
    .map(trim)
    .filter((p) => p !== '');
}

/** A paragraph of one short sentence: a heading (or a caption) more likely than prose. */
function isHeadingLike(paragraph: string[]): boolean {
  return paragraph.length === 1 && wordCount(paragraph[0]) <= 6;
}

/**
 * The longest prefix of `text` that is estimated to be spoken within `seconds`: whole sentences
 * while they fit, paragraphs kept apart by a blank line; if not even the first sentence fits, its
 * leading words with an ellipsis.
 */
export function fitToSeconds(text: string, seconds: number, wordsPerMinute: number): string {
  const limit = Math.floor((seconds * wordsPerMinute) / 60.0);
  const maxWords = Number.isFinite(limit) ? Math.max(limit, 0) : limit > 0 ? Number.MAX_SAFE_INTEGER : 0;
  const paragraphs: string[][] = [];
  let count = 0;
  let full = false;
  for (const paragraph of paragraphsOf(text)) {
    const kept: string[] = [];
    eachSentence(paragraph, (sentence) => {
      const n = wordCount(sentence);
      full = count + n > maxWords;
      if (full) return false;
      count += n;
      kept.push(sentence);
      return true;
    });
    if (kept.length > 0) {
      paragraphs.push(kept);
    } else if (full && paragraphs.length > 0 && isHeadingLike(paragraphs[paragraphs.length - 1])) {
      // A heading whose section is cut away is not said on its own.
      paragraphs.pop();
    }
    if (full) break;
  }
  if (paragraphs.length === 0 && maxWords > 0) {
    return `${words(text).slice(0, maxWords).join(' ')}…`;
  }
  return paragraphs.map((p) => p.join(' ')).join('\n\n');
}

/** Chinese and Japanese script, whose sentences end with `。` (Korean ends them with `.`). */
function isCjk(c: string): boolean {
  const n = c.codePointAt(0) ?? 0;
  return (
    (n >= 0x3040 && n <= 0x30ff) ||
    (n >= 0x3400 && n <= 0x4dbf) ||
    (n >= 0x4e00 && n <= 0x9fff) ||
    (n >= 0xf900 && n <= 0xfaff)
  );
}

/** Whether `c` ends a sentence (or a clause a heading may end with), in any script we read. */
function endsASentence(c: string): boolean {
  return '.!?…:;。！？؟۔।"\'”’»)]）」』'.includes(c);
}

/** `text` without emoji and pictographs, spaces tidied where one was removed. */
function withoutPictographs(text: string): string {
  PICTOGRAPHS.lastIndex = 0;
  if (!PICTOGRAPHS.test(text)) return text;
  return text
    .replace(PICTOGRAPHS, '')
    .split(' ')
    .filter((w) => w !== '')
    .join(' ');
}

/** `(https://www.example.com/path).` → `(example.com).`; null for a word that is not an address. */
export function siteOf(word: string): string | null {
  let start = word.indexOf('http://');
  if (start < 0) start = word.indexOf('https://');
  if (start < 0) start = word.indexOf('www.');
  if (start < 0) return null;
  const before = word.slice(0, start);
  let address = word.slice(start);
  let trail = address.length;
  const chars = Array.from(address);
  let offset = address.length;
  for (let k = chars.length - 1; k >= 0; k -= 1) {
    if (!'.,;:!?)]}"\'”’»'.includes(chars[k])) break;
    offset -= chars[k].length;
    trail = offset;
  }
  const after = address.slice(trail);
  address = address.slice(0, trail);
  const trimStart = (s: string, prefix: string) => {
    while (s.startsWith(prefix)) s = s.slice(prefix.length);
    return s;
  };
  const host = trimStart(trimStart(trimStart(address, 'https://'), 'http://'), 'www.')
    .split(/[/?#]/)[0]
    .split(':')[0];
  return host === '' ? null : `${before}${host}${after}`;
}

/** Each whitespace-separated word that is a web address, as its site's name. */
function sitesForAddresses(text: string): string {
  if (!text.includes('http://') && !text.includes('https://') && !text.includes('www.')) {
    return text;
  }
  return text
    .split(new RegExp(`([${WS}]+)`, 'u'))
    .map((piece, i) => (i % 2 === 1 ? piece : siteOf(piece) ?? piece))
    .join('');
}

/** Letters and digits (Rust's `char::is_alphanumeric`), one at a time. */
const ALNUM_EACH = /[\p{Alphabetic}\p{Nd}\p{Nl}\p{No}]/gu;

/**
 * Letters and digits, lower-cased one character at a time as the Rust SDK compares them (a
 * whole-string `toLowerCase` differs only for a final Σ).
 */
function key(text: string): string {
  const kept = text.replace(NOT_ALNUM, '');
  if (!kept.includes('Σ')) return kept.toLowerCase();
  return Array.from(kept)
    .map((c) => c.toLowerCase())
    .join('');
}

/**
 * Whether `key(text)` is `expected`, stopping at the first letter that differs: a long first
 * paragraph is not read whole to learn that it is not the title.
 */
function keyIs(text: string, expected: string): boolean {
  ALNUM_EACH.lastIndex = 0;
  let at = 0;
  let found: RegExpExecArray | null;
  while ((found = ALNUM_EACH.exec(text)) !== null) {
    const lower = found[0].toLowerCase();
    if (!expected.startsWith(lower, at)) return false;
    at += lower.length;
  }
  return at === expected.length;
}

/**
 * A body as a narrator reads it after its title (the rules every SDK applies the same way): a
 * first paragraph repeating the title is dropped; a paragraph without a closing stop gets one
 * (`。` after CJK text); a bare web address is read as its site; emoji are not read, and a
 * paragraph left with no letter or digit is dropped.
 */
export function narrationBody(title: string, body: string): string {
  const titleKey = key(title);
  const out: string[] = [];
  paragraphsOf(body).forEach((paragraph, i) => {
    if (i === 0 && titleKey !== '' && keyIs(paragraph, titleKey)) return;
    let spoken = sitesForAddresses(withoutPictographs(paragraph));
    if (!ALNUM.test(spoken)) return;
    // The last character (a code point: at most the last two UTF-16 units).
    const last = Array.from(spoken.slice(-2)).pop();
    if (last !== undefined && !endsASentence(last)) {
      spoken += isCjk(last) ? '。' : '.';
    }
    out.push(spoken);
  });
  return out.join('\n\n');
}

/**
 * A rendered script's stops made right where a template wrote `{{title}}.` after a title that
 * ends in its own stop: `Why Ghost?.` → `Why Ghost?`, and a `.` after CJK text → `。`.
 */
export function tidyStops(script: string): string {
  // Each `.` that ends a word, with the character before it as written (a stop is dropped only
  // before white space, so a dropped one never changes what the next stop sees).
  return script.replace(TIDY, (stop: string, previous: string) =>
    '!?。！？…'.includes(previous) ? '' : isCjk(previous) ? '。' : stop,
  );
}

// Compiled while the component is built (componentize-js snapshots the engine after the module
// has run), not at the first use in every run: the Unicode classes take millions of
// instructions to compile.
for (const pattern of [ALNUM, NOT_ALNUM, ALNUM_EACH, PICTOGRAPHS, TIDY, OTHER_WS]) {
  pattern.lastIndex = 0;
  pattern.test('a. 1');
  pattern.lastIndex = 0;
}
sentences('A. B');
