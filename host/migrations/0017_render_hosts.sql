-- Several video hosts (issue #28): the host a render is with, by its configuration name. Written
-- by routing (a narration too long for the source's first host) and, in the same statement that
-- marks the render `submitting`, by the paid submit, so a render whose outcome is unknown is
-- always reconciled with the host it was sent to. NULL: the source's first host.
ALTER TABLE renders ADD COLUMN provider TEXT;
