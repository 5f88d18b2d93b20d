//! Tcl list and dict syntax inside `data` (spec 3.6).
