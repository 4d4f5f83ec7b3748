<?php
// A PBX in PHP (as FreePBX is) that embeds modhost through PHP's FFI extension and the C
// API (crates/modhost-capi/include/modhost.h): it gives modules its own API,
// `pbx:telephony` (examples/wit/telephony.wit), as PHP callbacks; installs the example
// modules into a fresh root; declares its `call.route` hook point as a fail-closed
// pipeline, routes a call through the modules and prints what they decided; then tells
// them a voicemail was left, and prints the call the `callback` module made through the
// API.
//
//   cargo build -p modhost-capi && cargo xtask modules
//   php examples/php/pbx.php target/debug/libmodhost_capi.so target/modules [CHANNEL]
//
// CHANNEL is the caller's channel the voicemail is left on, the dispatch's context
// (`PJSIP/2025550101-incoming` unless given); like a caller ID name, it need not be UTF-8.
// Debian's php-cli enables FFI for the command line (ffi.enable=preload).

declare(strict_types=1);

if ($argc !== 3 && $argc !== 4) {
    fwrite(STDERR, "usage: php pbx.php LIBMODHOST_CAPI.so PACKAGE-DIR [CHANNEL]\n");
    exit(2);
}
[, $library, $packages] = $argv;
$channel = $argv[3] ?? 'PJSIP/2025550101-incoming';

// PHP's FFI reads declarations, not the preprocessor: the header's #define constants are
// read here, its C++-only blocks and other preprocessor lines dropped.
$header = file_get_contents(__DIR__ . '/../../crates/modhost-capi/include/modhost.h');
preg_match_all('/^#define (MODHOST_\w+) (\d+)$/m', $header, $defines, PREG_SET_ORDER);
$const = [];
foreach ($defines as [, $name, $value]) {
    $const[$name] = (int) $value;
}
$declarations = preg_replace(['/^#ifdef __cplusplus$.*?^#endif[^\n]*$/ms', '/^#.*$/m'], '', $header);
$modhost = FFI::cdef($declarations, $library);

/** Fails with modhost's message (freed) when `$status` is not MODHOST_OK. */
function check(FFI $modhost, int $status, FFI\CData $error, string $what): void
{
    if ($status === 0) {
        return;
    }
    $message = FFI::isNull($error) ? '?' : FFI::string($error);
    $modhost->modhost_string_free($error);
    throw new RuntimeException("$what: $message (status $status)");
}

/** A string modhost returned, freed. */
function take(FFI $modhost, FFI\CData $string): string
{
    $text = FFI::string($string);
    $modhost->modhost_string_free($string);
    return $text;
}

/**
 * `$value` as JSON. Text from the switch (a channel name, a caller ID) may be Latin-1,
 * which JSON cannot hold: its bytes that are not UTF-8 become U+FFFD rather than fail.
 */
function json(mixed $value): string
{
    return json_encode($value, JSON_INVALID_UTF8_SUBSTITUTE | JSON_THROW_ON_ERROR);
}

/** `$text`, refused if it holds a NUL byte: C would see only what comes before it. */
function c_text(string $text): string
{
    if (str_contains($text, "\0")) {
        throw new InvalidArgumentException('a NUL byte in ' . json($text) . ': C strings end there');
    }
    return $text;
}

/** C strings for `$texts`, kept alive as long as the returned array: [array, pointers]. */
function c_strings(array $texts): array
{
    array_map('c_text', $texts);
    $buffers = [];
    $pointers = FFI::new('const char *[' . count($texts) . ']');
    foreach (array_values($texts) as $i => $text) {
        $buffers[$i] = FFI::new('char[' . (strlen($text) + 1) . ']');
        FFI::memcpy($buffers[$i], $text, strlen($text));
        $pointers[$i] = FFI::cast('const char *', $buffers[$i]);
    }
    return [$buffers, $pointers];
}

/** The switch: the channels modules originated, by name, and their states. */
$channels = [];

/**
 * pbx:telephony/calls@1.0.0, every function told apart by `$function`: returns
 * [status, answer], the answer JSON (or a message when the status is not 0).
 */
