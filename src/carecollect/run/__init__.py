"""The daily run's planner on flat rows: plan rows from the store and the compiled decision kernel.

:mod:`carecollect.run.rows` turns the store's raw facts (or an account's
snapshot) into plan rows at the run's instant; :mod:`carecollect.run.kernel`
decides them. :func:`carecollect.daily_run.plan_run` (``carecollect run
--dry-run``) and :func:`carecollect.daily_run.execute_run` use them for every
account that needs no domain object, and the benchmark times those commands.
"""
