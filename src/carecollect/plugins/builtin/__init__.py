"""Built-in plugins, registered like any other plugin (and blockable the same way).

* :mod:`carecollect.plugins.builtin.outbox`: the ``outbox`` message channel, which writes
  each rendered message to a folder (what a developer uses on day one);
* :mod:`carecollect.plugins.builtin.letters`: the ``letter`` message channel, which lays
  letters out for window envelopes and writes print batches (PDF and manifest CSV);
* :mod:`carecollect.plugins.builtin.manual`: the ``manual`` payment provider for cash,
  cheques and bank transfers recorded by staff;
* :mod:`carecollect.plugins.builtin.agency_files`: the ``agency-files`` agency connector,
  which writes placements to a folder and reads the agency's answers from another
  (a simulated agency for demos and development).
"""
