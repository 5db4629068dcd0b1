// Text helpers that run inside the sandbox: sentence splitting, speaking-time estimates, fitting a
// narration to a time limit without cutting a sentence in half, and the narrator's reading of a
// body. Each function is the Rust SDK's (`plugins/sdk/src/text.rs`) rule for rule, so a plugin
// plans the same in every language (the parity test in tests/languages.rs runs all three).

/** Unicode White_Space, as Rust's `char::is_whitespace` (JS's `\s` adds U+FEFF). */
const WS = '\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WS_RUN = new RegExp(`[${WS}]+`, 'u');
const EDGES = new RegExp(`^[${WS}]+|[${WS}]+$`, 'gu');
/** A `.` followed by white space or the end, with the character before it. */
const TIDY = new RegExp(`(?<=(.))\\.(?=[${WS}]|$)`, 'gsu');
/** Rust's `char::is_alphanumeric`: Alphabetic or a number (Nd, Nl, No). */
const ALNUM = /[\p{Alphabetic}\p{Nd}\p{Nl}\p{No}]/u;
const NOT_ALNUM = /[^\p{Alphabetic}\p{Nd}\p{Nl}\p{No}]+/gu;
/** Emoji and pictographs, and the joiners and selectors that build them. */
const PICTOGRAPHS = /[\u{1F000}-\u{1FAFF}\u2600-\u27BF\u2B00-\u2BFF\u2190-\u21FF\uFE0E\uFE0F\u200D\u20E3]/gu;

/** Trims Unicode white space at both ends (as Rust's `str::trim`). */
export function trim(text: string): string {
  return text.replace(EDGES, '');
}

/** The whitespace-separated words of `text`. */
export function words(text: string): string[] {
  // JS's `\s` is Rust's White_Space but for U+FEFF (only JS's) and U+0085 (only Rust's); the
  // plain `\s` runs faster in the engine's interpreter than the Unicode class.
  const run = text.includes('\ufeff') || text.includes('\u0085') ? WS_RUN : /\s+/;
  return text.split(run).filter((w) => w !== '');
}

/** Number of words (whitespace-separated runs). */
export function wordCount(text: string): number {
  return words(text).length;
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
  const isStop = (c: string) => c === '.' || c === '!' || c === '?';
  const asciiSpace = (c: string | undefined) =>
    c === ' ' || c === '\t' || c === '\n' || c === '\f' || c === '\r';
  const out: string[] = [];
  const push = (piece: string) => {
    const trimmed = trim(piece);
    if (trimmed !== '') out.push(trimmed);
  };
  // Only the delimiters are looked at (the engine finds them), not every character.
  const delimiter = /[.!?\n]/g;
  let start = 0;
  let found: RegExpExecArray | null;
  while ((found = delimiter.exec(text)) !== null) {
    const i = found.index;
    const c = text[i];
    let j = i + 1;
    while (j < text.length && (isStop(text[j]) || text[j] === '"' || text[j] === "'" || text[j] === ')')) {
      j += 1;
    }
    const atBoundary = j >= text.length || asciiSpace(text[j]);
    if (atBoundary && (c !== '\n' || text[j] === '\n')) {
      push(text.slice(start, j));
      start = j;
    }
    delimiter.lastIndex = j;
  }
  push(text.slice(start));
  return out;
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
  outer: for (const paragraph of paragraphsOf(text)) {
    const kept: string[] = [];
    for (const sentence of sentences(paragraph)) {
      const n = wordCount(sentence);
      if (count + n > maxWords) {
        if (kept.length > 0) {
          paragraphs.push(kept);
        } else if (paragraphs.length > 0 && isHeadingLike(paragraphs[paragraphs.length - 1])) {
          // A heading whose section is cut away is not said on its own.
          paragraphs.pop();
        }
        break outer;
      }
      count += n;
      kept.push(sentence);
    }
    if (kept.length > 0) paragraphs.push(kept);
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
