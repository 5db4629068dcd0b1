-- A render's captions as editors corrected them (issue #29): each save is a version with its
-- author and note; the latest is what the render's VTT/SRT say. Version 0, the cues made from the
-- synthesised audio, is the one kept beside the narration in the media store.
CREATE TABLE caption_edits (
    render_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    cues_json TEXT NOT NULL,
    author TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (render_id, version)
);
