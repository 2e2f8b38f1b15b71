"""flowsafe: complete, consistent, tested and restorable ITFlow backups on restic."""

__version__ = "0.1.0"
