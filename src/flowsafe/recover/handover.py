"""What a recover leaves to do by hand, with the site's real values: a web server
virtual host (nginx and Apache samples), ITFlow's cron lines as the web user, and
flowsafe's own schedule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flowsafe.itflow.cron import cron_lines

CRON_FILE = "/etc/cron.d/itflow"


@dataclass(frozen=True)
class Step:
    """One thing left to do: what, and the lines to use."""

    title: str
    lines: list[str]


def _nginx(root: Path, host: str) -> list[str]:
    return [
        "server {",
        "    listen 80;",
        f"    server_name {host};",
        f"    root {root};",
        "    index index.php;",
        "    location / { try_files $uri $uri/ =404; }",
        "    location ^~ /uploads/ { location ~ \\.php$ { deny all; } }",
        "    location ~ /\\.(?!well-known) { deny all; }",
        "    location ~ \\.php$ {",
        "        include snippets/fastcgi-php.conf;",
        "        fastcgi_pass unix:/run/php/php-fpm.sock;",
        "    }",
        "}",
    ]


def _apache(root: Path, host: str) -> list[str]:
    return [
        "<VirtualHost *:80>",
        f"    ServerName {host}",
        f"    DocumentRoot {root}",
        f"    <Directory {root}>",
        "        AllowOverride All",
        "        Require all granted",
        "    </Directory>",
        "</VirtualHost>",
    ]


def left_to_do(root: Path, host: str | None, web_user: str) -> list[Step]:
    """The steps after a recover of the ITFlow at ``root`` served as ``host``."""
    name = host.split("/", 1)[0] if host else "itflow.example.com"
    crons = cron_lines(root, web_user)
    return [
        Step(f"nginx (apt-get install nginx php-fpm): /etc/nginx/sites-available/{name}, "
             "linked into sites-enabled, then `systemctl reload nginx`", _nginx(root, name)),
        Step(f"or Apache (apt-get install apache2 libapache2-mod-php): "
             f"/etc/apache2/sites-available/{name}.conf, then `a2ensite {name}` and "
             "`systemctl reload apache2`", _apache(root, name)),
        Step("HTTPS: `certbot --nginx -d NAME` or `certbot --apache -d NAME` (ITFlow refuses "
             "plain HTTP while $config_https_only is TRUE)".replace("NAME", name), []),
        Step(f"ITFlow's cron lines, as {web_user}: put them in {CRON_FILE}", crons)
        if crons else Step("ITFlow's cron: no cron script found under cron/ or scripts/; "
                           "see ITFlow's documentation for this version", []),
        Step("flowsafe's own nightly backup, prune and weekly drill", [
            "flowsafe schedule install"]),
    ]
