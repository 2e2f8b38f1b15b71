<?php
// Writes the backup forms ITFlow has written over the years, the way ITFlow writes them:
// PHP's mysqli reading the site's database with config.php's credentials, PHP's ZipArchive
// (libzip) writing the zips, WinZip AES-256 per entry for 26.08. For flowsafe's tests and
// demo; the formats are described in flowsafe/archive/__init__.py.
//
// php -d mysqli.default_socket=SOCK itflow_backup.php SITE FORM OUT_DIR
//   FORM: full | database | master_key   ITFlow 26.08 archives (master key read on stdin)
//         plain                          the 25.11-26.07 plain zip download
//         sql2025                        the April-May 2025 Y-m-d_H-i-s_backup.sql
//         legacy                         the 25.03-and-older YYYY-MM-DD_ITFlow_backup.sql
// Prints the path of the file written.

if ($argc !== 4) {
    fwrite(STDERR, "usage: itflow_backup.php SITE FORM OUT_DIR\n");
    exit(2);
}
[, $site, $form, $out_dir] = $argv;
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
require $site . "/config.php";
$db = mysqli_connect($dbhost, $dbusername, $dbpassword, $database);
mysqli_set_charset($db, "utf8mb4");

function token(int $length): string
{
    return substr(rtrim(strtr(base64_encode(random_bytes($length)), '+/', '-_'), '='), 0, $length);
}

function table_names(mysqli $db): array
{
    $tables = [];
    $views = [];
    $found = mysqli_query($db, "SHOW FULL TABLES");
    while ($row = mysqli_fetch_row($found)) {
        if ($row[1] === 'VIEW') {
            $views[] = $row[0];
        } else {
            $tables[] = $row[0];
        }
    }
    return [$tables, $views];
}

function create_statement(mysqli $db, string $table): string
{
    return mysqli_fetch_row(mysqli_query($db, "SHOW CREATE TABLE `$table`"))[1];
}

// The escaped dump of 25.05 and later: every value quoted after real_escape_string.
function escaped_dump(mysqli $db, string $path, array $head, array $tail, bool $headings): void
{
    $out = fopen($path, 'wb');
    foreach ($head as $line) {
        fwrite($out, "$line\n");
    }
    [$tables, $views] = table_names($db);
    foreach ($tables as $table) {
        fwrite($out, $headings ? "-- Table `$table`\n" : "-- Table structure for `$table`\n");
        fwrite($out, "DROP TABLE IF EXISTS `$table`;\n" . create_statement($db, $table) . ";\n\n");
        $rows = mysqli_query($db, "SELECT * FROM `$table`", MYSQLI_USE_RESULT);
        while ($row = mysqli_fetch_assoc($rows)) {
            $columns = implode(", ", array_map(fn($c) => "`$c`", array_keys($row)));
            $values = implode(", ", array_map(
                fn($v) => $v === null ? "NULL" : "'" . mysqli_real_escape_string($db, $v) . "'",
                array_values($row)
            ));
            fwrite($out, "INSERT INTO `$table` ($columns) VALUES ($values);\n");
        }
        mysqli_free_result($rows);
        fwrite($out, "\n");
    }
    foreach ($views as $view) {
        $text = mysqli_fetch_assoc(mysqli_query($db, "SHOW CREATE VIEW `$view`"))['Create View'];
        fwrite($out, "-- View `$view`\nDROP VIEW IF EXISTS `$view`;\n$text;\n\n");
    }
    foreach ($tail as $line) {
        fwrite($out, "$line\n");
    }
    fclose($out);
}

// What 25.03 and older wrote: no escaping at all, NULL as "".
function legacy_dump(mysqli $db, string $path): void
{
    $out = fopen($path, 'wb');
    [$tables] = table_names($db);
    foreach ($tables as $table) {
        fwrite($out, "\n\n" . create_statement($db, $table) . ";\n\n");
        $rows = mysqli_query($db, "SELECT * FROM $table");
        while ($row = mysqli_fetch_row($rows)) {
            $values = array_map(fn($v) => '"' . ($v ?? '') . '"', $row);
            fwrite($out, "INSERT INTO $table VALUES(" . implode(",", $values) . ");\n");
        }
        fwrite($out, "\n");
    }
    fclose($out);
}

// uploads/ as ITFlow zips it: regular files only, names relative to uploads/, symlinks
// and the backup folder left out.
function zip_uploads(string $uploads, string $path): void
{
    $zip = new ZipArchive();
    $zip->open($path, ZipArchive::CREATE | ZipArchive::OVERWRITE);
    $root = realpath($uploads);
    $skip = $root . "/backups/";
    $walk = new RecursiveIteratorIterator(
        new RecursiveDirectoryIterator($root, FilesystemIterator::SKIP_DOTS),
        RecursiveIteratorIterator::LEAVES_ONLY
    );
    foreach ($walk as $file) {
        if ($file->isDir() || $file->isLink()) {
            continue;
        }
        $real = $file->getRealPath();
        if (str_starts_with($real, $skip)) {
            continue;
        }
        $zip->addFile($real, substr($real, strlen($root) + 1));
    }
    $zip->close();
}

