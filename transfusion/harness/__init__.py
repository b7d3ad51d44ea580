"""The benchmark harness: suites (:mod:`.suite`) expanded into a grid of run specs
(:mod:`.grid`), the results store (:mod:`.store`), executing a run (:mod:`.execute`) with a local
or Ray executor (:mod:`.executors`), cost profiles per model (:mod:`.costs`), the summary table
(:mod:`.summary`) and :func:`~.runner.run_suite`, which ties them together. Shipped suites
live in ``suites/``."""
