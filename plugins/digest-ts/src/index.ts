// The digest plugin in TypeScript: the bundled Rust digest (`plugins/digest`) rule for rule, so
// the parity test (tests/languages.rs) can hold the two to identical plans. The items a source
// published since its last tick, read as one video; items are dropped from the end until the
// script fits the resolution's audio limit.

import {
  configError,
  configNumber,
  configOr,
  exported,
  generate,
  info,
  maxAudioSeconds,
  parseResolution,
  render,
  skip,
  text,
  type Content,
} from '../../sdk-ts/index.ts';

export const digest = exported('digest', (items: Content[]) => {
  if (items.length === 0) {
    return skip('nothing was published since the last digest');
  }
  const imageUrl = items.find((item) => item.imageUrl !== undefined)?.imageUrl;
  if (imageUrl === undefined) {
    throw configError('no presenter image: set `presenter_image` on the source');
  }
  const resolution = parseResolution(configOr('resolution', '720p'));
  const wpm = configNumber('words_per_minute', 175.0);
  const budget = maxAudioSeconds(resolution) * configNumber('safety_margin', 0.85);
  const template = configOr('script_template', 'digest');
  const listed = items.map((item) => ({
    title: item.title,
    summary: text.fitToSeconds(text.narrationBody(item.title, item.bodyText), 6.0, wpm),
    url: item.url ?? null,
    locale: item.locale,
  }));
  // The most items whose script fits.
  let count = listed.length;
  let script: string;
  for (;;) {
    script = text.tidyStops(render(template, { items: listed.slice(0, count), count }));
    if (text.speakingSeconds(script, wpm) <= budget || count === 1) break;
    count -= 1;
  }
  const prompt = render(configOr('prompt_template', 'prompt'), {
    title: `${count} stories`,
    items: listed.slice(0, count),
  });
  info(`digest of ${count} of ${items.length} items, ~${text.speakingSeconds(script, wpm).toFixed(1)} s`);
  return generate([
    {
      key: 'digest',
      speech: { text: script, voice: configOr('voice', 'en-us'), language: items[0].locale, provider: '' },
      script,
      prompt,
      imageUrl,
      resolution,
      turbo: false,
      // A digest has no CMS entry of its own: nothing is written back.
      targetField: '',
    },
  ]);
});
