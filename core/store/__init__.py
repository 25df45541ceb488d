"""What a score row is, where it is kept and how it travels: the SQLite results store, output
formats, benchmark ids and versions, provenance, and portable result files."""
