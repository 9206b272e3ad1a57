"""Sweeps: checks before any job starts, what each job records, the summary, resumable search."""
