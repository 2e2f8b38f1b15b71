"""The sample's tables: a subset of ITFlow's schema with its real names where known.

One ``Table`` per table gives both its ``CREATE TABLE`` and the column order
that row tuples follow. All tables are InnoDB, utf8mb4 / utf8mb4_general_ci,
with ``ON DELETE CASCADE`` foreign keys to their client (or parent).
"""

from __future__ import annotations

from dataclasses import dataclass

ID = "int(11) NOT NULL AUTO_INCREMENT"
REF = "int(11) NOT NULL"
OPT_REF = "int(11) DEFAULT NULL"
ZERO_REF = "int(11) NOT NULL DEFAULT 0"
NAME = "varchar(200) NOT NULL"
OPT_NAME = "varchar(200) DEFAULT NULL"
LONG_NAME = "varchar(500) DEFAULT NULL"
TEXT = "text DEFAULT NULL"
LONGTEXT = "longtext NOT NULL"
WHEN = "datetime NOT NULL"
OPT_WHEN = "datetime DEFAULT NULL"
FLAG = "tinyint(1) NOT NULL DEFAULT 0"
OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"


@dataclass(frozen=True)
class Table:
    """A table: columns (the first is the primary key) and extra constraints."""

    name: str
    columns: tuple[tuple[str, str], ...]
    constraints: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.columns[0][0]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def create_sql(self) -> str:
        lines = [f"  `{name}` {kind}" for name, kind in self.columns]
        lines.append(f"  PRIMARY KEY (`{self.key}`)")
        lines += [f"  {constraint}" for constraint in self.constraints]
        return f"CREATE TABLE `{self.name}` (\n" + ",\n".join(lines) + f"\n) {OPTIONS};\n"


def fk(column: str, parent: str, key: str, on_delete: str = "CASCADE") -> str:
    return (
        f"CONSTRAINT `fk_{column}` FOREIGN KEY (`{column}`) "
        f"REFERENCES `{parent}` (`{key}`) ON DELETE {on_delete}"
    )


def _client_fk(prefix: str) -> str:
    return fk(f"{prefix}_client_id", "clients", "client_id")


