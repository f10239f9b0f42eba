"""The code behind ``bench/fuzz.py``, one module per concern (imported by submodule, nothing re-exported):

* ``cases``: one input (``Case``), its ``Outcome``, the watchdog, ``run_case``;
* ``checks``: what a reader returned must keep docs/data.md's promises;
* ``valid_files``: the valid files each target starts from;
* ``mutation``: damaging edits of those files;
* ``structured``: generated arrays, ``.npy`` / ``.npz`` files, tables, meshes and pickles;
* ``strategies``: per-target structured strategies;
* ``targets``: ``Target``, ``TARGETS``, ``TARGETS_BY_NAME``;
* ``campaign``: ``fuzz_target``, the hostile corpus, the ``Report``.
"""
