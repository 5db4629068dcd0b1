<?php
/**
 * Plugin Name:       vidhook
 * Description:       Sends each post, when it is published, to vidhook (as Standard Webhooks-signed JSON) so that it can make a presenter video of it, and exposes the `video_url` post meta to the REST API so that vidhook can write the video's address back.
 * Version:           0.1.0
 * Requires at least: 5.6
 * Requires PHP:      7.4
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 *
 * Settings (Settings → vidhook, or constants in wp-config.php, which win):
 *   VIDHOOK_ENDPOINT  vidhook's webhook URL for this site, e.g. https://vidhook.example.com/hooks/blog
 *   VIDHOOK_SECRET    the source's Standard Webhooks secret, whsec_…
 *
 * What is sent, after the post and its meta are saved (`wp_after_insert_post`):
 *   - `content.published` when a post goes to `publish` from any other status;
 *   - `content.updated` when a published post is saved again (vidhook ignores it: only the
 *     publish transition makes a video, which is also what stops vidhook's own write-back, a
 *     publish → publish update, from triggering another video).
 * A delivery that fails is retried by WP-Cron (1, 5, 30 minutes) with the same webhook-id.
 */

if (!defined('ABSPATH')) {
	exit;
}

const VIDHOOK_META_KEY = 'video_url';
/** The video's companions, for themes and players: map them in vidhook's `[sources.NAME.fields]`
 * (captions, captions_language, poster). */
const VIDHOOK_COMPANION_META_KEYS = array('video_captions_url', 'video_captions_language', 'video_poster_url');
const VIDHOOK_RETRY_DELAYS = array(60, 300, 1800);

/** The post meta vidhook writes, readable and writable through the REST API. */
function vidhook_register_meta() {
	foreach (get_post_types(array('show_in_rest' => true), 'names') as $type) {
		foreach (array_merge(array(VIDHOOK_META_KEY), VIDHOOK_COMPANION_META_KEYS) as $key) {
			register_post_meta($type, $key, array(
				'show_in_rest'  => true,
				'single'        => true,
				'type'          => 'string',
				'auth_callback' => function () {
					return current_user_can('edit_posts');
				},
			));
		}
	}
}
add_action('init', 'vidhook_register_meta', 20);

function vidhook_setting($name) {
	$constant = 'VIDHOOK_' . strtoupper($name);
	if (defined($constant)) {
		return constant($constant);
	}
	return get_option('vidhook_' . $name, '');
}

/** After a post and its meta are saved: send it if it was published or edited while published. */
function vidhook_after_insert_post($post_id, $post, $update, $post_before) {
	if (wp_is_post_revision($post_id) || wp_is_post_autosave($post_id) || 'publish' !== $post->post_status) {
		return;
	}
	$type_object = get_post_type_object($post->post_type);
	if (!$type_object || !$type_object->show_in_rest) {
		return;
	}
	$was_published = $post_before && 'publish' === $post_before->post_status;
	$event = $was_published ? 'content.updated' : 'content.published';
	$payload = array(
		'type'      => $event,
		'timestamp' => gmdate('c'),
		'data'      => array(
			'id'        => $post_id,
			'title'     => html_entity_decode(get_the_title($post), ENT_QUOTES, 'UTF-8'),
			'body_html' => apply_filters('the_content', $post->post_content),
			'locale'    => str_replace('_', '-', get_locale()),
			'kind'      => $post->post_type,
			'revision'  => $post->post_modified_gmt,
			'url'       => get_permalink($post),
			'image_url' => get_the_post_thumbnail_url($post, 'full') ?: null,
			'rest_base' => $type_object->rest_base ?: $post->post_type,
		),
	);
	$body = wp_json_encode($payload);
	// Stable across retries of this message, different for each save.
	$id = 'wp_' . $post_id . '_' . strtotime($post->post_modified_gmt . ' UTC') . '_' . md5($event . $body);
	vidhook_deliver($id, $body, 0);
}
add_action('wp_after_insert_post', 'vidhook_after_insert_post', 10, 4);

/** The `webhook-signature` header value: v1,base64(HMAC-SHA256(key, "id.timestamp.body")). */
function vidhook_signature($secret, $id, $timestamp, $body) {
	$key = base64_decode(preg_replace('/^whsec_/', '', $secret), true);
	if (false === $key) {
		return null;
	}
	return 'v1,' . base64_encode(hash_hmac('sha256', $id . '.' . $timestamp . '.' . $body, $key, true));
}

function vidhook_deliver($id, $body, $attempt) {
	$endpoint = vidhook_setting('endpoint');
	$secret = vidhook_setting('secret');
	if (!$endpoint || !$secret) {
		return;
	}
	$timestamp = time();
	$signature = vidhook_signature($secret, $id, $timestamp, $body);
	if (null === $signature) {
		error_log('vidhook: the secret is not whsec_<base64>');
		return;
	}
	$response = wp_remote_post($endpoint, array(
		'timeout' => 10,
		'headers' => array(
			'Content-Type'      => 'application/json',
			'webhook-id'        => $id,
			'webhook-timestamp' => (string) $timestamp,
			'webhook-signature' => $signature,
		),
		'body'    => $body,
	));
	$status = is_wp_error($response) ? 0 : (int) wp_remote_retrieve_response_code($response);
	if ($status >= 200 && $status < 300) {
		return;
	}
	$reason = is_wp_error($response) ? $response->get_error_message() : 'HTTP ' . $status;
	if ($status >= 400 && $status < 500 && 429 !== $status) {
		error_log("vidhook: $id refused ($reason); not retried");
		return;
	}
	if ($attempt < count(VIDHOOK_RETRY_DELAYS)) {
		wp_schedule_single_event(time() + VIDHOOK_RETRY_DELAYS[$attempt], 'vidhook_retry', array($id, $body, $attempt + 1));
		error_log("vidhook: $id not delivered ($reason); retry " . ($attempt + 1) . ' scheduled');
	} else {
		error_log("vidhook: $id not delivered ($reason); gave up");
	}
}
add_action('vidhook_retry', 'vidhook_deliver', 10, 3);

/** Settings → vidhook: the endpoint and the secret (unless set as constants). */
function vidhook_settings_init() {
	register_setting('vidhook', 'vidhook_endpoint', array('type' => 'string', 'sanitize_callback' => 'esc_url_raw'));
	register_setting('vidhook', 'vidhook_secret', array('type' => 'string', 'sanitize_callback' => 'sanitize_text_field'));
	add_settings_section('vidhook_main', 'vidhook', '__return_false', 'vidhook');
	add_settings_field('vidhook_endpoint', 'Webhook URL', function () {
		printf('<input type="url" class="regular-text" name="vidhook_endpoint" value="%s">', esc_attr(get_option('vidhook_endpoint', '')));
	}, 'vidhook', 'vidhook_main');
	add_settings_field('vidhook_secret', 'Secret (whsec_…)', function () {
		printf('<input type="password" class="regular-text" name="vidhook_secret" value="%s" autocomplete="off">', esc_attr(get_option('vidhook_secret', '')));
	}, 'vidhook', 'vidhook_main');
}
add_action('admin_init', 'vidhook_settings_init');

function vidhook_settings_page() {
	add_options_page('vidhook', 'vidhook', 'manage_options', 'vidhook', function () {
		echo '<div class="wrap"><h1>vidhook</h1><form method="post" action="options.php">';
		settings_fields('vidhook');
		do_settings_sections('vidhook');
		submit_button();
		echo '</form></div>';
	});
}
add_action('admin_menu', 'vidhook_settings_page');
