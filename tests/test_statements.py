"""The SQL statement splitter and the statement kinds a dump file may hold (pure, no server)."""

from __future__ import annotations

import pytest

from flowsafe.mariadb import statements
from flowsafe.mariadb.indexes import defer_indexes
from flowsafe.mariadb.statements import Statement, UnsafeStatementError, split_text


def codes(text: str) -> list[str]:
    return [s.code.decode() for s in split_text(text.encode())]


def test_quotes_comments_and_delimiters() -> None:
    text = (
        "SET a = 'x;y', b = \"q\\\";\";\n"
        "-- a comment; with a semicolon\n"
        "# another one;\n"
        "INSERT INTO `t;` VALUES ('it''s; fine', 'back\\\\', \"--not a comment\");\n"
        "SELECT 5--1;\n"
        "/* plain; comment */ SELECT 1;\n"
        "DELIMITER ;;\n"
        "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END;;\n"
        "DELIMITER ;\n"
        "SELECT `a``;b` FROM t;\n"
    )
    assert codes(text) == [
        "SET a = 'x;y', b = \"q\\\";\"",
        "INSERT INTO `t;` VALUES ('it''s; fine', 'back\\\\', \"--not a comment\")",
        "SELECT 5--1",
        "SELECT 1",
        "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
        "SELECT `a``;b` FROM t",
    ]


def test_executable_comments_by_version() -> None:
    text = ("/*!40101 SET NAMES utf8mb4 */;\n/*M!999999\\- enable the sandbox mode */\n"
            "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr "
            "BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1 */;\n/*!999999 DROP TABLE x */;\n")
    found = codes(text)
    assert found[0] == "SET NAMES utf8mb4"
    assert found[1].split() == ["CREATE", "DEFINER=`root`@`localhost`", "TRIGGER", "tr",
                                "BEFORE", "INSERT", "ON", "t", "FOR", "EACH", "ROW", "SET",
                                "NEW.a", "=", "1"]
    assert len(found) == 2  # the 99.99.99 comment runs on no server: it is a comment


def test_a_marker_inside_a_procedure_is_not_between_statements() -> None:
    splitter = statements.Splitter()
    lines = [b"DELIMITER ;;\n", b"CREATE PROCEDURE p()\n", b"BEGIN\n", b"--\n",
             b"-- Table structure for table `evil`\n", b"DROP DATABASE other;\n",
             b"END;;\n"]
    between = []
    for line in lines:
        between.append(splitter.between)
        splitter.feed(line)
    assert between == [True, True, False, False, False, False, False]
    assert splitter.between


def test_unclosed_string_is_an_error() -> None:
    with pytest.raises(UnsafeStatementError, match="unclosed string"):
        split_text(b"INSERT INTO t VALUES ('no end);\n")


def stmt(code: str) -> Statement:
    return Statement(code.encode(), code.encode(), 7)


@pytest.mark.parametrize("code", [
    "INSERT INTO `t` VALUES (1)",
    "INSERT INTO `t` (`a`, b) VALUES (1, 2)",
    "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB "
    "COMMENT='like to select'",
    "DROP TABLE IF EXISTS `t`",
    "ALTER TABLE `t` DISABLE KEYS",
    "SET @saved_cs_client = @@character_set_client",
    "SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0",
    "SET sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'",
    "SET @old=@@session.system_versioning_insert_history, "
    "@@session.system_versioning_insert_history=1",
    "CREATE DEFINER=`root`@`localhost` TRIGGER tr BEFORE INSERT ON `t` FOR EACH ROW SET NEW.a=1",
])
def test_table_file_kinds_allowed(code: str) -> None:
    statements.classify_table_statement(stmt(code), "t")


@pytest.mark.parametrize(("code", "why"), [
    ("USE other", "not a statement a table's dump holds"),
    ("GRANT ALL ON *.* TO z", "not a statement"),
    ("CREATE USER z IDENTIFIED BY 'x'", "not a statement"),
    ("DROP DATABASE other", "not a statement"),
    ("SET PASSWORD FOR root = PASSWORD('x')", "sets something a dump never sets"),
    ("SET GLOBAL general_log = 1", "sets something"),
    ("SET STATEMENT max_statement_time=1 FOR DROP DATABASE x", "sets something"),
    ("SET @a = (SELECT password FROM mysql.user)", "sets something"),
    ("INSTALL PLUGIN x SONAME 'x.so'", "not a statement"),
    ("LOAD DATA INFILE '/etc/passwd' INTO TABLE t", "not a statement"),
    ("SELECT * FROM t INTO OUTFILE '/tmp/x'", "not a statement"),
    ("INSERT INTO `other`.`t` VALUES (1)", "another database"),
    ("INSERT INTO `u` VALUES (1)", "names table 'u', not 't'"),
    ("CREATE TABLE `t` (id int) DATA DIRECTORY='/tmp'", "outside the database"),
    ("CREATE TABLE `t` (id int) ENGINE=CONNECT", "ENGINE=CONNECT"),
    ("CREATE TABLE `t` SELECT * FROM mysql.user", "copies rows"),
    ("CREATE TRIGGER tr BEFORE INSERT ON `other`.`t` FOR EACH ROW SET @a=1",
     "another database"),
    ("CREATE TRIGGER tr BEFORE INSERT ON `u` FOR EACH ROW SET @a=1", "names table 'u'"),
    ("\\! id", "not a statement"),
])
def test_table_file_kinds_refused(code: str, why: str) -> None:
    with pytest.raises(UnsafeStatementError, match=why) as caught:
        statements.classify_table_statement(stmt(code), "t")
    assert "line 7" in str(caught.value)


