<?php
// Installs WordPress into the configured (empty) database, activates the vidhook plugin and
// prints a new Application Password for the admin user. Run with the php CLI, WORDPRESS_CONFIG set.
$_SERVER['HTTP_HOST'] = '127.0.0.1';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['WORDPRESS_CONFIG'] = getenv('WORDPRESS_CONFIG');
if ($argv[1] === 'install') {
	define('WP_INSTALLING', true);
	require '/usr/share/wordpress/wp-load.php';
	require_once ABSPATH . 'wp-admin/includes/upgrade.php';
	$result = wp_install('vidhook test site', 'admin', 'admin@example.test', false, '', 'admin-password-123');
	echo "installed user " . $result['user_id'] . "\n";
	exit(0);
}
require '/usr/share/wordpress/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
$activated = activate_plugin('vidhook/vidhook.php');
if (is_wp_error($activated)) {
	fwrite(STDERR, 'activate: ' . $activated->get_error_message() . "\n");
	exit(1);
}
if (!wp_is_application_passwords_available()) {
	fwrite(STDERR, "application passwords are not available\n");
	exit(1);
}
list($password) = WP_Application_Passwords::create_new_application_password(1, array('name' => 'vidhook'));
echo $password;
