"""The digest plugin in Python: the bundled Rust digest (``plugins/digest``) rule for rule, so the
parity test (tests/languages.rs) can hold the two to identical plans. The items a source
published since its last tick, read as one video; items are dropped from the end until the
script fits the resolution's audio limit."""

import wit_world
from vidhook_sdk import (
    Speech,
    VideoPlan,
    config_error,
    config_number,
    config_or,
    exported,
    generate,
    info,
    max_audio_seconds,
    parse_resolution,
    render,
    skip,
    text,
)


class WitWorld(wit_world.WitWorld):
    @exported
    def digest(self, items):
        if not items:
            return skip("nothing was published since the last digest")
        image_url = next((item.image_url for item in items if item.image_url is not None), None)
        if image_url is None:
            raise config_error("no presenter image: set `presenter_image` on the source")
        resolution = parse_resolution(config_or("resolution", "720p"))
        wpm = config_number("words_per_minute", 175.0)
        budget = max_audio_seconds(resolution) * config_number("safety_margin", 0.85)
        template = config_or("script_template", "digest")
        listed = [
            {
                "title": item.title,
                "summary": text.fit_to_seconds(text.narration_body(item.title, item.body_text), 6.0, wpm),
                "url": item.url,
                "locale": item.locale,
            }
            for item in items
        ]
        # The most items whose script fits.
        count = len(listed)
        while True:
            script = text.tidy_stops(render(template, {"items": listed[:count], "count": count}))
            if text.speaking_seconds(script, wpm) <= budget or count == 1:
                break
            count -= 1
        prompt = render(config_or("prompt_template", "prompt"), {"title": f"{count} stories", "items": listed[:count]})
        info(f"digest of {count} of {len(items)} items, ~{text.speaking_seconds(script, wpm):.1f} s")
        return generate(
            [
                VideoPlan(
                    key="digest",
                    script=script,
                    prompt=prompt,
                    speech=Speech(text=script, voice=config_or("voice", "en-us"), language=items[0].locale, provider=""),
                    image_url=image_url,
                    resolution=resolution,
                    turbo=False,
                    # A digest has no CMS entry of its own: nothing is written back.
                    target_field="",
                )
            ]
        )
