"""Models: one readable module each (amn, memory, pess, generator), plus shared runtime helpers."""