function telephony(array &$channels, string $function, array $args, ?string $context): array
{
    switch ($function) {
        case 'current-channel': // option<string>: the string, or null for none
            return [0, json($context)];
        case 'originate': // result<string, string>
            if (!ctype_digit($args['callee'] ?? '')) {
                return [1, 'cannot originate a call to ' . json($args['callee'] ?? null)];
            }
            $name = sprintf('PJSIP/%s-%08x', $args['caller'], count($channels));
            $channels[$name] = 'ringing';
            return [0, json(['ok' => $name])];
        case 'hangup':
        case 'channel-state':
            $name = $args['channel'] ?? '';
            if (!isset($channels[$name])) {
                return [1, 'no channel ' . json($name)];
            }
            if ($function === 'hangup') {
                $channels[$name] = 'down';
                return [0, json(['ok' => null])];
            }
            return [0, json(['ok' => $channels[$name]])];
    }
    return [1, "unknown function $function"];
}

// A callback must return to modhost. What a `try` catches is caught in each; a fatal
// error (memory_limit, max_execution_time) cannot be, and leaves modhost's work on this
// thread unfinished for good (the dispatch the callback served, a change's lock): such a
// process must not use modhost again. A CLI script ends anyway; a php-fpm worker would go
// on to its next request, so it is ended here (its master starts another).
$inCallback = 0;
register_shutdown_function(function () use (&$inCallback, $modhost): void {
    // The log callback is the process's, and outlives this script's closures: a worker's
    // next request would call this one, freed, unless it is unset (here too, for a
    // fatal error that skipped `finally` below).
    $modhost->modhost_set_log(null, null, 0, null);
    if ($inCallback === 0) {
        return;
    }
    if (PHP_SAPI === 'fpm-fcgi' && function_exists('posix_kill')) {
        posix_kill(posix_getpid(), 9); // SIGKILL: pcntl, which names it, may not be loaded
    } elseif (function_exists('apache_child_terminate')) {
        apache_child_terminate(); // mod_php: this child ends after the request
    }
});

// What modhost calls. Its answer must come from the C library's malloc, which PHP's own
// strings do not: modhost_string_new copies it there. Nothing may be thrown out of it
// (PHP refuses to, and ends the request there), so everything that could throw is in `try`.
$callback = function ($user, $function, $args, $context, $result) use ($modhost, &$channels, &$inCallback): int {
    $inCallback++;
    try {
        [$status, $answer] = telephony($channels, $function, json_decode($args, true, 16, JSON_THROW_ON_ERROR), $context);
        $answer = c_text($answer);
    } catch (Throwable $e) {
        [$status, $answer] = [1, str_replace("\0", ' ', $e->getMessage())];
    }
    $result[0] = $modhost->modhost_string_new($answer);
    $inCallback--;
    return $status;
};

// Where modules' log records (and modhost's own) go: FreePBX's log, here stdout. It is
// called on the thread that called modhost, PHP's own; a module's text is its own, so it is
// shown escaped. Like the callback above, nothing may be thrown out of it.
$log = function ($user, int $level, $module, string $message) use (&$inCallback): void {
    $inCallback++;
    try {
        $levels = [1 => 'ERROR', 'WARNING', 'NOTICE', 'DEBUG', 'TRACE'];
        // Control, C1, bidirectional and invisible characters shown as JSON escapes them.
        $escape = fn (string $text): string => preg_replace_callback(
            '/[\x00-\x1f\x7f\x{80}-\x{9f}\x{200b}-\x{200f}\x{2028}-\x{202e}\x{2066}-\x{2069}\x{feff}]/u',
            fn (array $found): string => trim(json_encode($found[0]), '"'),
            $text
        ) ?? '?';
        $from = $module === null ? 'modhost' : $escape($module);
        $shown = $levels[$level] ?? (string) $level;
        echo "[$shown] $from: " . $escape($message) . "\n";
    } catch (Throwable $e) {
        // A record lost is better than a callback that never returns.
    }
    $inCallback--;
};

