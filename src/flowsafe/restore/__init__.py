"""Restoring sites: plan, scratch build, atomic swap, undo, restore elsewhere, single files."""
