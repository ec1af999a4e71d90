"""Everything a plugin author meets, in one package.

* :mod:`carecollect.plugins.hookspecs`: the hook specifications and the
  ``hookimpl`` marker;
* :mod:`carecollect.plugins.manager`: the plugin manager that finds, registers
  and calls plugins;
* the contracts a plugin fulfils: :mod:`carecollect.plugins.providers` (payment
  providers), :mod:`carecollect.plugins.messaging` (message channels) and
  :mod:`carecollect.plugins.agencies` (collection agency connectors);
* :mod:`carecollect.plugins.builtin`: the plugins that come with carecollect.

The conformance kits that test a plugin against its contract are in
:mod:`carecollect.testing`.
"""
