"""flowsafe: complete, consistent, tested and restorable ITFlow backups on restic."""

__version__ = "0.2.0"
