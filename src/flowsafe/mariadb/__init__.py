"""Everything that talks to MariaDB: connections, dumps, loads, private servers."""