def test_messages_never_show_values() -> None:
    with pytest.raises(UnsafeStatementError) as caught:
        statements.classify_table_statement(stmt("INSERT INTO `u` VALUES ('hunter2')"), "t")
    assert "hunter2" not in str(caught.value)


def test_routines_file_kinds() -> None:
    for code in ("CREATE DEFINER=`x`@`%` PROCEDURE `p`() SELECT 1",
                 "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER "
                 "VIEW `v` AS select 1", "DROP VIEW IF EXISTS `v`",
                 "CREATE DEFINER=`root`@`localhost` EVENT `e` ON SCHEDULE EVERY 1 DAY DO "
                 "SELECT 1"):
        statements.classify_routines_statement(stmt(code))
    for code in ("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @a=1",
                 "DROP DATABASE x", "CREATE PROCEDURE `other`.`p`() SELECT 1"):
        with pytest.raises(UnsafeStatementError):
            statements.classify_routines_statement(stmt(code))


@pytest.mark.parametrize("code", [
    "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`() SELECT 1",
    "CREATE PROCEDURE `p`() SELECT 1",
    "CREATE    DEFINER='root'@'%'   TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @a=1",
    "CREATE ALGORITHM=MERGE DEFINER=CURRENT_USER SQL SECURITY DEFINER VIEW `v` AS SELECT 1",
    "CREATE OR REPLACE DEFINER=`a`@`b` FUNCTION `f`() RETURNS INT RETURN 1",
])
def test_definer_is_replaced(code: str) -> None:
    rewritten = statements.with_definer(stmt(code), "`itflow`@`localhost`").decode()
    assert "DEFINER=`itflow`@`localhost`" in rewritten
    assert "root" not in rewritten and "CURRENT_USER" not in rewritten
    assert rewritten.count("DEFINER=") == 1
    assert "REPLACE" not in rewritten


def test_secondary_indexes_move_after_the_rows() -> None:
    create = (b"CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `a` int,\n"
              b"  `b` varchar(10) COMMENT 'a, (b)',\n  PRIMARY KEY (`id`),\n"
              b"  KEY `by_a` (`a`),\n  UNIQUE KEY `by_b` (`b`),\n  FULLTEXT KEY `ft` (`b`),\n"
              b"  CONSTRAINT `fk` FOREIGN KEY (`a`) REFERENCES `t` (`id`),\n"
              b"  CONSTRAINT `chk` CHECK (`a` > 0)\n) ENGINE=InnoDB")
    deferred = defer_indexes(create, b"`t`")
    assert deferred.alter == (b"ALTER TABLE `t` ADD KEY `by_a` (`a`), ADD UNIQUE KEY `by_b` "
                              b"(`b`), ADD CONSTRAINT `fk` FOREIGN KEY (`a`) REFERENCES `t` "
                              b"(`id`)")
    assert b"FULLTEXT KEY `ft`" in deferred.create and b"CHECK (`a` > 0)" in deferred.create
    assert b"by_a" not in deferred.create and b"COMMENT 'a, (b)'" in deferred.create
    no_pk = b"CREATE TABLE `t` (\n  `a` int,\n  UNIQUE KEY `u` (`a`)\n)"
    assert defer_indexes(no_pk, b"`t`").alter is None


def test_named_table_checks_itflow_db_sql_statements() -> None:
    """ITFlow's db.sql has no file boundaries: each statement names its own table, and the
    table's rules then apply (own database only, nothing placed outside it)."""
    text = (b"DROP TABLE IF EXISTS `clients`;\nCREATE TABLE `clients` (`id` int) ENGINE=InnoDB;\n"
            b"INSERT INTO `clients` (`id`) VALUES ('1');\nDROP VIEW IF EXISTS `v`;\n"
            b"SET NAMES 'utf8mb4';\n")
    found = [statements.named_table(s) for s in split_text(text)]
    assert found == ["clients", "clients", "clients", None, None]
    for hostile, message in [
        (b"INSERT INTO `mysql`.`user` (`User`) VALUES ('x');", "another database"),
        (b"CREATE TABLE `t` (`a` int) DATA DIRECTORY = '/etc';", "outside the database"),
        (b"CREATE TABLE `t` SELECT * FROM mysql.user;", "copies rows"),
    ]:
        [statement] = split_text(hostile)
        name = statements.named_table(statement)
        assert name is not None
        with pytest.raises(UnsafeStatementError, match=message):
            statements.classify_table_statement(statement, name)
