//! Storing what was found: the walk's reports and errors into the reports database, counted as new,
//! duplicate or error (`mtasts report import`, `reparse`, `fetch`).
