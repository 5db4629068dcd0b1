// Locale helpers: BCP 47 tags as CMSs send them ("en-US", "de_DE", "pt-br"), as the Rust SDK's
// `locale` module reads them.

const asciiLower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
const asciiUpper = (s: string) => s.replace(/[a-z]/g, (c) => c.toUpperCase());

/** Normalises a tag: language lower-case, region upper-case, `_` → `-` ("de_de" → "de-DE"). */
export function normalize(tag: string): string {
  const [language, ...rest] = tag.trim().split(/[-_]/);
  return [asciiLower(language), ...rest.map((p) => (p.length === 2 ? asciiUpper(p) : p))].join('-');
}

/** The primary language subtag ("de-AT" → "de"). */
export function language(tag: string): string {
  return normalize(tag).split('-')[0];
}

/** The espeak-ng style voice for a locale ("en-US" → "en-us"; none → "en-us"). */
export function defaultVoice(tag: string): string {
  const normalized = normalize(tag);
  return normalized === '' ? 'en-us' : asciiLower(normalized);
}

/** A locale as a field-name suffix ("de-DE" → "de_de"). */
export function slug(tag: string): string {
  return asciiLower(normalize(tag)).replace(/-/g, '_');
}

export { asciiLower };
