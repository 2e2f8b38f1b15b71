"""Drills: prove a backup restores, on a throwaway server, without touching production."""
