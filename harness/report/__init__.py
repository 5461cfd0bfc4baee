"""Stage report: everything that reads only results/ -- the tables (aggregate, tables, dialogue_tables, tables_pdf,
dataset_table, captions, significance), the figures, the dialogue examples and the reproduction status board."""
