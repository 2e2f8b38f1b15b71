"""The moves that put a built state live (tables, views and routines, the site folder),
journaled so that a killed run is put back, or finished, by the next one."""