COMPANIES = Table("companies", (
    ("company_id", ID), ("company_name", NAME), ("company_address", OPT_NAME),
    ("company_city", OPT_NAME), ("company_country", OPT_NAME), ("company_phone", OPT_NAME),
    ("company_email", OPT_NAME), ("company_website", OPT_NAME), ("company_logo", OPT_NAME),
    ("company_currency", "varchar(200) NOT NULL"), ("company_created_at", WHEN),
    ("company_updated_at", OPT_WHEN),
))
SETTINGS = Table("settings", (
    ("company_id", REF), ("config_current_database_version", "varchar(10) NOT NULL"),
    ("config_smtp_host", OPT_NAME), ("config_smtp_port", "int(5) DEFAULT NULL"),
    ("config_smtp_username", OPT_NAME), ("config_smtp_password", OPT_NAME),
    ("config_mail_from_email", OPT_NAME), ("config_imap_host", OPT_NAME),
    ("config_imap_username", OPT_NAME), ("config_imap_password", OPT_NAME),
    ("config_mail_oauth_client_secret", OPT_NAME), ("config_stripe_secret", OPT_NAME),
    ("config_ai_api_key", OPT_NAME), ("config_timezone", "varchar(200) NOT NULL"),
    ("config_enable_cron", FLAG),
), (fk("company_id", "companies", "company_id"),))
USERS = Table("users", (
    ("user_id", ID), ("user_name", NAME), ("user_email", NAME),
    ("user_password", NAME), ("user_type", "tinyint(1) NOT NULL DEFAULT 1"),
    ("user_status", "tinyint(1) NOT NULL DEFAULT 1"), ("user_token", OPT_NAME),
    ("user_avatar", OPT_NAME), ("user_specific_encryption_ciphertext", OPT_NAME),
    ("user_created_at", WHEN), ("user_updated_at", OPT_WHEN), ("user_archived_at", OPT_WHEN),
), ("UNIQUE KEY `user_email` (`user_email`)",))
CLIENTS = Table("clients", (
    ("client_id", ID), ("client_name", NAME), ("client_type", OPT_NAME),
    ("client_website", OPT_NAME), ("client_referral", OPT_NAME),
    ("client_rate", "decimal(15,2) DEFAULT NULL"), ("client_currency_code", NAME),
    ("client_net_terms", "int(10) NOT NULL"), ("client_tax_id_number", OPT_NAME),
    ("client_abbreviation", "varchar(10) DEFAULT NULL"), ("client_lead", FLAG),
    ("client_notes", TEXT), ("client_created_at", WHEN), ("client_updated_at", OPT_WHEN),
    ("client_archived_at", OPT_WHEN), ("client_accessed_at", OPT_WHEN),
))
CONTACTS = Table("contacts", (
    ("contact_id", ID), ("contact_name", NAME), ("contact_title", OPT_NAME),
    ("contact_email", OPT_NAME), ("contact_phone", OPT_NAME), ("contact_mobile", OPT_NAME),
    ("contact_primary", FLAG), ("contact_notes", TEXT), ("contact_created_at", WHEN),
    ("contact_updated_at", OPT_WHEN), ("contact_archived_at", OPT_WHEN),
    ("contact_user_id", OPT_REF), ("contact_client_id", REF),
), (fk("contact_user_id", "users", "user_id", "SET NULL"), _client_fk("contact")))
CREDENTIALS = Table("credentials", (
    ("credential_id", ID), ("credential_name", NAME), ("credential_description", OPT_NAME),
    ("credential_uri", LONG_NAME), ("credential_username", LONG_NAME),
    ("credential_password", LONG_NAME), ("credential_otp_secret", OPT_NAME),
    ("credential_note", TEXT), ("credential_important", FLAG),
    ("credential_created_at", WHEN), ("credential_updated_at", OPT_WHEN),
    ("credential_archived_at", OPT_WHEN), ("credential_accessed_at", OPT_WHEN),
    ("credential_password_changed_at", OPT_WHEN), ("credential_contact_id", OPT_REF),
    ("credential_client_id", REF),
), (fk("credential_contact_id", "contacts", "contact_id", "SET NULL"), _client_fk("credential")))
LEGACY_LOGINS = Table("legacy_logins", (
    ("login_id", ID), ("login_name", NAME), ("login_username", OPT_NAME),
    ("login_password", "varbinary(200) DEFAULT NULL"), ("login_client_id", REF),
), (_client_fk("login"),))
FILES = Table("files", (
    ("file_id", ID), ("file_reference_name", OPT_NAME), ("file_name", NAME),
    ("file_description", TEXT), ("file_ext", OPT_NAME), ("file_mime_type", OPT_NAME),
    ("file_size", "bigint(20) unsigned NOT NULL DEFAULT 0"), ("file_has_thumbnail", FLAG),
    ("file_created_at", WHEN), ("file_updated_at", OPT_WHEN), ("file_archived_at", OPT_WHEN),
    ("file_accessed_at", OPT_WHEN), ("file_created_by", OPT_REF), ("file_client_id", REF),
), (_client_fk("file"),))
TICKETS = Table("tickets", (
    ("ticket_id", ID), ("ticket_prefix", OPT_NAME), ("ticket_number", REF),
    ("ticket_source", OPT_NAME), ("ticket_category", OPT_REF), ("ticket_subject", NAME),
    ("ticket_details", LONGTEXT), ("ticket_priority", OPT_NAME), ("ticket_status", REF),
    ("ticket_billable", FLAG), ("ticket_onsite", FLAG),
    ("ticket_vendor_ticket_number", OPT_NAME), ("ticket_feedback", OPT_NAME),
    ("ticket_created_at", WHEN), ("ticket_updated_at", OPT_WHEN),
    ("ticket_resolved_at", OPT_WHEN), ("ticket_closed_at", OPT_WHEN),
    ("ticket_created_by", REF), ("ticket_assigned_to", OPT_REF),
    ("ticket_contact_id", OPT_REF), ("ticket_client_id", REF),
), (fk("ticket_contact_id", "contacts", "contact_id", "SET NULL"), _client_fk("ticket")))
TICKET_REPLIES = Table("ticket_replies", (
    ("ticket_reply_id", ID), ("ticket_reply", LONGTEXT),
    ("ticket_reply_type", "varchar(10) NOT NULL"),
    ("ticket_reply_time_worked", "time DEFAULT NULL"),
    ("ticket_reply_created_at", WHEN), ("ticket_reply_updated_at", OPT_WHEN),
    ("ticket_reply_archived_at", OPT_WHEN), ("ticket_reply_by", REF),
    ("ticket_reply_ticket_id", REF),
), (fk("ticket_reply_ticket_id", "tickets", "ticket_id"),))
DOCUMENTS = Table("documents", (
    ("document_id", ID), ("document_name", NAME), ("document_description", TEXT),
    ("document_content", LONGTEXT), ("document_content_raw", LONGTEXT),
    ("document_important", FLAG), ("document_created_at", WHEN),
    ("document_updated_at", OPT_WHEN), ("document_archived_at", OPT_WHEN),
    ("document_created_by", OPT_REF), ("document_updated_by", OPT_REF),
    ("document_client_id", REF),
), (_client_fk("document"),))
LOGS = Table("logs", (
    ("log_id", ID), ("log_type", NAME), ("log_action", NAME), ("log_description", "text NOT NULL"),
    ("log_ip", OPT_NAME), ("log_user_agent", "varchar(250) DEFAULT NULL"),
    ("log_created_at", WHEN), ("log_client_id", ZERO_REF), ("log_user_id", ZERO_REF),
    ("log_entity_id", ZERO_REF),
))
APP_LOGS = Table("app_logs", (
    ("app_log_id", ID), ("app_log_category", OPT_NAME),
    ("app_log_type", "enum('info','warning','error','debug') NOT NULL DEFAULT 'info'"),
    ("app_log_details", "varchar(1000) DEFAULT NULL"), ("app_log_created_at", WHEN),
))
HISTORY = Table("history", (
    ("history_id", ID), ("history_status", NAME), ("history_description", "text NOT NULL"),
    ("history_created_at", WHEN), ("history_invoice_id", ZERO_REF),
    ("history_recurring_id", ZERO_REF), ("history_quote_id", ZERO_REF),
))
API_KEYS = Table("api_keys", (
    ("api_key_id", ID), ("api_key_name", "varchar(255) NOT NULL"),
    ("api_key_secret", "varchar(255) NOT NULL"), ("api_key_decrypt_hash", NAME),
    ("api_key_created_at", WHEN), ("api_key_expire", "date NOT NULL"),
    ("api_key_client_id", ZERO_REF),
))

TABLES = (
    COMPANIES, SETTINGS, USERS, CLIENTS, CONTACTS, CREDENTIALS, LEGACY_LOGINS, FILES,
    TICKETS, TICKET_REPLIES, DOCUMENTS, LOGS, APP_LOGS, HISTORY, API_KEYS,
)
