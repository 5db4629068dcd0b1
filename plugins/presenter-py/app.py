"""The presenter in Python: the bundled Rust presenter (``plugins/presenter``) rule for rule, so
the parity test (tests/languages.rs) can hold the two to identical plans. One video per content
event, its script and scene prompt from editor templates, the body fitted before it goes into
the script template; ``shorten`` cuts a too-long script at a sentence at the pace the host
measured."""

import dataclasses
import json

import wit_world
from vidhook_sdk import (
    Speech,
    VideoPlan,
    config_error,
    config_number,
    config_or,
    exported,
    fields_json,
    generate,
    info,
    invalid_content,
    locale,
    max_audio_seconds,
    parse_resolution,
    render_json,
    template_error,
    text,
)


class WitWorld(wit_world.WitWorld):
    @exported
    def plan(self, content, draft):
        if not text.trim(content.body_text) and not text.trim(content.title):
            raise invalid_content("the content has neither a title nor a body to narrate")
        if content.image_url is None:
            raise config_error("no presenter image: set `presenter_image` on the source or the entry")
        resolution = parse_resolution(config_or("resolution", "720p"))
        wpm = config_number("words_per_minute", 175.0)
        margin = config_number("safety_margin", 0.85)
        budget = max_audio_seconds(resolution) * margin
        script_template = config_or("script_template", "script")

        # Measure what the template adds around the body, then give the body what is left.
        def context(body):
            rest = json.dumps(
                {
                    "title": content.title,
                    "body": body,
                    "locale": content.locale,
                    "kind": content.kind,
                    "url": content.url,
                    "source": content.source,
                },
                ensure_ascii=False,
            )
            return f'{{"fields":{fields_json(content)},{rest[1:]}'

        frame = render_json(script_template, context(""))
        body_budget = budget - text.speaking_seconds(frame, wpm)
        if body_budget <= 0.0:
            raise template_error(
                f"template {json.dumps(script_template)} alone takes longer than the {budget:.0f} s limit"
            )
        body = text.fit_to_seconds(text.narration_body(content.title, content.body_text), body_budget, wpm)
        script = text.tidy_stops(render_json(script_template, context(body)))
        prompt = render_json(config_or("prompt_template", "prompt"), context(body))
        info(
            f"script: {text.word_count(script)} words, ~{text.speaking_seconds(script, wpm):.1f} s "
            f"of {max_audio_seconds(resolution):.0f} s allowed"
        )
        voice = config_or("voice", locale.ascii_lower(content.locale) if content.locale else "en-us")
        return generate(
            [
                VideoPlan(
                    key=content.locale,
                    script=script,
                    prompt=prompt,
                    speech=Speech(text=script, voice=voice, language=content.locale, provider=""),
                    image_url=content.image_url,
                    resolution=resolution,
                    turbo=config_or("turbo", "false") == "true",
                    target_field=config_or("target_field", "video_url"),
                )
            ]
        )

    @exported
    def shorten(self, content, plan, too_long):
        words = text.word_count(plan.speech.text)
        if words == 0 or too_long.measured_seconds <= 0.0:
            raise invalid_content("nothing to shorten")
        measured_wpm = words * 60.0 / too_long.measured_seconds
        margin = config_number("safety_margin", 0.85)
        script = text.fit_to_seconds(plan.speech.text, too_long.limit_seconds * margin, measured_wpm)
        if not text.trim(script):
            raise invalid_content("not even one sentence fits the limit")
        info(
            f"shortened: {too_long.measured_seconds:.1f} s measured, {too_long.limit_seconds:.0f} s allowed; "
            f"{text.word_count(script)} of {words} words kept at {measured_wpm:.0f} wpm"
        )
        speech = dataclasses.replace(plan.speech, text=script)
        return generate([dataclasses.replace(plan, script=script, speech=speech)])
