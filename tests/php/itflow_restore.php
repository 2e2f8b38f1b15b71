<?php
// What ITFlow 26.08's own restore (scripts/restore_cli.php, backupRestoreArchive) does with an
// archive, for the export tests: PHP's ZipArchive opens it with $config_backup_key from the
// site's config.php, the SHA-256 checksums of version.txt are checked, every table of the
// site's database is dropped, db.sql is imported one statement at a time the way ITFlow
// splits it (lines appended until one ends with the delimiter; blank, "--" and "#" lines
// skipped; DELIMITER honoured; one mysqli_query per statement), then uploads/ is emptied
// (its backups/ kept) and uploads.zip extracted into it. Entry names are refused as ITFlow
// refuses them. Prints one line per step; exit 1 with the reason on failure.
//
// php -d mysqli.default_socket=SOCK itflow_restore.php SITE ARCHIVE

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
[, $site, $archive] = $argv;
require "$site/config.php";

function fail(string $why): void
{
    fwrite(STDERR, "$why\n");
    exit(1);
}

function safe_name(string $name): bool
{
    return $name !== '' && strpos($name, '..') === false
        && !preg_match('#^(?:/|\\\\|[a-zA-Z]:[\\\\/])#', $name);
}

function names(ZipArchive $zip): array
{
    $names = [];
    for ($i = 0; $i < $zip->numFiles; $i++) {
        $names[] = $zip->getNameIndex($i);
    }
    return $names;
}

function import_sql(mysqli $db, string $path): void
{
    $in = fopen($path, 'r');
    $delimiter = ';';
    $statement = '';
    $number = 0;
    while (($line = fgets($in)) !== false) {
        $number++;
        $bare = trim($line);
        if ($bare === '' || str_starts_with($bare, '--') || str_starts_with($bare, '#')) {
            continue;
        }
        if (preg_match('/^DELIMITER\s+(.+)$/i', $bare, $found)) {
            $delimiter = trim($found[1]);
            continue;
        }
        $statement .= $line;
        $end = rtrim($statement);
        if (substr($end, -strlen($delimiter)) !== $delimiter) {
            continue;
        }
        $sql = substr($end, 0, -strlen($delimiter));
        $statement = '';
        if (trim($sql) === '') {
            continue;
        }
        try {
            mysqli_query($db, $sql);
        } catch (Throwable $error) {
            fail("SQL error near line $number: " . $error->getMessage());
        }
    }
    if (trim($statement) !== '') {
        fail("db.sql ends in the middle of a statement");
    }
}

function empty_folder(string $folder, string $keep): void
{
    $items = new RecursiveIteratorIterator(
        new RecursiveDirectoryIterator($folder, FilesystemIterator::SKIP_DOTS),
        RecursiveIteratorIterator::CHILD_FIRST
    );
    foreach ($items as $item) {
        $path = $item->getPathname();
        if ($path === $keep || str_starts_with($path, "$keep/")) {
            continue;
        }
        $item->isDir() ? rmdir($path) : unlink($path);
    }
}

$zip = new ZipArchive();
if ($zip->open($archive) !== true) {
    fail("not a readable zip");
}
$entries = names($zip);
if (!in_array('version.txt', $entries, true) || !in_array('db.sql', $entries, true)) {
    fail("not an ITFlow backup");
}
foreach ($entries as $name) {
    if (!safe_name($name)) {
        fail("unsafe path: $name");
    }
}
$zip->setPassword($config_backup_key);
$version = $zip->getFromName('version.txt');
if ($version === false) {
    fail("cannot read version.txt: " . $zip->getStatusString());
}
preg_match('/^Backup Type:\s*(.+)$/m', $version, $type);
echo "type: ", trim($type[1] ?? 'full'), "\n";

$work = sys_get_temp_dir() . "/itflow_restore_" . bin2hex(random_bytes(6));
mkdir($work, 0700);
if (!$zip->extractTo($work)) {
    fail("cannot extract: " . $zip->getStatusString());
}
$zip->close();
preg_match_all('/^  ([^:]+): ([0-9a-f]{64})$/m', $version, $sums, PREG_SET_ORDER);
foreach ($sums as [, $name, $sum]) {
    if (hash_file('sha256', "$work/$name") !== $sum) {
        fail("checksum of $name differs");
    }
}
echo "checksums: ", count($sums), " ok\n";

$db = mysqli_connect($dbhost, $dbusername, $dbpassword, $database);
mysqli_query($db, "SET FOREIGN_KEY_CHECKS = 0");
foreach (mysqli_fetch_all(mysqli_query($db, "SHOW TABLES")) as [$table]) {
    mysqli_query($db, "DROP TABLE IF EXISTS `$table`");
}
mysqli_query($db, "SET FOREIGN_KEY_CHECKS = 1");
import_sql($db, "$work/db.sql");
echo "database: imported\n";

if (is_file("$work/uploads.zip")) {
    $uploads = new ZipArchive();
    $uploads->open("$work/uploads.zip");
    foreach (names($uploads) as $name) {
        if (!safe_name($name)) {
            fail("uploads.zip holds an unsafe path: $name");
        }
    }
    empty_folder("$site/uploads", "$site/uploads/backups");
    if (!$uploads->extractTo("$site/uploads")) {
        fail("cannot extract uploads.zip");
    }
    echo "uploads: ", $uploads->numFiles, " files\n";
}
array_map('unlink', glob("$work/*"));
rmdir($work);
