"""The report of a results store: its rows (:mod:`.data`), the sections (:mod:`.sections`,
:mod:`.appendix`) of a small document model (:mod:`.document`) rendered to Markdown and HTML, the
figures (:mod:`.plots`), Pareto fronts (:mod:`.pareto`), the paper's numbers (:mod:`.paper`),
and :func:`~.build.build_report`, which writes it all."""
