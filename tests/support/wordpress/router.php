<?php
// Router for PHP's built-in server in front of Debian's WordPress (/usr/share/wordpress):
// static files are served as they are, PHP files run, everything else goes to index.php.
// WORDPRESS_CONFIG names the site's /etc/wordpress/config-<name>.php (Debian's wp-config.php).
$_SERVER['WORDPRESS_CONFIG'] = getenv('WORDPRESS_CONFIG');
$root = '/usr/share/wordpress';
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$file = $root . $path;
if ($path !== '/' && is_file($file) && substr($file, -4) !== '.php') {
	return false;
}
if ($path === '/' || !is_file($file)) {
	$file = $root . '/index.php';
}
$_SERVER['SCRIPT_FILENAME'] = $file;
$_SERVER['SCRIPT_NAME'] = $_SERVER['PHP_SELF'] = substr($file, strlen($root));
chdir(dirname($file));
require $file;