$root = sys_get_temp_dir() . '/modhost-php-' . bin2hex(random_bytes(6));
$host = $modhost->new('modhost_host *');
$telephony = $modhost->new('modhost_capability *');
$error = $modhost->new('char *');
// Set, not exited with, inside `try`: `exit` there would skip `finally`, leaving the host
// open and its root behind.
$status = 0;
try {
    check($modhost, $modhost->modhost_set_log($log, null, $const['MODHOST_LOG_INFO'], FFI::addr($error)), $error, 'log');
    // The API modules may import, granted by the administrator (MODHOST_GRANT below).
    check($modhost, $modhost->modhost_capability_new('pbx:telephony', true, FFI::addr($telephony), FFI::addr($error)), $error, 'capability');
    [$keepFunctions, $functions] = c_strings(['originate', 'hangup', 'channel-state', 'current-channel']);
    check($modhost, $modhost->modhost_capability_add(
        $telephony, 'pbx:telephony/calls@1.0.0', $functions, 4, $callback, null, FFI::addr($error)
    ), $error, 'capability');
    $capabilities = $modhost->new('const modhost_capability *[1]');
    $capabilities[0] = $telephony;
    check($modhost, $modhost->modhost_open($root, null, $capabilities, 1, FFI::addr($host), FFI::addr($error)), $error, 'open');

    [$keep, $names] = c_strings(['core', 'voicemail', 'phonebook', 'callback']);
    $changes = $modhost->new('char *');
    check($modhost, $modhost->modhost_install(
        $host, $packages, $names, 4, $const['MODHOST_GRANT'], FFI::addr($changes), FFI::addr($error)
    ), $error, 'install');
    foreach (json_decode(take($modhost, $changes), true) as $change) {
        echo "{$change['action']} {$change['rawname']} {$change['to']}\n";
    }

    // Routing must be quick and must not go on past a failure.
    check($modhost, $modhost->modhost_declare(
        $host, 'call.route', $const['MODHOST_SHAPE_PIPELINE'], $const['MODHOST_ON_ERROR_STOP'], 250, FFI::addr($error)
    ), $error, 'declare');

    $call = json(['from' => '2025550100', 'to' => '100', 'caller_name' => null, 'action' => null]);
    $result = $modhost->new('char *');
    check($modhost, $modhost->modhost_dispatch($host, 'call.route', c_text($call), null, null, FFI::addr($result), FFI::addr($error)), $error, 'dispatch');
    $dispatch = json_decode(take($modhost, $result), true);
    if (isset($dispatch['stopped_by'])) {
        echo "call rejected: `{$dispatch['stopped_by']}` failed\n";
        $status = 1;
    } else {
        $routed = json_decode($dispatch['output'], true);
        $via = implode(' -> ', array_map(fn ($c) => "{$c['rawname']}@{$c['priority']}", $dispatch['calls']));
        echo "call from {$routed['caller_name']} <{$routed['from']}> to {$routed['to']}: {$routed['action']}   (via $via)\n";
    }

    // The caller left a message: the modules hear it on the caller's channel.
    $left = json(['mailbox' => '101', 'from' => '2025550101']);
    check($modhost, $modhost->modhost_dispatch(
        $host, 'voicemail.left', $left, c_text($channel), null, FFI::addr($result), FFI::addr($error)
    ), $error, 'dispatch');
    echo 'voicemail.left: ' . take($modhost, $result) . "\n";
    foreach ($channels as $name => $state) {
        echo "channel $name: $state\n";
    }
} catch (RuntimeException | InvalidArgumentException $e) {
    fwrite(STDERR, $e->getMessage() . "\n");
    $status = 1;
} finally {
    $modhost->modhost_close($host);
    $modhost->modhost_capability_free($telephony);
    // Unset now, not only at shutdown: records of what runs after would reach it.
    $modhost->modhost_set_log(null, null, 0, null);
    if (is_dir($root)) {
        $files = new RecursiveIteratorIterator(
            new RecursiveDirectoryIterator($root, FilesystemIterator::SKIP_DOTS),
            RecursiveIteratorIterator::CHILD_FIRST
        );
        foreach ($files as $file) {
            $file->isDir() && !$file->isLink() ? rmdir($file->getPathname()) : unlink($file->getPathname());
        }
        rmdir($root);
    }
}
exit($status);