function version_text(mysqli $db, array $fields, array $entries): string
{
    $schema = mysqli_fetch_row(mysqli_query(
        $db,
        "SELECT config_current_database_version FROM settings LIMIT 1"
    ))[0] ?? 'Unknown';
    $text = "ITFlow Backup Metadata\n-----------------------------\n";
    foreach ($fields + ["Database Version" => $schema] as $name => $value) {
        $text .= "$name: $value\n";
    }
    $text .= "Checksums (SHA256):\n";
    foreach ($entries as $name => $path) {
        $text .= "  $name: " . hash_file('sha256', $path) . "\n";
    }
    return $text;
}

function backup_key(string $site): string
{
    global $config_backup_key;
    if (!empty($config_backup_key)) {
        return $config_backup_key;
    }
    $config_backup_key = token(32);
    file_put_contents(
        "$site/config.php",
        "\n// Backup encryption key - keep a copy somewhere safe\n\$config_backup_key = '$config_backup_key';\n",
        FILE_APPEND | LOCK_EX
    );
    return $config_backup_key;
}

function seal(array $entries, string $path, ?string $key): void
{
    $zip = new ZipArchive();
    $zip->open($path, ZipArchive::CREATE | ZipArchive::OVERWRITE);
    if ($key !== null) {
        $zip->setPassword($key);
    }
    foreach ($entries as $name => $file) {
        $zip->addFile($file, $name);
        if ($key !== null && !$zip->setEncryptionName($name, ZipArchive::EM_AES_256)) {
            fwrite(STDERR, "this libzip cannot write AES-256\n");
            exit(1);
        }
    }
    $zip->close();
    chmod($path, 0600);
}

$work = sys_get_temp_dir() . "/itflow_backup_" . bin2hex(random_bytes(6));
mkdir($work, 0700);
$now = time();
$escaped_head = ["SET NAMES 'utf8mb4';", "SET FOREIGN_KEY_CHECKS = 0;", "SET UNIQUE_CHECKS = 0;", ""];
$entries = [];

if ($form === 'legacy') {
    $path = "$out_dir/" . date('Y-m-d', $now) . "_ITFlow_backup.sql";
    legacy_dump($db, $path);
} elseif ($form === 'sql2025') {
    $path = "$out_dir/" . date('Y-m-d_H-i-s', $now) . "_backup.sql";
    escaped_dump($db, $path, ["-- UTF-8 + Foreign Key Safe Dump", ...$escaped_head],
                 ["SET FOREIGN_KEY_CHECKS = 1;"], false);
} elseif ($form === 'plain') {
    $path = "$out_dir/itflow_" . date('YmdHis', $now) . ".zip";
    escaped_dump($db, "$work/db.sql", ["-- UTF-8 + Foreign Key Safe Dump", ...$escaped_head,
                 "SET AUTOCOMMIT = 0;", ""], ["SET FOREIGN_KEY_CHECKS = 1;", "SET UNIQUE_CHECKS = 1;", "COMMIT;"], false);
    zip_uploads("$site/uploads", "$work/uploads.zip");
    $entries = ["db.sql" => "$work/db.sql", "uploads.zip" => "$work/uploads.zip"];
    file_put_contents("$work/version.txt", version_text($db, [
        "Generated" => date('Y-m-d H:i:s', $now), "Backup File" => basename($path),
        "Generated By" => "Admin", "Host" => gethostname(), "Git Branch" => "master",
        "Git Commit" => "N/A", "ITFlow Version" => "26.07",
    ], $entries));
    seal($entries + ["version.txt" => "$work/version.txt"], $path, null);
} else {
    $key = backup_key($site);
    $path = "$out_dir/itflow_" . date('Ymd-His', $now) . "_{$form}_" . token(32) . ".zip";
    if ($form === 'master_key') {
        $master = trim(fgets(STDIN));
        file_put_contents("$work/master_key.txt", "ITFlow master encryption key\n"
            . "============================\n\n$master\n\n"
            . "This key decrypts every credential stored in this ITFlow install.\n"
            . "It is only needed if every user password is lost.\n"
            . "Exported " . date('Y-m-d H:i:s', $now) . " by Admin\n");
        $entries = ["master_key.txt" => "$work/master_key.txt"];
    } else {
        escaped_dump($db, "$work/db.sql", ["-- ITFlow database backup",
                     "-- Generated " . date('Y-m-d H:i:s', $now), ...$escaped_head],
                     ["SET FOREIGN_KEY_CHECKS = 1;", "SET UNIQUE_CHECKS = 1;"], true);
        $entries = ["db.sql" => "$work/db.sql"];
        if ($form === 'full') {
            zip_uploads("$site/uploads", "$work/uploads.zip");
            $entries["uploads.zip"] = "$work/uploads.zip";
        }
    }
    $by = $form === 'master_key' ? "Admin" : "Cron";
    file_put_contents("$work/version.txt", version_text($db, [
        "Backup Type" => $form, "Generated" => date('Y-m-d H:i:s', $now),
        "Generated By" => $by, "Source" => $form === 'master_key' ? "Manual" : "Cron",
        "Host" => gethostname(), "Git Branch" => "master", "Git Commit" => "N/A",
        "ITFlow Version" => $form === 'master_key' ? "26.08.2" : "Unknown",
    ], $entries));
    seal($entries + ["version.txt" => "$work/version.txt"], $path, $key);
}
array_map('unlink', glob("$work/*"));
rmdir($work);
echo $path, "\n";
