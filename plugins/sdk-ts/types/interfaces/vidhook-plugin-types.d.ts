declare module 'vidhook:plugin/types@0.1.2' {
  /**
   * One piece of published content, normalised from whatever CMS sent it.
   */
  export interface Content {
    /**
     * The configured source name (e.g. "blog").
     */
    source: string,
    /**
     * The CMS kind that sent it (e.g. "markdown", "standard-webhooks").
     */
    cms: string,
    /**
     * The CMS's id for the entry.
     */
    id: string,
    /**
     * The CMS's revision/version marker, informational only.
     */
    revision: string,
    /**
     * Hash of the fields that drive the video; the dedup key.
     */
    fingerprint: string,
    /**
     * Content type in the CMS (e.g. "post", "article").
     */
    kind: string,
    /**
     * BCP 47 locale of this content (e.g. "en-US").
     */
    locale: string,
    title: string,
    bodyHtml: string,
    /**
     * The body as plain text, paragraphs separated by blank lines.
     */
    bodyText: string,
    /**
     * Public URL of the entry, when the CMS knows it.
     */
    url?: string,
    /**
     * Presenter photo for this entry (already resolved to a fetchable URL by the host).
     */
    imageUrl?: string,
    /**
     * Every field the CMS sent, as a JSON object, for plugins that need more.
     */
    fieldsJson: string,
  }
  /**
   * What the host should synthesise. The host holds the TTS credentials and makes the call.
   */
  export interface Speech {
    text: string,
    /**
     * Engine-specific voice id (espeak-ng: "en-us", "de", …).
     */
    voice: string,
    /**
     * BCP 47 language of the text.
     */
    language: string,
    /**
     * Which configured TTS provider to use; empty = the source's default.
     */
    provider: string,
  }
  /**
   * # Variants
   * 
   * ## `"p720"`
   * 
   * ## `"p1080"`
   */
  export type Resolution = 'p720' | 'p1080';
  /**
   * One video to make.
   */
  export interface VideoPlan {
    /**
     * Stable key within one content event (e.g. the locale); one render per key.
     */
    key: string,
    /**
     * The narration, as written by the plugin (for review and provenance).
     */
    script: string,
    /**
     * Scene description for the video model: background, lighting, framing.
     */
    prompt: string,
    speech: Speech,
    imageUrl: string,
    resolution: Resolution,
    turbo: boolean,
    /**
     * The CMS field that receives the video URL.
     */
    targetField: string,
  }
  export type Decision = DecisionSkip | DecisionGenerate;
  /**
   * Make no video; the reason is shown to people.
   */
  export interface DecisionSkip {
    tag: 'skip',
    val: string,
  }
  export interface DecisionGenerate {
    tag: 'generate',
    val: Array<VideoPlan>,
  }
  /**
   * Since 0.1.2: a synthesised narration came out longer than its resolution allows.
   */
  export interface TooLong {
    /**
     * The longest narration the plan's resolution accepts, in seconds.
     */
    limitSeconds: number,
    /**
     * The narration as synthesised, in seconds (decoded, not estimated).
     */
    measuredSeconds: number,
  }
  /**
   * A typed failure, so the host can categorise it.
   */
  export type PluginError = PluginErrorInvalidContent | PluginErrorTemplate | PluginErrorConfig | PluginErrorInternal;
  /**
   * The content cannot be turned into a video (e.g. empty body).
   */
  export interface PluginErrorInvalidContent {
    tag: 'invalid-content',
    val: string,
  }
  /**
   * An editor template failed to render.
   */
  export interface PluginErrorTemplate {
    tag: 'template',
    val: string,
  }
  /**
   * The plugin's configuration is missing or wrong.
   */
  export interface PluginErrorConfig {
    tag: 'config',
    val: string,
  }
  /**
   * Anything else.
   */
  export interface PluginErrorInternal {
    tag: 'internal',
    val: string,
  }
}
