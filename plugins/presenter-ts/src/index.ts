// The presenter in TypeScript: the bundled Rust presenter (`plugins/presenter`) rule for rule,
// so the parity test (tests/languages.rs) can hold the two to identical plans. One video per
// content event, its script and scene prompt from editor templates, the body fitted before it
// goes into the script template; `shorten` cuts a too-long script at a sentence at the pace the
// host measured.

import {
  configNumber,
  configOr,
  exported,
  fieldsJson,
  generate,
  info,
  invalidContent,
  configError,
  templateError,
  maxAudioSeconds,
  parseResolution,
  renderJson,
  text,
  locale,
  type Content,
  type TooLong,
  type VideoPlan,
} from '../../sdk-ts/index.ts';

export const plan = exported('plan', (content: Content, _draft: VideoPlan[]) => {
  if (text.trim(content.bodyText) === '' && text.trim(content.title) === '') {
    throw invalidContent('the content has neither a title nor a body to narrate');
  }
  if (content.imageUrl === undefined) {
    throw configError('no presenter image: set `presenter_image` on the source or the entry');
  }
  const resolution = parseResolution(configOr('resolution', '720p'));
  const wpm = configNumber('words_per_minute', 175.0);
  const margin = configNumber('safety_margin', 0.85);
  const budget = maxAudioSeconds(resolution) * margin;
  const scriptTemplate = configOr('script_template', 'script');

  // Measure what the template adds around the body, then give the body what is left.
  const context = (body: string) =>
    `{"fields":${fieldsJson(content)},${JSON.stringify({
      title: content.title,
      body,
      locale: content.locale,
      kind: content.kind,
      url: content.url ?? null,
      source: content.source,
    }).slice(1)}`;
  const frame = renderJson(scriptTemplate, context(''));
  const bodyBudget = budget - text.speakingSeconds(frame, wpm);
  if (bodyBudget <= 0.0) {
    throw templateError(
      `template ${JSON.stringify(scriptTemplate)} alone takes longer than the ${budget.toFixed(0)} s limit`,
    );
  }
  const body = text.fitToSeconds(text.narrationBody(content.title, content.bodyText), bodyBudget, wpm);
  const script = text.tidyStops(renderJson(scriptTemplate, context(body)));
  const prompt = renderJson(configOr('prompt_template', 'prompt'), context(body));
  info(
    `script: ${text.wordCount(script)} words, ~${text.speakingSeconds(script, wpm).toFixed(1)} s of ${maxAudioSeconds(resolution).toFixed(0)} s allowed`,
  );
  const voice = configOr('voice', content.locale === '' ? 'en-us' : locale.asciiLower(content.locale));
  return generate([
    {
      key: content.locale,
      speech: { text: script, voice, language: content.locale, provider: '' },
      script,
      prompt,
      imageUrl: content.imageUrl,
      resolution,
      turbo: configOr('turbo', 'false') === 'true',
      targetField: configOr('target_field', 'video_url'),
    },
  ]);
});

export const shorten = exported('shorten', (_content: Content, plan: VideoPlan, tooLong: TooLong) => {
  const words = text.wordCount(plan.speech.text);
  if (words === 0 || tooLong.measuredSeconds <= 0.0) {
    throw invalidContent('nothing to shorten');
  }
  const measuredWpm = (words * 60.0) / tooLong.measuredSeconds;
  const margin = configNumber('safety_margin', 0.85);
  const script = text.fitToSeconds(plan.speech.text, tooLong.limitSeconds * margin, measuredWpm);
  if (text.trim(script) === '') {
    throw invalidContent('not even one sentence fits the limit');
  }
  info(
    `shortened: ${tooLong.measuredSeconds.toFixed(1)} s measured, ${tooLong.limitSeconds.toFixed(0)} s allowed; ${text.wordCount(script)} of ${words} words kept at ${measuredWpm.toFixed(0)} wpm`,
  );
  return generate([{ ...plan, script, speech: { ...plan.speech, text: script } }]);
});
