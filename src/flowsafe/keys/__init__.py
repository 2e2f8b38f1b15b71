"""The master encryption key: where it comes from, how it is checked and escrowed."""
