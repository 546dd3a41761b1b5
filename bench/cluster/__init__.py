"""`scripts/bench --cluster`: what operators of a real cluster meet (issue 23).

One module per part, `partN_*.py`, each with TITLE, `options(parser)` (its sizes, full and
quick) and `run(args, workdir) -> list[Table]`; the runner (`__main__`) finds them by name,
so a new part is a new file, not an edit of a shared list.
"""
